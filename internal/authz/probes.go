package authz

import (
	"slices"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// probeName is the name of the stand-in job or folder used by Visible. No
// real item can have it (jobpath refuses "." as a segment), and
// ValidatePolicy refuses it in a policy, so no policy can single it out.
const probeName = "."

// probe is one representative resource and the entities it needs.
type probe struct {
	resource cedar.EntityUID
	entities []cedar.Entity
}

// probeSet holds the representative resources Visible tries, by kind.
//
// Visible must answer "is there a resource on which this principal may
// call this tool?" without knowing Jenkins's jobs. For policies whose
// resource constraints are equality and hierarchy (resource == Job::"x",
// resource in Folder::"f", and the same in when/unless conditions), the
// answer only depends on which of the entities the policy names a resource
// is, or is under. So the candidates are built from every Job and Folder
// entity literal found by walking the policies' AST (policyReferences):
//
//   - Server::"butler";
//   - a job in no folder, Job::".", and a folder in no folder,
//     Folder::".";
//   - for each Folder::"f" named: a job directly in it, Job::"f/.", and
//     the folder itself, each with f and f's ancestors as parents;
//   - for each Job::"j" named: that job, with its ancestors.
//
// A policy that tells resources apart in another way (there is none today:
// resources have no attributes) could make Visible hide a callable tool
// or show a denied one; Decide is unaffected, it is the gate.
type probeSet struct {
	// namesItems: some policy names a Job or Folder, so decisions depend on
	// the exact (case-sensitive) job path.
	namesItems bool
	server     []probe // Server::"butler" alone
	jobs       []probe
	listing    []probe // the server and the folders, for list_all_jobs
	all        []probe
}

func newProbeSet(pl policyList) probeSet {
	var folderIDs, jobIDs []string
	for _, p := range pl {
		for _, u := range policyReferences(p.policy).uids {
			switch u.Type {
			case typeFolder:
				if !slices.Contains(folderIDs, string(u.ID)) {
					folderIDs = append(folderIDs, string(u.ID))
				}
			case typeJob:
				if !slices.Contains(jobIDs, string(u.ID)) {
					jobIDs = append(jobIDs, string(u.ID))
				}
			}
		}
	}
	server := probe{resource: cedar.NewEntityUID(typeServer, serverID)}
	ps := probeSet{server: []probe{server}, listing: []probe{server}, namesItems: len(folderIDs)+len(jobIDs) > 0}
	add := func(list *[]probe, typ cedar.EntityType, path string, ancestors []string) {
		uid, ents := pathEntities(typ, path, ancestors)
		for _, pr := range *list {
			if pr.resource == uid {
				return
			}
		}
		*list = append(*list, probe{resource: uid, entities: ents})
	}
	add(&ps.jobs, typeJob, probeName, nil)
	add(&ps.listing, typeFolder, probeName, nil)
	for _, f := range folderIDs {
		p, err := jobpath.Parse(f)
		if err != nil {
			continue // compile refuses such ids; nothing could be in it anyway
		}
		inside := append(p.Ancestors(), p.String())
		add(&ps.jobs, typeJob, p.String()+"/"+probeName, inside)
		add(&ps.listing, typeFolder, p.String(), p.Ancestors())
	}
	for _, j := range jobIDs {
		p, err := jobpath.Parse(j)
		if err != nil {
			continue
		}
		add(&ps.jobs, typeJob, p.String(), p.Ancestors())
	}
	ps.all = append(slices.Clone(ps.listing), ps.jobs...)
	return ps
}

// forTool returns the probes for the resources tool can have, by its
// resource kind: the server for tools that name no job (and for queue
// tools, whose job is known only once Jenkins is asked), the server and
// folders for a folder listing, jobs for the job tools.
func (ps probeSet) forTool(tool catalog.Tool) []probe {
	switch tool.Resource {
	case catalog.ResourceFolder:
		return ps.listing
	case catalog.ResourceJob:
		return ps.jobs
	case catalog.ResourceServer, catalog.ResourceQueueItem:
		return ps.server
	}
	return ps.all
}
