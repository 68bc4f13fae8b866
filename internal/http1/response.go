package http1

import "strconv"

// BodyChunked, given as AppendResponseHead's contentLength, announces a
// chunked body, written with AppendChunk and ended with AppendLastChunk.
const BodyChunked = -1

// AppendResponseHead appends an HTTP/1.1 response head to dst and returns
// the extended slice: the status line with the standard reason phrase, the
// headers in order, the framing field and the empty line. It allocates
// nothing when dst has room.
//
// contentLength is the body length, or BodyChunked. No framing field is
// written for 1xx, 204 and 304 responses, which have no body (RFC 9110
// sections 8.6 and 15.4.5); for a HEAD response give the length the GET
// would have. Content-Length and Transfer-Encoding in headers are skipped,
// so the framing is only ever the one chosen here. Header names and values
// are written as given: they must be valid field names and values.
//
// status must be in 100..999; anything else is written as 500.
func AppendResponseHead(dst []byte, status int, contentLength int64, headers ...Header) []byte {
	dst, status = appendStatusLine(dst, status)
	for i := range headers {
		h := &headers[i]
		if isFramingField(h.Name) {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	switch {
	case status < 200 || status == 204 || status == 304:
	case contentLength == BodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case contentLength >= 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, contentLength, 10)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// appendStatusLine appends the status line for status, or for 500 when
// status is not three digits, and returns the status written.
func appendStatusLine(dst []byte, status int) ([]byte, int) {
	if status < 100 || status > 999 {
		status = 500
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, StatusText(status)...)
	return append(dst, "\r\n"...), status
}

func isFramingField(name []byte) bool {
	return equalFold(name, "content-length") || equalFold(name, "transfer-encoding")
}

// AppendChunk appends data as one chunk of a chunked body. Empty data
// appends nothing, since a zero-size chunk would end the body; end it with
// AppendLastChunk.
func AppendChunk(dst, data []byte) []byte {
	if len(data) == 0 {
		return dst
	}
	dst = strconv.AppendInt(dst, int64(len(data)), 16)
	dst = append(dst, "\r\n"...)
	dst = append(dst, data...)
	return append(dst, "\r\n"...)
}

// AppendLastChunk appends the last chunk, the trailer fields and the empty
// line that end a chunked body. Trailers that frame or route a message
// (Content-Length, Transfer-Encoding, Host, Trailer, Connection) are
// skipped, as the decoder rejects them.
func AppendLastChunk(dst []byte, trailers ...Header) []byte {
	dst = append(dst, "0\r\n"...)
	for i := range trailers {
		h := &trailers[i]
		if forbiddenTrailer(h.Name) {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendErrorResponse appends the complete response for a rejected request:
// e's status, a plain-text body holding e.Reason, and Connection: close,
// since after a framing error nothing more on the connection can be trusted.
// The caller sends it and closes. A nil e is answered as a bare 400.
func AppendErrorResponse(dst []byte, e *Error) []byte {
	status, reason := 400, "bad request"
	if e != nil {
		status, reason = e.Status, e.Reason
	}
	dst, _ = appendStatusLine(dst, status)
	dst = append(dst, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	dst = append(dst, reason...)
	return append(dst, '\n')
}

// StatusText returns the reason phrase registered for status (RFC 9110
// section 15 and the IANA registry), or "" for an unregistered code; an
// empty reason phrase is valid in a status line.
func StatusText(status int) string {
	switch status {
	case 100:
		return "Continue"
	case 101:
		return "Switching Protocols"
	case 102:
		return "Processing"
	case 103:
		return "Early Hints"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 202:
		return "Accepted"
	case 203:
		return "Non-Authoritative Information"
	case 204:
		return "No Content"
	case 205:
		return "Reset Content"
	case 206:
		return "Partial Content"
	case 207:
		return "Multi-Status"
	case 208:
		return "Already Reported"
	case 226:
		return "IM Used"
	case 300:
		return "Multiple Choices"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 304:
		return "Not Modified"
	case 305:
		return "Use Proxy"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 402:
		return "Payment Required"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 406:
		return "Not Acceptable"
	case 407:
		return "Proxy Authentication Required"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 410:
		return "Gone"
	case 411:
		return "Length Required"
	case 412:
		return "Precondition Failed"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 416:
		return "Range Not Satisfiable"
	case 417:
		return "Expectation Failed"
	case 418:
		return "I'm a teapot"
	case 421:
		return "Misdirected Request"
	case 422:
		return "Unprocessable Content"
	case 423:
		return "Locked"
	case 424:
		return "Failed Dependency"
	case 425:
		return "Too Early"
	case 426:
		return "Upgrade Required"
	case 428:
		return "Precondition Required"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 451:
		return "Unavailable For Legal Reasons"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	case 506:
		return "Variant Also Negotiates"
	case 507:
		return "Insufficient Storage"
	case 508:
		return "Loop Detected"
	case 510:
		return "Not Extended"
	case 511:
		return "Network Authentication Required"
	}
	return ""
}
