package jenkinstest

import (
	"fmt"
	"strings"

	"github.com/butler-mcp/butler/internal/diagnose/corpus"
)

// SampleDiagnosisFolder holds the Sample instance's failed builds of the
// diagnosis corpus, for diagnose_build.
const SampleDiagnosisFolder = "diagnosis"

// SampleDiagnosisCases are the corpus cases the Sample instance holds,
// each as SampleDiagnosisFolder/<case>: #1 succeeded, #2 failed.
var SampleDiagnosisCases = []string{
	"maven-compile-error", "junit-test-failure", "npm-eresolve", "agent-offline", "oom-killed", "gradle-dependency-resolution",
}

// addSampleDiagnosis adds the diagnosis folder: alice and bob may read it,
// carol may not. gradle-dependency-resolution was triggered by
// platform/bom, which only alice may read: diagnose_build names that
// upstream build to alice and leaves it out for bob.
func addSampleDiagnosis(s *Server) {
	cases, err := corpus.Cases()
	if err != nil {
		panic(fmt.Sprintf("jenkinstest: sample diagnosis: %v", err))
	}
	byName := map[string]corpus.Case{}
	for _, c := range cases {
		byName[c.Name] = c
	}
	if err := s.AddFolderSpec(SampleDiagnosisFolder, FolderSpec{Description: "Failed builds to diagnose (diagnose_build)"}); err != nil {
		panic(fmt.Sprintf("jenkinstest: sample diagnosis: %v", err))
	}
	s.Grant(SampleAlice, SampleDiagnosisFolder, PermRead)
	s.Grant(SampleBob, SampleDiagnosisFolder, PermRead)
	for _, name := range SampleDiagnosisCases {
		c, ok := byName[name]
		if !ok {
			panic(fmt.Sprintf("jenkinstest: sample diagnosis: no corpus case %q", name))
		}
		if c.Upstream != nil {
			top, _, _ := strings.Cut(c.Upstream.Job, "/")
			s.Grant(SampleAlice, top, PermRead)
		}
		if _, err := s.AddCorpusCase(SampleDiagnosisFolder, c); err != nil {
			panic(fmt.Sprintf("jenkinstest: sample diagnosis: %v", err))
		}
	}
}
