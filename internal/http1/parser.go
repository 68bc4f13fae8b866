package http1

import (
	"bytes"
	"math"
)

// Parser parses request heads (Parse) and origin response heads
// (ParseResponse) under fixed Limits. Neither mutates the Parser, so one
// may be shared; each loop still needs its own Requests and Responses.
type Parser struct {
	limits Limits
}

// NewParser returns a Parser for l, or l's validation errors.
func NewParser(l Limits) (*Parser, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &Parser{limits: l}, nil
}

// Parse parses the request head at the start of buf into r and returns the
// number of bytes it takes, up to and including the empty line; the body
// (r.ContentLength bytes, or chunked) starts at buf[n].
//
// One empty line (CRLF) before the request line is skipped and counted in
// n, as RFC 9112 section 2.2 asks of a server: old clients send one after a
// POST body. A bare LF there, or a second empty line, is still rejected;
// nothing a client means to send needs more.
//
// It returns ErrIncomplete when buf holds only a valid prefix of a head:
// read more and call again with the whole head so far. Any other error is an
// *Error; answer its Status and close the connection. A prefix that already
// breaks a rule or a limit is rejected without waiting for the rest.
//
// r's slices point into buf. Parse never allocates and never keeps buf.
func (p *Parser) Parse(buf []byte, r *Request) (n int, err error) {
	r.reset()
	start := 0
	if len(buf) >= 2 && buf[0] == '\r' && buf[1] == '\n' {
		start = 2
	}
	line, pos, err := nextLine(buf, start, p.limits.MaxRequestLine, errURITooLong)
	if err != nil {
		if err == ErrIncomplete && len(buf) > start && (buf[start] == ' ' || buf[start] == '\t') {
			return 0, errRequestLine
		}
		return 0, err
	}
	if len(line) == 0 {
		return 0, errLeadingEmptyLine
	}
	if err := parseRequestLine(line, r); err != nil {
		return 0, err
	}

	var (
		hostCount               int
		host                    []byte
		expectSeen, expectOther bool
		f                       = framing{contentLength: -1}
		maxHeaders              = min(p.limits.MaxHeaders, cap(r.Headers))
	)
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

		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				hostCount++
				if !validHostPort(value, true) {
					return 0, errHost
				}
				host = value
			}
		case 6:
			if equalFold(name, "expect") {
				expectSeen = true
				if !equalFold(value, "100-continue") {
					expectOther = true
				}
			}
		default:
			if err := f.field(name, value); err != nil {
				return 0, err
			}
		}
	}

	if err := f.check(r.Minor); err != nil {
		return 0, err
	}
	r.ContentLength, r.Chunked = f.contentLength, f.chunked
	if hostCount > 1 {
		return 0, errMultipleHost
	}
	if hostCount == 0 && r.Minor == 1 {
		return 0, errMissingHost
	}
	if r.Form == AbsoluteForm {
		r.Host = absoluteAuthority(r.Target)
	} else {
		r.Host = host
	}
	if r.Minor == 1 {
		r.KeepAlive = !f.connClose
		if expectSeen {
			if expectOther {
				return 0, errExpectation
			}
			r.Expect100 = true
		}
	} else {
		r.KeepAlive = f.connKeepAlive && !f.connClose
	}
	return pos, nil
}

// framing collects what the fields of a head say about its body and its
// connection; requests and origin responses follow the same rules.
type framing struct {
	contentLength            int64 // -1 without Content-Length
	clCount, teCount         int
	chunked                  bool
	connClose, connKeepAlive bool
}

// field notes one field line. Content-Length must be a single 1*DIGIT;
// Transfer-Encoding a single "chunked" (any other coding would have to be
// removed or applied by the edge, which it does not do); Trailer may not
// announce a field that frames or routes the message, which net/http
// refuses too.
func (f *framing) field(name, value []byte) *Error {
	switch len(name) {
	case 7:
		if equalFold(name, "trailer") {
			for v := value; len(v) > 0; {
				var elem []byte
				elem, v = nextListElement(v)
				if forbiddenTrailer(elem) {
					return errTrailerField
				}
			}
		}
	case 10:
		if equalFold(name, "connection") {
			c, k := connectionOptions(value)
			f.connClose = f.connClose || c
			f.connKeepAlive = f.connKeepAlive || k
		}
	case 14:
		if equalFold(name, "content-length") {
			f.clCount++
			if f.clCount > 1 {
				return errDupContentLength
			}
			cl, ok := parseContentLength(value)
			if !ok {
				return errContentLength
			}
			f.contentLength = cl
		}
	case 17:
		if equalFold(name, "transfer-encoding") {
			f.teCount++
			if f.teCount > 1 {
				return errTransferEncoding
			}
			switch {
			case equalFold(value, "chunked"):
				f.chunked = true
			case isToken(value):
				return errUnknownCoding
			default:
				return errTransferEncoding
			}
		}
	}
	return nil
}

// check applies the rules that need the whole head: Content-Length beside
// Transfer-Encoding is the classic smuggling pair (RFC 9112 section 6.3
// says to treat it as an error), and Transfer-Encoding in HTTP/1.0 means
// the framing is faulty (section 6.1).
func (f *framing) check(minor int) *Error {
	if f.teCount > 0 {
		if f.clCount > 0 {
			return errCLAndTE
		}
		if minor == 0 {
			return errTEInHTTP10
		}
	}
	return nil
}

// nextLine returns the line starting at buf[start:] without its CRLF and
// the index just past the CRLF. A line longer than maxLen bytes is tooLong,
// even before its end has arrived.
func nextLine(buf []byte, start, maxLen int, tooLong *Error) (line []byte, next int, err error) {
	seg := buf[start:]
	i := bytes.IndexByte(seg, '\n')
	if i < 0 {
		// One more byte is allowed: it may be the CR of the CRLF.
		if len(seg) > maxLen+1 {
			return nil, 0, tooLong
		}
		return nil, 0, ErrIncomplete
	}
	if i == 0 || seg[i-1] != '\r' {
		if i > maxLen {
			return nil, 0, tooLong
		}
		return nil, 0, errBareLF
	}
	if i-1 > maxLen {
		return nil, 0, tooLong
	}
	return seg[:i-1], start + i + 1, nil
}

// lineError turns a character error into errBareCR when the culprit is a CR.
func lineError(line []byte, err *Error) *Error {
	if bytes.IndexByte(line, '\r') >= 0 {
		return errBareCR
	}
	return err
}

func parseRequestLine(line []byte, r *Request) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return lineError(line, errRequestLine)
	}
	r.Method = line[:sp]
	rest := line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 {
		return lineError(line, errRequestLine)
	}
	r.Target = rest[:sp]
	r.Version = rest[sp+1:]

	if !isToken(r.Method) {
		return lineError(line, errMethod)
	}
	v := r.Version
	switch {
	case len(v) == 8 && string(v[:7]) == "HTTP/1." && (v[7] == '0' || v[7] == '1'):
		r.Minor = int(v[7] - '0')
	case len(v) == 8 && string(v[:5]) == "HTTP/" && isDigit(v[5]) && v[6] == '.' && isDigit(v[7]):
		return errVersionNotSupp
	default:
		return lineError(line, errVersion)
	}
	if string(r.Method) == "CONNECT" {
		return errConnect
	}
	return parseTarget(r)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseTarget checks the target's bytes (visible ASCII, no fragment, valid
// percent-encoding everywhere) and its form.
func parseTarget(r *Request) error {
	t := r.Target
	for i := 0; i < len(t); i++ {
		c := t[i]
		if classes[c]&classTarget == 0 {
			return lineError(t, errTarget)
		}
		if c == '%' && (i+2 >= len(t) || classes[t[i+1]]&classHex == 0 || classes[t[i+2]]&classHex == 0) {
			return errTarget
		}
	}
	switch {
	case t[0] == '/':
		r.Form = OriginForm
	case len(t) == 1 && t[0] == '*':
		if string(r.Method) != "OPTIONS" {
			return errAsterisk
		}
		r.Form = AsteriskForm
	default:
		auth := absoluteAuthority(t)
		// IP literals are refused here: checking them properly needs
		// an address parser, and origin-form plus Host covers them.
		if auth == nil || !validHostPort(auth, false) {
			return errTarget
		}
		r.Form = AbsoluteForm
	}
	return nil
}

// absoluteAuthority returns the authority of an http or https absolute-form
// target, or nil when t is not one.
func absoluteAuthority(t []byte) []byte {
	var rest []byte
	switch {
	case len(t) > 7 && equalFold(t[:7], "http://"):
		rest = t[7:]
	case len(t) > 8 && equalFold(t[:8], "https://"):
		rest = t[8:]
	default:
		return nil
	}
	end := len(rest)
	for i, c := range rest {
		if c == '/' || c == '?' {
			end = i
			break
		}
	}
	if end == 0 {
		return nil
	}
	return rest[:end]
}

// validHostPort accepts host [":" port] where host is a reg-name of
// unreserved and sub-delim characters (no percent-encoding, no userinfo)
// or, if ipLiteral, a bracketed IPv6 literal of hex digits, ':' and '.'.
// The port, if its colon is present, is 1 to 5 digits.
func validHostPort(h []byte, ipLiteral bool) bool {
	if len(h) == 0 {
		return false
	}
	i := 0
	if h[0] == '[' {
		if !ipLiteral {
			return false
		}
		j := bytes.IndexByte(h, ']')
		if j < 3 {
			return false
		}
		for _, c := range h[1:j] {
			if classes[c]&classHex == 0 && c != ':' && c != '.' {
				return false
			}
		}
		i = j + 1
	} else {
		for i < len(h) && classes[h[i]]&classHost != 0 {
			i++
		}
		if i == 0 {
			return false
		}
	}
	if i == len(h) {
		return true
	}
	if h[i] != ':' {
		return false
	}
	port := h[i+1:]
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	for _, c := range port {
		if !isDigit(c) {
			return false
		}
	}
	return true
}

// parseFieldLine splits a field line into name and value: the name is a
// token followed directly by ':', the value has its surrounding whitespace
// removed and holds no control characters other than HTAB.
func parseFieldLine(line []byte) (name, value []byte, err error) {
	j := 0
	for j < len(line) && classes[line[j]]&classToken != 0 {
		j++
	}
	switch {
	case j == 0 && (line[0] == ' ' || line[0] == '\t'):
		return nil, nil, errObsFold
	case j == 0 || j == len(line):
		return nil, nil, lineError(line, errHeaderName)
	case line[j] == ' ' || line[j] == '\t':
		return nil, nil, errSpaceBeforeColon
	case line[j] != ':':
		return nil, nil, lineError(line, errHeaderName)
	}
	name = line[:j]
	value = trimOWS(line[j+1:])
	for _, c := range value {
		if classes[c]&classValue == 0 {
			return nil, nil, lineError(line, errHeaderValue)
		}
	}
	return name, value, nil
}

// parseContentLength accepts 1*DIGIT that fits an int64.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// connectionOptions reports whether a Connection value lists "close" and
// "keep-alive"; other options are left to hop-by-hop removal.
func connectionOptions(v []byte) (hasClose, hasKeepAlive bool) {
	for len(v) > 0 {
		var opt []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			opt, v = v[:i], v[i+1:]
		} else {
			opt, v = v, nil
		}
		opt = trimOWS(opt)
		switch {
		case equalFold(opt, "close"):
			hasClose = true
		case equalFold(opt, "keep-alive"):
			hasKeepAlive = true
		}
	}
	return hasClose, hasKeepAlive
}
