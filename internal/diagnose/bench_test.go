package diagnose_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/diagnose"
)

// noisyLog generates size bytes of a noisy Maven log, lines of about 90
// bytes of which many say "error" or "fail" without being the failure
// ("[WARNING] ... error", "Tests run: 9, Failures: 0, Errors: 0", a shell
// trace of grep error), and then the failure. It is generated as it is
// read, so the benchmark measures the scan's memory, not the log's.
type noisyLog struct {
	size, n int64
	buf     []byte
	tail    bool
}

// noiseBlock is 1 MiB or so of noise lines, built once per benchmark run
// and repeated, so generating the log costs little next to scanning it.
var noiseBlock = func() []byte {
	var b []byte
	for i := 0; len(b) < 1<<20; i++ {
		b = fmt.Appendf(b, noise[i%len(noise)]+"\n", i)
	}
	return b
}()

var noise = [...]string{
	"[INFO] Downloading from nexus: https://nexus.example.com/repository/maven-public/org/example/lib-%d/1.0/lib.pom",
	"[INFO] Downloaded from nexus: https://nexus.example.com/repository/maven-public/org/example/lib-%d/1.0/lib.jar (12 kB)",
	"[WARNING] /src/main/java/com/example/Gen%d.java:[12,8] [deprecation] ErrorHandler in com.example has been deprecated",
	"[INFO] Tests run: %d, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.031 s -- in com.example.GenTest",
	"12:00:01.%03d [main] INFO  c.e.Service -- request handled in 3 ms, 0 errors, status 200",
	"+ grep -c error build/reports/lint-%d.txt",
	"> Task :module%d:compileJava UP-TO-DATE",
	"2026/11/30 02:10:14 worker: processed batch %d without failures",
}

const failure = "[ERROR] /src/main/java/com/example/Broken.java:[42,31] cannot find symbol\n" +
	"  symbol:   method rateFor(com.example.Region)\n[INFO] BUILD FAILURE\nERROR: script returned exit code 1\n"

func (l *noisyLog) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(l.buf) == 0 {
			switch {
			case l.n < l.size:
				l.buf = noiseBlock // whole lines: the log ends a little past size
			case !l.tail:
				l.buf = []byte(failure)
				l.tail = true
			default:
				if n == 0 {
					return 0, io.EOF
				}
				return n, nil
			}
		}
		c := copy(p[n:], l.buf)
		l.buf = l.buf[c:]
		n += c
		l.n += int64(c)
	}
	return n, nil
}

// baseline is the plainest line scan: what reading a log line by line
// costs before any matching.
func baseline(r io.Reader) int {
	br := bufio.NewReaderSize(r, 64<<10)
	lines := 0
	for {
		_, err := br.ReadSlice('\n')
		if err == io.EOF {
			return lines
		}
		lines++
	}
}

// BenchmarkDiagnose_NoisyLog scans a 10 MB and a 50 MB noisy log next to
// the plain line scan of the same log: MB/s shows the scan is linear (the
// same speed at both sizes) and B/op that its memory does not grow with
// the log. Run: go test ./internal/diagnose -run '^$' -bench NoisyLog -benchmem
func BenchmarkDiagnose_NoisyLog(b *testing.B) {
	for _, mb := range []int64{10, 50} {
		size := mb << 20
		b.Run(fmt.Sprintf("baseline/%dMB", mb), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				baseline(&noisyLog{size: size})
			}
		})
		b.Run(fmt.Sprintf("diagnose/%dMB", mb), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				r, err := diagnose.Diagnose(context.Background(), &diagnose.Build{Result: "FAILURE", Console: &noisyLog{size: size}}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.ErrorExcerpts) == 0 || !strings.Contains(r.ErrorExcerpts[0].Lines[r.ErrorExcerpts[0].LineNumber-r.ErrorExcerpts[0].StartLine], "Broken.java:[42,31]") {
					b.Fatalf("missed the failure: %+v", r.ErrorExcerpts)
				}
			}
		})
	}
}

// TestDiagnose_MemoryDoesNotGrowWithTheLog scans a 4 MB and a 40 MB noisy
// log and compares what each allocated: a scan that kept lines, or
// allocated for each one, would allocate ten times as much for the
// bigger log.
func TestDiagnose_MemoryDoesNotGrowWithTheLog(t *testing.T) {
	if testing.Short() {
		t.Skip("scans 44 MB")
	}
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items, so regexp allocates for each match")
	}
	alloc := func(size int64) uint64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		r, err := diagnose.Diagnose(context.Background(), &diagnose.Build{Result: "FAILURE", Console: &noisyLog{size: size}}, nil)
		runtime.ReadMemStats(&after)
		if err != nil || len(r.ErrorExcerpts) == 0 {
			t.Fatalf("Diagnose = %+v, %v", r, err)
		}
		return after.TotalAlloc - before.TotalAlloc
	}
	alloc(1 << 10) // the rule set is compiled on first use
	small, big := alloc(4<<20), alloc(40<<20)
	t.Logf("allocated %d KiB for 4 MB, %d KiB for 40 MB", small>>10, big>>10)
	if big > 2*small+(256<<10) {
		t.Errorf("allocations grow with the log: %d bytes for 4 MB, %d for 40 MB", small, big)
	}
}
