package jenkinstest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"strings"
	"time"
)

// Sample artifacts and change logs, added to builds Sample made:
//
//	frontend/web-app #5  dist/web-app-1.4.2.tar.gz (binary), dist/logo.png (binary),
//	                     reports/coverage.txt (text), reports/test-output.log (text, ~200 KiB);
//	                     two commits; fetched from a remote whose URL carries a token
//	frontend/web-app #6  reports/coverage.txt; one commit (the one that broke the tests)
//	frontend/docs #3     site/index.html, site/search-index.json, site/img/logo.png
//	                     (sizes from wfapi/artifacts); one commit
//	backend/api #4       one commit with many files
//
// (#N: build number; the jobs and builds themselves are Sample's.)

// setBuildSCM gives an existing build artifacts and a change log.
func (s *Server) setBuildSCM(job string, number int, b BuildSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, err := s.job(job)
	if err != nil {
		return err
	}
	bb := buildByNumber(j, number)
	if bb == nil {
		return fmt.Errorf("%w: %s #%d", ErrNotFound, job, number)
	}
	scm, err := newBuildSCM(b)
	if err != nil {
		return err
	}
	bb.scm = scm
	return nil
}

func addSampleSCM(s *Server, now time.Time) {
	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("jenkinstest: sample artifacts: %v", err))
		}
	}
	ago := func(h float64) time.Time {
		return now.Add(-time.Duration(h * float64(time.Hour))).Truncate(time.Second)
	}
	logo := samplePNG()
	must(s.setBuildSCM("frontend/web-app", 5, BuildSpec{
		Artifacts: []Artifact{
			{Path: "dist/web-app-1.4.2.tar.gz", Data: sampleTarGz(map[string]string{
				"web-app/index.html": "<!doctype html><title>Web app</title>\n",
				"web-app/app.js":     strings.Repeat("console.log('web app');\n", 40),
			})},
			{Path: "dist/logo.png", Data: logo},
			{Path: "reports/coverage.txt", Data: []byte(sampleCoverage(false))},
			{Path: "reports/test-output.log", Data: []byte(sampleTestOutput(3000))},
		},
		Changes: []Commit{
			{ID: "3f6c1e0d9b2a4c5e8f7a6b5c4d3e2f1a0b9c8d7e", Author: "Alice Smith", AuthorEmail: "alice@example.com",
				Message: "Cart: keep the coupon when the quantity changes\n\nThe coupon was dropped on every quantity change (#412).",
				Time:    ago(19), Paths: []ChangedFile{{"edit", "src/checkout/Cart.tsx"}, {"edit", "src/checkout/Cart.test.tsx"}}},
			{ID: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Author: "Carol White", AuthorEmail: "carol@example.com",
				Message: "Header: new logo", Time: ago(18.5),
				Paths: []ChangedFile{{"add", "public/logo.png"}, {"delete", "public/logo-old.png"}, {"edit", "src/components/Header.tsx"}}},
		},
		RemoteURLs: []string{"https://ci-bot:ghp_SampleTokenNotReal123@git.example.com/frontend/web-app.git"},
	}))
	must(s.setBuildSCM("frontend/web-app", 6, BuildSpec{
		Artifacts: []Artifact{{Path: "reports/coverage.txt", Data: []byte(sampleCoverage(true))}},
		Changes: []Commit{
			{ID: "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d", Author: "Alice Smith", AuthorEmail: "alice@example.com",
				Message: "Payment: validate the card expiry on the client\n\nMoves the check out of the server round trip.",
				Time:    ago(2.5), Paths: []ChangedFile{{"edit", "src/checkout/Payment.tsx"}, {"edit", "src/lib/format.ts"}}},
		},
		RemoteURLs: []string{"https://ci-bot:ghp_SampleTokenNotReal123@git.example.com/frontend/web-app.git"},
	}))
	must(s.setBuildSCM("frontend/docs", 3, BuildSpec{
		Artifacts: []Artifact{
			{Path: "site/index.html", Data: []byte("<!doctype html>\n<title>Developer documentation</title>\n<h1>Developer documentation</h1>\n")},
			{Path: "site/search-index.json", Data: []byte(`{"pages":["index.html","api.html","faq.html"]}` + "\n")},
			{Path: "site/img/logo.png", Data: logo},
		},
		Changes: []Commit{
			{ID: "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c", Author: "Bob Jones", AuthorEmail: "bob@example.com",
				Message: "docs: explain API rate limits", Time: ago(10.5), Paths: []ChangedFile{{"edit", "docs/api.md"}, {"add", "docs/rate-limits.md"}}},
		},
		RemoteURLs: []string{"git@git.example.com:frontend/docs.git"},
	}))
	var many []ChangedFile
	for i := range 60 {
		many = append(many, ChangedFile{"edit", fmt.Sprintf("internal/ratelimit/bucket_%02d.go", i)})
	}
	must(s.setBuildSCM("backend/api", 4, BuildSpec{
		Changes: []Commit{
			{ID: "5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b", Author: "Jenkins Admin", AuthorEmail: "admin@example.com",
				Message: "Rate limits per API key\n\nEvery bucket file is regenerated.", Time: ago(5), Paths: many},
		},
		RemoteURLs: []string{"https://git.example.com/backend/api.git"},
	}))
}

// samplePNG is a 16×16 two-colour PNG.
func samplePNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			c := color.RGBA{0x1f, 0x6f, 0xeb, 0xff}
			if (x/4+y/4)%2 == 0 {
				c = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// sampleTarGz is a gzipped tar of files, with fixed times so it is the same
// every run.
func sampleTarGz(files map[string]string) []byte {
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"web-app/index.html", "web-app/app.js"} {
		body, ok := files[name]
		if !ok {
			continue
		}
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1767225600, 0)})
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return b.Bytes()
}

func sampleCoverage(fail bool) string {
	var b strings.Builder
	b.WriteString("File                         | % Stmts | % Branch | % Lines\n")
	for i, m := range webModules() {
		pct := 92 - i
		if fail && strings.HasPrefix(m, "checkout/") {
			pct = 61
		}
		fmt.Fprintf(&b, "%-28s | %7d | %8d | %7d\n", "src/"+m+".tsx", pct, pct-5, pct)
	}
	return b.String()
}

func sampleTestOutput(n int) string {
	var b strings.Builder
	mods := webModules()
	for i := range n {
		fmt.Fprintf(&b, "%05d PASS src/%s.test.tsx › renders case %d (%d ms) — ✓\n", i+1, mods[i%len(mods)], i%17, 3+i%40)
	}
	return b.String()
}
