package jenkinstest

import (
	"fmt"
	"strings"

	"github.com/butler-mcp/butler/internal/diagnose/corpus"
)

// AddCorpusCase adds one failed build of internal/diagnose/corpus: a job
// folder/<case name> (a Pipeline job for a Pipeline case; AddJob
// creates the folder) whose one build has the case's result, exactly the
// case's console text, and a test report holding the case's failing
// tests. It returns the job's full name and the build's number.
//
// The build's stages are not modelled yet (the simulator has no
// wfapi/describe): a Pipeline case's console text still carries its
// "[Pipeline]" structure, so the whole-log analysis sees the stages.
func (s *Server) AddCorpusCase(folder string, c corpus.Case) (string, int, error) {
	job := strings.TrimPrefix(folder+"/"+c.Name, "/")
	spec := JobSpec{Description: c.Description}
	if c.Pipeline {
		spec.Class = ClassWorkflowJob
	}
	if err := s.AddJob(job, spec); err != nil {
		return "", 0, fmt.Errorf("jenkinstest: corpus case %q: %w", c.Name, err)
	}
	b := BuildSpec{Result: c.Result, Console: strings.NewReader(c.Console)}
	if len(c.FailingTests) > 0 {
		r := &TestReport{}
		for _, t := range c.FailingTests {
			r.Cases = append(r.Cases, TestCase{Class: t.Class, Name: t.Name, Status: "FAILED", ErrorDetails: t.Message})
		}
		b.Tests = r
	}
	n, err := s.AddBuild(job, b)
	if err != nil {
		return "", 0, fmt.Errorf("jenkinstest: corpus case %q: %w", c.Name, err)
	}
	return job, n, nil
}
