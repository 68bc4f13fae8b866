package http1

// Header is one field line, both slices pointing into the parsed buffer.
// Value has its surrounding whitespace removed.
type Header struct {
	Name, Value []byte
}

// TargetForm is the form of the request target (RFC 9112 section 3.2).
type TargetForm uint8

// Target forms. Authority-form (CONNECT) is never accepted.
const (
	OriginForm   TargetForm = iota // /path?query
	AbsoluteForm                   // http://host/path
	AsteriskForm                   // * (OPTIONS only)
)

// Request is one parsed request head. Allocate it once per connection (or
// per loop) with NewRequest and pass it to every Parse; each Parse resets it.
// Every byte slice points into the buffer given to Parse.
type Request struct {
	Method  []byte
	Target  []byte
	Version []byte // exactly "HTTP/1.0" or "HTTP/1.1"
	// Minor is the minor version: 0 or 1.
	Minor int
	Form  TargetForm

	// Headers holds the field lines in order, including the framing
	// fields below; its capacity is Limits.MaxHeaders and never grows.
	Headers []Header

	// Host is the target's authority for absolute-form, otherwise the Host
	// field's value; empty only for an HTTP/1.0 request without Host.
	Host []byte
	// ContentLength is the body length, or -1 when there is no
	// Content-Length field. With neither it nor Chunked the body is empty.
	ContentLength int64
	// Chunked is set when Transfer-Encoding is exactly "chunked".
	Chunked bool
	// KeepAlive says whether the connection may carry another request
	// after this one (RFC 9112 section 9.3).
	KeepAlive bool
	// Expect100 is set for an HTTP/1.1 "Expect: 100-continue".
	Expect100 bool
}

// NewRequest returns a Request whose header storage fits l.MaxHeaders.
func NewRequest(l Limits) *Request {
	return &Request{Headers: make([]Header, 0, l.MaxHeaders)}
}

// BodyLength is the number of body bytes that follow the head when the body
// is not chunked: ContentLength, or 0 without one.
func (r *Request) BodyLength() int64 {
	if r.ContentLength < 0 {
		return 0
	}
	return r.ContentLength
}

// Get returns the value of the first field named name (compared
// case-insensitively; name must be lowercase), or nil.
func (r *Request) Get(name string) []byte {
	for i := range r.Headers {
		if equalFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value
		}
	}
	return nil
}

func (r *Request) reset() {
	hs := r.Headers[:0]
	*r = Request{Headers: hs, ContentLength: -1}
}
