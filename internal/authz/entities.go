package authz

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// Entity types and well-known ids of the entity model (docs/policy.md).
const (
	typeUser   cedar.EntityType = "User"
	typeGroup  cedar.EntityType = "Group"
	typeGuest  cedar.EntityType = "Guest"
	typeAction cedar.EntityType = "Action"
	typeJob    cedar.EntityType = "Job"
	typeFolder cedar.EntityType = "Folder"
	typeServer cedar.EntityType = "Server"

	guestID  = "anonymous"
	serverID = "butler"

	// ActionRead and ActionWrite are the two action groups: every tool's
	// action is a child of exactly one of them (catalog.Tool.ActionGroup).
	ActionRead  = catalog.ActionRead
	ActionWrite = catalog.ActionWrite
)

// entityTypes are the only entity types a policy may name.
var entityTypes = []cedar.EntityType{typeUser, typeGroup, typeGuest, typeAction, typeJob, typeFolder, typeServer}

// knownAction reports whether id names an action of the model: an action
// group or a tool of the catalog.
func knownAction(id string) bool {
	return id == ActionRead || id == ActionWrite || catalog.Known(id)
}

// cedarRequest is one request in Cedar's terms: the request itself and the
// entities it refers to (principal, action, resource and the resource's
// folders). It is small, so a linear scan is the cheapest entity store.
type cedarRequest struct {
	req      cedar.Request
	entities entityList
}

// entityList is a tiny cedar.EntityGetter.
type entityList []cedar.Entity

// Get returns the entity with that uid; an entity not in the list has no
// parents and no attributes, which is what Cedar assumes of unknown
// entities (so Group::"g" need not be listed).
func (l entityList) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	for i := range l {
		if l[i].UID == uid {
			return l[i], true
		}
	}
	return cedar.Entity{}, false
}

// principalEntity is User::"<user>" with a Group parent per group, or
// Guest::"anonymous".
func principalEntity(p identity.Principal) cedar.Entity {
	if p.Guest {
		return cedar.Entity{UID: cedar.NewEntityUID(typeGuest, guestID)}
	}
	var parents []cedar.EntityUID
	if len(p.Groups) > 0 {
		parents = make([]cedar.EntityUID, len(p.Groups))
		for i, g := range p.Groups {
			parents[i] = cedar.NewEntityUID(typeGroup, cedar.String(g))
		}
	}
	return cedar.Entity{UID: cedar.NewEntityUID(typeUser, cedar.String(p.User)), Parents: cedar.NewEntityUIDSet(parents...)}
}

// actionEntity is Action::"<tool>", child of Action::"read" or
// Action::"write".
func actionEntity(tool catalog.Tool) cedar.Entity {
	return cedar.Entity{
		UID:     cedar.NewEntityUID(typeAction, cedar.String(tool.Name)),
		Parents: cedar.NewEntityUIDSet(cedar.NewEntityUID(typeAction, cedar.String(tool.ActionGroup()))),
	}
}

// resourceEntities returns the resource of a call and the entities to
// list: Server::"butler" when the call names no job; else Job::"<path>"
// (Folder::"<path>" for list_all_jobs) whose parents are a Folder per
// ancestor, each Folder itself the child of its own parent folder, so both
// `resource in Folder::"a"` and a walk up the chain work.
//
// job is parsed again here, whatever the caller did: the policy must see
// the canonical path, and an invalid path is an error (a denial), never a
// resource in some other folder.
func resourceEntities(tool catalog.Tool, job string) (cedar.EntityUID, []cedar.Entity, error) {
	if job == "" {
		return cedar.NewEntityUID(typeServer, serverID), nil, nil
	}
	p, err := jobpath.Parse(job)
	if err != nil {
		return cedar.EntityUID{}, nil, err
	}
	typ := typeJob
	if tool.Resource == catalog.ResourceFolder {
		typ = typeFolder
	}
	uid, ents := pathEntities(typ, p.String(), p.Ancestors())
	return uid, ents, nil
}

// pathEntities builds the entity of type typ and id path, whose ancestor
// folders are ancestors (outermost first), followed by the folder
// entities.
func pathEntities(typ cedar.EntityType, path string, ancestors []string) (cedar.EntityUID, []cedar.Entity) {
	uid := cedar.NewEntityUID(typ, cedar.String(path))
	ents := make([]cedar.Entity, 0, len(ancestors)+1)
	folders := make([]cedar.EntityUID, len(ancestors))
	for i, a := range ancestors {
		folders[i] = cedar.NewEntityUID(typeFolder, cedar.String(a))
		var parent cedar.EntityUIDSet
		if i > 0 {
			parent = cedar.NewEntityUIDSet(folders[i-1])
		}
		ents = append(ents, cedar.Entity{UID: folders[i], Parents: parent})
	}
	ents = append(ents, cedar.Entity{UID: uid, Parents: cedar.NewEntityUIDSet(folders...)})
	return uid, ents
}

// contextRecord is the request context {scopes, client_id, parameters}.
func contextRecord(p identity.Principal, params map[string]any) cedar.Record {
	scopes := make([]cedar.Value, len(p.Scopes))
	for i, s := range p.Scopes {
		scopes[i] = cedar.String(s)
	}
	return cedar.NewRecord(cedar.RecordMap{
		"scopes":     cedar.NewSet(scopes...),
		"client_id":  cedar.String(p.ClientID),
		"parameters": parameterRecord(params),
	})
}

// parameterRecord converts a trigger's parameters to a Cedar record:
// strings stay String; booleans are Bool; numbers with an integral value
// that fits in 64 bits are Long; every other number is a String in the
// decimal form Butler sends to Jenkins ("1.5"); arrays and objects are a
// String holding their JSON text (Jenkins takes no structured parameter
// values, and the tool refuses them later, but a policy that tests `has`
// still sees the name); a null value is left out, as Butler sends none.
//
// A parameter "1" sent as the string "1" is String "1", sent as the number
// 1 it is Long 1, and Jenkins receives "1" either way: a policy on a
// parameter must compare against the type clients send, or test both.
func parameterRecord(params map[string]any) cedar.Record {
	if len(params) == 0 {
		return cedar.Record{}
	}
	m := make(cedar.RecordMap, len(params))
	for k, v := range params {
		if cv, ok := parameterValue(v); ok {
			m[cedar.String(k)] = cv
		}
	}
	return cedar.NewRecord(m)
}

func parameterValue(v any) (cedar.Value, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case string:
		return cedar.String(x), true
	case bool:
		return cedar.Boolean(x), true
	case float64:
		return number(x), true
	case float32:
		return number(float64(x)), true
	case int:
		return cedar.Long(x), true
	case int64:
		return cedar.Long(x), true
	case int32:
		return cedar.Long(x), true
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return cedar.Long(n), true
		}
		if f, err := x.Float64(); err == nil {
			return number(f), true
		}
		return cedar.String(x.String()), true
	}
	data, err := json.Marshal(v)
	if err != nil {
		return cedar.String(fmt.Sprint(v)), true
	}
	return cedar.String(data), true
}

func number(f float64) cedar.Value {
	// 2^63 is exactly representable; anything at or beyond it is not a Long.
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return cedar.Long(int64(f))
	}
	return cedar.String(strconv.FormatFloat(f, 'f', -1, 64))
}
