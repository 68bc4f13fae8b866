package http1

import (
	"net/netip"
	"strconv"
)

// AppendForwardedRequest appends to dst the head of r as the edge sends it
// to the origin, and returns the extended slice. It allocates nothing when
// dst has room for the result (about the size of the parsed head plus 200
// bytes).
//
// What it writes, in order:
//
//   - The request line: r's method, its target reduced to origin-form
//     (an absolute-form target loses its scheme and authority; "*" stays),
//     and HTTP/1.1, the version the edge speaks to origins. An HTTP/1.0
//     request without Host stays HTTP/1.0, since there is no host to name.
//   - Every field of r in order, except the hop-by-hop ones (RFC 9110
//     section 7.6.1): Connection, Keep-Alive, Proxy-Connection, TE,
//     Trailer, Transfer-Encoding, Upgrade, and every field named in a
//     Connection option. Proxy-Authorization and Proxy-Authenticate are
//     removed too: their credentials are for the edge, and an origin behind
//     a reverse proxy must not see them. The fields the edge writes itself
//     (Host, Content-Length, X-Forwarded-For, Forwarded, Via) are also
//     skipped here and written below, so a Connection option naming one of
//     them can never remove the Host or the framing.
//   - Host: r.Host (for absolute-form, the target's authority, as RFC 9112
//     section 3.2.2 requires); omitted only when r.Host is empty.
//   - X-Forwarded-For: the client's own X-Forwarded-For values, joined with
//     ", " in order, then clientIP; a single field, as nginx's
//     $proxy_add_x_forwarded_for. The client's part is not validated beyond
//     the parser's field-value rules (it cannot break framing): an origin
//     must trust only the entries added by proxies it knows, counted from
//     the right.
//   - Forwarded (RFC 7239): the client's Forwarded elements in the same way,
//     then for=clientIP;proto=proto;host=r.Host. An IPv6 address is
//     bracketed and quoted (for="[2001:db8::1]"); an invalid clientIP is
//     "unknown". IPv4-mapped IPv6 addresses are written as IPv4, and zones
//     are dropped, in both fields.
//   - Via: the client's Via values, then "1.1 " + via. via is the edge's
//     pseudonym from the profile and must be a token.
//   - The body framing as parsed: Transfer-Encoding: chunked, or
//     Content-Length, or nothing for an empty body.
//   - The empty line.
//
// proto is "http" or "https", the scheme the client used.
func AppendForwardedRequest(dst []byte, r *Request, clientIP netip.Addr, proto, via string) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = appendOriginForm(dst, r)
	if len(r.Host) == 0 && r.Minor == 0 {
		dst = append(dst, " HTTP/1.0\r\n"...)
	} else {
		dst = append(dst, " HTTP/1.1\r\n"...)
	}

	dst = appendEndToEnd(dst, r.Headers, skipForward)

	if len(r.Host) > 0 {
		dst = append(dst, "Host: "...)
		dst = append(dst, r.Host...)
		dst = append(dst, "\r\n"...)
	}

	ip := clientIP.Unmap().WithZone("")

	dst = append(dst, "X-Forwarded-For: "...)
	dst = appendExisting(dst, r.Headers, "x-forwarded-for")
	if ip.IsValid() {
		dst = ip.AppendTo(dst)
	} else {
		dst = append(dst, "unknown"...)
	}
	dst = append(dst, "\r\n"...)

	dst = append(dst, "Forwarded: "...)
	dst = appendExisting(dst, r.Headers, "forwarded")
	dst = append(dst, "for="...)
	switch {
	case !ip.IsValid():
		dst = append(dst, "unknown"...)
	case ip.Is6():
		dst = append(dst, `"[`...)
		dst = ip.AppendTo(dst)
		dst = append(dst, `]"`...)
	default:
		dst = ip.AppendTo(dst)
	}
	dst = append(dst, ";proto="...)
	dst = append(dst, proto...)
	if len(r.Host) > 0 {
		dst = append(dst, ";host="...)
		if isToken(r.Host) {
			dst = append(dst, r.Host...)
		} else {
			dst = appendQuoted(dst, r.Host)
		}
	}
	dst = append(dst, "\r\n"...)

	dst = append(dst, "Via: "...)
	dst = appendExisting(dst, r.Headers, "via")
	dst = append(dst, "1.1 "...)
	dst = append(dst, via...)
	dst = append(dst, "\r\n"...)

	switch {
	case r.Chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case r.ContentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendForwardedResponse appends to dst the head of r, an origin's
// response, as the edge sends it to the client, and returns the extended
// slice. It allocates nothing when dst has room for the result (about the
// size of the parsed head plus 100 bytes).
//
// What it writes, in order:
//
//   - The status line: HTTP/1.1 (a proxy sends its own version, RFC 9110
//     section 6.2), r's status and r's reason phrase as received.
//   - Every field of r in order, except the hop-by-hop ones (RFC 9110
//     section 7.6.1): Connection, Keep-Alive, Proxy-Connection, TE,
//     Upgrade, and every field named in a Connection option; and
//     Proxy-Authenticate and Proxy-Authentication-Info, which address the
//     next client on the chain, here the edge's own client, as if the edge
//     asked for proxy credentials. Trailer stays: it is end-to-end, and
//     describes the trailers that verbatim chunked forwarding passes on.
//     The fields written below (Content-Length, Transfer-Encoding, Via)
//     are skipped here, so a Connection option cannot remove the framing.
//   - Via: the origin's Via values, then the protocol received from the
//     origin ("1.1" or "1.0") and via, the edge's pseudonym, a token.
//   - The framing as parsed, since the body is forwarded as it came:
//     Transfer-Encoding: chunked, or Content-Length, or nothing (a body
//     read until close). Nothing either for 1xx and 204, which may not
//     carry those fields (RFC 9110 section 8.6, RFC 9112 section 6.1); a
//     304 or a response to HEAD keeps them, as metadata.
//   - Connection: close when closeConn is set.
//   - The empty line.
//
// The caller owns the connection decision: it sets closeConn when it will
// close the client connection after this response, and it must do so when
// BodyFraming says FramingClose, since the client then reads until close
// too. A chunked response must not go to an HTTP/1.0 client (RFC 9112
// section 6.1): the caller decodes it and closes instead.
func AppendForwardedResponse(dst []byte, r *Response, via string, closeConn bool) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, ' ')
	dst = append(dst, r.Reason...)
	dst = append(dst, "\r\n"...)

	dst = appendEndToEnd(dst, r.Headers, skipForwardResponse)

	dst = append(dst, "Via: "...)
	dst = appendExisting(dst, r.Headers, "via")
	if r.Minor == 0 {
		dst = append(dst, "1.0 "...)
	} else {
		dst = append(dst, "1.1 "...)
	}
	dst = append(dst, via...)
	dst = append(dst, "\r\n"...)

	switch {
	case r.Status < 200 || r.Status == 204:
	case r.Chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case r.ContentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, r.ContentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// skipForwardResponse reports the fields never copied toward the client:
// the hop-by-hop set and the fields AppendForwardedResponse writes itself.
func skipForwardResponse(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 3:
		return equalFold(name, "via")
	case 7:
		return equalFold(name, "upgrade")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 14:
		return equalFold(name, "content-length")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 25:
		return equalFold(name, "proxy-authentication-info")
	}
	return false
}

// appendOriginForm appends r's target in origin-form: an absolute-form
// target loses "scheme://authority", and an empty path becomes "/".
func appendOriginForm(dst []byte, r *Request) []byte {
	t := r.Target
	if r.Form != AbsoluteForm {
		return append(dst, t...)
	}
	i := len("http://")
	if t[4] != ':' {
		i = len("https://")
	}
	i += len(r.Host) // the authority, which absoluteAuthority returned as r.Host
	rest := t[i:]
	if len(rest) == 0 || rest[0] != '/' {
		dst = append(dst, '/')
	}
	return append(dst, rest...)
}

// skipForward reports the fields never copied toward the origin: the fixed
// hop-by-hop set and the fields AppendForwardedRequest writes itself.
func skipForward(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "te")
	case 3:
		return equalFold(name, "via")
	case 4:
		return equalFold(name, "host")
	case 7:
		return equalFold(name, "trailer") || equalFold(name, "upgrade")
	case 9:
		return equalFold(name, "forwarded")
	case 10:
		return equalFold(name, "connection") || equalFold(name, "keep-alive")
	case 14:
		return equalFold(name, "content-length")
	case 15:
		return equalFold(name, "x-forwarded-for")
	case 16:
		return equalFold(name, "proxy-connection")
	case 17:
		return equalFold(name, "transfer-encoding")
	case 18:
		return equalFold(name, "proxy-authenticate")
	case 19:
		return equalFold(name, "proxy-authorization")
	}
	return false
}

// namedInConnection reports whether name is an option of any Connection
// field in hs (RFC 9110 section 7.6.1).
func namedInConnection(hs []Header, name []byte) bool {
	for i := range hs {
		if !equalFold(hs[i].Name, "connection") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			var opt []byte
			opt, v = nextListElement(v)
			if equalFoldBytes(opt, name) {
				return true
			}
		}
	}
	return false
}

// nextListElement splits the first element off a comma-separated list,
// trimmed of whitespace.
func nextListElement(v []byte) (elem, rest []byte) {
	for i, c := range v {
		if c == ',' {
			return trimOWS(v[:i]), v[i+1:]
		}
	}
	return trimOWS(v), nil
}

// appendExisting appends the value of every field in hs named lower, each
// followed by ", ". Values are copied whole, not split at commas, so quoted
// strings and comments inside them stay byte for byte; empty values are
// skipped. Fields named in a Connection option are hop-by-hop and left out.
func appendExisting(dst []byte, hs []Header, lower string) []byte {
	for i := range hs {
		h := &hs[i]
		if len(h.Value) == 0 || !equalFold(h.Name, lower) || namedInConnection(hs, h.Name) {
			continue
		}
		dst = append(dst, h.Value...)
		dst = append(dst, ", "...)
	}
	return dst
}

// appendQuoted appends b as a quoted-string.
func appendQuoted(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// equalFoldBytes compares a and b ASCII case-insensitively.
func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// appendEndToEnd appends the fields of hs a proxy passes on: all but those
// skip names and those the message's Connection field names (hop-by-hop).
func appendEndToEnd(dst []byte, hs []Header, skip func(name []byte) bool) []byte {
	hasConnection := false
	for i := range hs {
		if equalFold(hs[i].Name, "connection") {
			hasConnection = true
			break
		}
	}
	for i := range hs {
		h := &hs[i]
		if skip(h.Name) || hasConnection && namedInConnection(hs, h.Name) {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}
