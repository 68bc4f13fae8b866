package http1

// Response is one parsed response head from an origin. Allocate it once per
// origin connection with NewResponse and pass it to every ParseResponse;
// each call resets it. Every byte slice points into the buffer given to
// ParseResponse.
type Response struct {
	Version []byte // exactly "HTTP/1.0" or "HTTP/1.1"
	// Minor is the minor version: 0 or 1.
	Minor int
	// Status is the status code, in 100..599.
	Status int
	// Reason is the reason phrase, possibly empty. It carries no meaning
	// (RFC 9112 section 4) and is forwarded only as text.
	Reason []byte

	// Headers holds the field lines in order, including the framing
	// fields below; its capacity is Limits.MaxHeaders and never grows.
	Headers []Header

	// ContentLength is the Content-Length value, or -1 without one. For a
	// response that has no body (see BodyFraming) it is only metadata.
	ContentLength int64
	// Chunked is set when Transfer-Encoding is exactly "chunked".
	Chunked bool
	// KeepAlive is what the version and Connection say about reusing the
	// connection after this response (RFC 9112 section 9.3): HTTP/1.1
	// unless "close", HTTP/1.0 only with "keep-alive" and without
	// "close". A body read until close (FramingClose) or a switch of
	// protocol (FramingTunnel) ends the connection whatever it says.
	KeepAlive bool
}

// NewResponse returns a Response whose header storage fits l.MaxHeaders.
func NewResponse(l Limits) *Response {
	return &Response{Headers: make([]Header, 0, l.MaxHeaders)}
}

// Get returns the value of the first field named name (compared
// case-insensitively; name must be lowercase), or nil.
func (r *Response) Get(name string) []byte {
	for i := range r.Headers {
		if equalFold(r.Headers[i].Name, name) {
			return r.Headers[i].Value
		}
	}
	return nil
}

// Interim reports a 1xx response other than 101 (100 Continue, 103 Early
// Hints, ...): it has no body, and the final response to the same request
// follows on the connection. The caller forwards it or drops it, then
// parses again.
func (r *Response) Interim() bool {
	return r.Status >= 100 && r.Status < 200 && r.Status != 101
}

func (r *Response) reset() {
	hs := r.Headers[:0]
	*r = Response{Headers: hs, ContentLength: -1}
}

// Framing is how the body of a response is delimited (RFC 9112 section 6.3).
type Framing uint8

// Framings, one per outcome of BodyFraming.
const (
	// FramingNone: no body; the response ends with its head.
	FramingNone Framing = iota
	// FramingLength: exactly the given number of bytes (possibly 0).
	FramingLength
	// FramingChunked: a chunked body; read it with a ChunkedDecoder.
	FramingChunked
	// FramingClose: the body runs until the origin closes the connection,
	// which therefore cannot be reused.
	FramingClose
	// FramingTunnel: the connection stops carrying HTTP/1.1 after the
	// head: a 101 (Switching Protocols), or a 2xx to CONNECT.
	FramingTunnel
)

// String returns the framing's name, for logs and test failures.
func (f Framing) String() string {
	switch f {
	case FramingNone:
		return "none"
	case FramingLength:
		return "length"
	case FramingChunked:
		return "chunked"
	case FramingClose:
		return "close"
	case FramingTunnel:
		return "tunnel"
	}
	return "invalid"
}

// BodyFraming says how r's body is delimited when it answers a request
// with method reqMethod, following RFC 9112 section 6.3 in order; length is
// the body length for FramingLength and 0 otherwise.
//
//  1. 101 switches protocols and a 2xx to CONNECT opens a tunnel
//     (FramingTunnel). Rampart refuses both for now, since Parse rejects
//     CONNECT and AppendForwardedRequest strips Upgrade: an origin that
//     answers 101 anyway is broken, and the caller answers 502 and closes.
//  2. A response to HEAD, and any 1xx, 204 or 304, has no body whatever its
//     fields say (FramingNone).
//  3. Transfer-Encoding: chunked (FramingChunked).
//  4. Content-Length (FramingLength).
//  5. Otherwise the body runs until close (FramingClose).
//
// RFC 9112 would also read until close when Transfer-Encoding is present
// but chunked is not its final coding, and decode chunked then hand on the
// other codings when it is. ParseResponse rejects both instead, as Parse
// does for requests and as net/http does: the edge would have to remove or
// apply those codings, and forwarding them unannounced would hand the
// client a body it cannot read. Content-Length beside Transfer-Encoding,
// and a duplicate or invalid Content-Length, are rejected too, so by the
// time BodyFraming runs the framing fields can be read only one way.
func (r *Response) BodyFraming(reqMethod []byte) (framing Framing, length int64) {
	switch {
	case r.Status == 101 || r.Status/100 == 2 && string(reqMethod) == "CONNECT":
		return FramingTunnel, 0
	case string(reqMethod) == "HEAD" || r.Status < 200 || r.Status == 204 || r.Status == 304:
		return FramingNone, 0
	case r.Chunked:
		return FramingChunked, 0
	case r.ContentLength >= 0:
		return FramingLength, r.ContentLength
	}
	return FramingClose, 0
}

// ParseResponse parses the response head an origin sent at the start of
// buf into r and returns the number of bytes it takes, up to and including
// the empty line; the body, framed as r.BodyFraming says, starts at buf[n].
//
// The rules are the request parser's wherever the two share them: CRLF
// line endings only, no bare CR, no obs-fold, token field names, field
// values without control characters, the same Content-Length,
// Transfer-Encoding and Trailer rules, and the same limits, with
// MaxRequestLine bounding the status line. The status line is
// "HTTP/1.x SP 3DIGIT SP reason", the code in 100..599; a missing reason
// with its space ("HTTP/1.1 204") is accepted, as nginx and HAProxy do,
// since the reason carries nothing. No empty line may precede it: the
// tolerance of RFC 9112 section 2.2 is for servers reading requests.
//
// ErrIncomplete means buf holds only a valid prefix of a head: read more
// and call again with the whole head so far. Any other error is an *Error
// with Status 502: answer the client with it (unless the response has
// already started) and close the origin connection. Interim responses
// (Interim) parse like any other; parse again at buf[n] for the next one.
//
// r's slices point into buf. ParseResponse never allocates and never keeps
// buf.
func (p *Parser) ParseResponse(buf []byte, r *Response) (n int, err error) {
	n, err = p.parseResponse(buf, r)
	if err != nil {
		return 0, originError(err)
	}
	return n, nil
}

func (p *Parser) parseResponse(buf []byte, r *Response) (int, error) {
	r.reset()
	line, pos, err := nextLine(buf, 0, p.limits.MaxRequestLine, errOriginStatusTooLong)
	if err != nil {
		if err == ErrIncomplete && !statusLinePrefix(buf) {
			return 0, errOriginStatusLine
		}
		return 0, err
	}
	if err := parseStatusLine(line, r); err != nil {
		return 0, err
	}

	f := framing{contentLength: -1}
	maxHeaders := min(p.limits.MaxHeaders, cap(r.Headers))
	headerStart := pos
	for {
		budget := p.limits.MaxHeaderBytes - (pos - headerStart)
		line, next, err := nextLine(buf, pos, budget-2, errHeadersTooLarge)
		if err != nil {
			return 0, err
		}
		pos = next
		if len(line) == 0 {
			break
		}
		if len(r.Headers) >= maxHeaders {
			return 0, errTooManyHeaders
		}
		name, value, err := parseFieldLine(line)
		if err != nil {
			return 0, err
		}
		r.Headers = append(r.Headers, Header{Name: name, Value: value})
		if err := f.field(name, value); err != nil {
			return 0, err
		}
	}
	if err := f.check(r.Minor); err != nil {
		return 0, err
	}
	r.ContentLength, r.Chunked = f.contentLength, f.chunked
	if r.Minor == 1 {
		r.KeepAlive = !f.connClose
	} else {
		r.KeepAlive = f.connKeepAlive && !f.connClose
	}
	return pos, nil
}

// statusLinePrefix reports whether an unfinished status line could still
// become a valid one, so that garbage from an origin (an HTML page, a TLS
// alert, a stray body) is rejected at once rather than after a timeout.
func statusLinePrefix(b []byte) bool {
	const proto = "HTTP/1."
	for i, c := range b {
		last := i == len(b)-1 // may be the CR of the CRLF
		var ok bool
		switch {
		case i < len(proto):
			ok = c == proto[i]
		case i == 7:
			ok = c == '0' || c == '1'
		case i == 8:
			ok = c == ' '
		case i == 9:
			ok = '1' <= c && c <= '5'
		case i < 12:
			ok = isDigit(c)
		case i == 12:
			ok = c == ' ' || last && c == '\r'
		default:
			ok = classes[c]&classValue != 0 || last && c == '\r'
		}
		if !ok {
			return false
		}
	}
	return true
}

// parseStatusLine parses status-line = HTTP-version SP status-code SP
// [ reason-phrase ] (RFC 9112 section 4), also taking the code alone.
func parseStatusLine(line []byte, r *Response) error {
	if len(line) < len("HTTP/1.1 200") {
		return lineError(line, errOriginStatusLine)
	}
	v := line[:8]
	switch {
	case string(v[:7]) == "HTTP/1." && (v[7] == '0' || v[7] == '1'):
		r.Minor = int(v[7] - '0')
	case string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return errOriginVersionNotSupp
	default:
		return lineError(line, errOriginVersion)
	}
	r.Version = v
	if line[8] != ' ' {
		return lineError(line, errOriginStatusLine)
	}
	c := line[9:12]
	if c[0] < '1' || c[0] > '5' || !isDigit(c[1]) || !isDigit(c[2]) {
		return lineError(line, errOriginStatus)
	}
	r.Status = int(c[0]-'0')*100 + int(c[1]-'0')*10 + int(c[2]-'0')
	rest := line[12:]
	if len(rest) == 0 {
		return nil
	}
	if rest[0] != ' ' {
		return lineError(line, errOriginStatus)
	}
	// reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ): the field-value
	// characters.
	for _, ch := range rest[1:] {
		if classes[ch]&classValue == 0 {
			return lineError(line, errOriginReason)
		}
	}
	r.Reason = rest[1:]
	return nil
}
