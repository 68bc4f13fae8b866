package http1

import (
	"errors"
	"fmt"
)

// Limits bound what a request or response head may cost. They come from
// the profile.
type Limits struct {
	// MaxRequestLine is the longest request line accepted, without its
	// CRLF; longer lines get 414. It also bounds an origin's status line.
	MaxRequestLine int
	// MaxHeaderBytes bounds the header section after the start line,
	// including every CRLF and the empty line; more gets 431 (502 from an
	// origin). It also bounds a chunked body's trailer section.
	MaxHeaderBytes int
	// MaxHeaders is the most header fields (or trailer fields) accepted;
	// more gets 431 (502 from an origin). It is also the capacity of
	// Request.Headers and Response.Headers.
	MaxHeaders int
}

// DefaultLimits are close to what nginx and HAProxy accept by default.
var DefaultLimits = Limits{
	MaxRequestLine: 8 << 10,
	MaxHeaderBytes: 32 << 10,
	MaxHeaders:     100,
}

// Upper bounds for Validate: they keep a single head well inside one loop
// buffer.
const (
	maxRequestLineCap = 1 << 20
	maxHeaderBytesCap = 1 << 20
	maxHeadersCap     = 1 << 12
)

// Validate reports every out-of-range field at once.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxRequestLine < 16 || l.MaxRequestLine > maxRequestLineCap {
		errs = append(errs, fmt.Errorf("max_request_line: must be in 16..%d, got %d", maxRequestLineCap, l.MaxRequestLine))
	}
	if l.MaxHeaderBytes < 2 || l.MaxHeaderBytes > maxHeaderBytesCap {
		errs = append(errs, fmt.Errorf("max_header_bytes: must be in 2..%d, got %d", maxHeaderBytesCap, l.MaxHeaderBytes))
	}
	if l.MaxHeaders < 1 || l.MaxHeaders > maxHeadersCap {
		errs = append(errs, fmt.Errorf("max_headers: must be in 1..%d, got %d", maxHeadersCap, l.MaxHeaders))
	}
	return errors.Join(errs...)
}
