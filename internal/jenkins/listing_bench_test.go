package jenkins

import (
	"bytes"
	"fmt"
	"testing"
)

// listingAnswer is a root answer of 20 folders of 5,000 jobs (100,000), as
// Jenkins writes it for Butler's tree query.
func listingAnswer() []byte {
	var b bytes.Buffer
	b.WriteString(`{"_class":"hudson.model.Hudson","jobs":[`)
	for f := range 20 {
		if f > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"_class":"com.cloudbees.hudson.plugins.folder.Folder","jobs":[`)
		for n := range 5000 {
			if n > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"_class":"hudson.model.FreeStyleProject","buildable":true,"color":"blue","lastBuild":{"_class":"hudson.model.FreeStyleBuild","number":%d},"name":"job-%04d","url":"https://ci.example.com/job/team-%02d/job/job-%04d/"}`, n+1, n, f, n)
		}
		fmt.Fprintf(&b, `],"name":"team-%02d","url":"https://ci.example.com/job/team-%02d/"}`, f, f)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// BenchmarkParseListing100k compares the streaming listing parser with the
// whole-answer decoder it replaced (the baseline, "unmarshal") on the same
// 100,000-job answer: time per answer and bytes allocated.
func BenchmarkParseListing100k(b *testing.B) {
	data := listingAnswer()
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			items, err := parseJobTreeRef(data)
			if err != nil {
				b.Fatal(err)
			}
			var jobs []JobSummary
			collectRef("", items, true, &jobs, nil)
			if len(jobs) != 100000 {
				b.Fatalf("%d jobs", len(jobs))
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			l, _, err := streamListing(data, "", true)
			if err != nil {
				b.Fatal(err)
			}
			if l.Len() != 100000 {
				b.Fatalf("%d jobs", l.Len())
			}
		}
	})
}
