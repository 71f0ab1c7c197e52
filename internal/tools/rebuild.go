package tools

import (
	"context"
	"errors"
	"sort"

	"github.com/butler-mcp/butler/internal/jenkins"
)

// rebuildParams are the parameters of a rebuild (trigger_job's
// rebuild_of): the values build number of the job ran with, read as the
// user (an unseen or missing build is not_found before anything is
// posted), for the parameters the job still defines, overridden by given.
// Password values are never copied: Jenkins does not export them
// (PasswordParameterValue has no exported value), and a secret must not
// travel through Butler unasked; their names come back in passwords,
// unless given again. File parameters cannot be sent at all. The result
// is what the policy, the confirmation question and Jenkins then see, as
// if the caller had given those values.
func (t *Toolset) rebuildParams(ctx context.Context, c *call, j *jenkins.Job, number int64, given map[string]any) (map[string]any, []string, error) {
	b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, number)
	if errors.Is(err, jenkins.ErrNotFound) {
		return nil, nil, Errorf(CodeNotFound, "rebuild_of: build %d of job %q not found (it does not exist or you may not see it)", number, c.target.job.String())
	}
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]any, len(j.Parameters))
	var passwords []string
	for _, d := range j.Parameters {
		if v, ok := given[d.Name]; ok {
			out[d.Name] = v
			continue
		}
		switch d.Kind {
		case jenkins.ParamPassword:
			if _, ran := b.Parameters[d.Name]; ran {
				passwords = append(passwords, d.Name)
			}
			continue
		case jenkins.ParamFile:
			continue
		}
		if v, ok := b.Parameters[d.Name]; ok && v != nil {
			out[d.Name] = v
		}
	}
	// Names the job does not define stay in, so buildParams refuses them
	// as it refuses any unknown parameter.
	for k, v := range given {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	sort.Strings(passwords)
	return out, passwords, nil
}
