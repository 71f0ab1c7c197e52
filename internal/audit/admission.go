package audit

import "errors"

// ErrFull is wrapped by the error of Writer.Accepting when the writer
// cannot take the record of one more call: the store cannot take records,
// the memory buffer is full and so is the spool (or there is none), or the
// writer is shutting down. A call refused for it is refused before it runs,
// so that no call runs unaudited.
var ErrFull = errors.New("audit: cannot take more records")
