package jenkinstest

import (
	"fmt"
	"io"
)

// Console is console text read on demand instead of stored: an
// *io.SectionReader, a *bytes.Reader, or RepeatConsole's generated text.
// Like every io.ReaderAt it must allow parallel ReadAt calls; its content
// must not change.
type Console interface {
	io.ReaderAt
	Size() int64
}

// RepeatConsole returns a Console of block repeated n times, then tail: a
// log of n*len(block)+len(tail) bytes that costs only len(block)+len(tail)
// bytes of memory, for benchmarks and limit tests on logs of hundreds of
// megabytes.
func RepeatConsole(block []byte, n int, tail []byte) Console {
	if n < 0 {
		n = 0
	}
	if len(block) == 0 {
		n = 0
	}
	return &repeatConsole{block: block, n: int64(n), tail: tail}
}

type repeatConsole struct {
	block []byte
	n     int64
	tail  []byte
}

func (r *repeatConsole) Size() int64 { return r.n*int64(len(r.block)) + int64(len(r.tail)) }

func (r *repeatConsole) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("jenkinstest: negative offset %d", off)
	}
	body := r.n * int64(len(r.block))
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		var src []byte
		switch {
		case pos < body:
			src = r.block[pos%int64(len(r.block)):]
		case pos-body < int64(len(r.tail)):
			src = r.tail[pos-body:]
		default:
			return n, io.EOF
		}
		n += copy(p[n:], src)
	}
	return n, nil
}
