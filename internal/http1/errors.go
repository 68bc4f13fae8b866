package http1

import "errors"

// ErrIncomplete means the buffer does not yet hold a whole request head (or
// chunk-size line, or trailer line): read more and call again with the same
// bytes at the start of the buffer.
var ErrIncomplete = errors.New("http1: incomplete message")

// Error is a message the codec refuses. Status is the response to send
// before closing the connection: 4xx or 5xx for a client's request, always
// 502 for an origin's response head. Reason is a short constant phrase fit
// for the response body and for a metric label.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "http1: " + e.Reason }

// Every rejection is one of these preallocated values, so rejecting costs no
// allocation either. Callers find them with errors.As and read Status.
var (
	errBareLF           = &Error{400, "bare LF line ending"}
	errBareCR           = &Error{400, "bare CR in line"}
	errLeadingEmptyLine = &Error{400, "empty line before request line"}
	errRequestLine      = &Error{400, "malformed request line"}
	errMethod           = &Error{400, "invalid method"}
	errTarget           = &Error{400, "invalid request target"}
	errAsterisk         = &Error{400, "asterisk target outside OPTIONS"}
	errConnect          = &Error{501, "CONNECT not supported"}
	errVersion          = &Error{400, "malformed HTTP version"}
	errVersionNotSupp   = &Error{505, "HTTP version not supported"}
	errURITooLong       = &Error{414, "request line too long"}
	errHeadersTooLarge  = &Error{431, "header section too large"}
	errTooManyHeaders   = &Error{431, "too many header fields"}
	errObsFold          = &Error{400, "obsolete line folding"}
	errHeaderName       = &Error{400, "invalid header name"}
	errSpaceBeforeColon = &Error{400, "whitespace before colon"}
	errHeaderValue      = &Error{400, "invalid header value"}
	errContentLength    = &Error{400, "invalid Content-Length"}
	errDupContentLength = &Error{400, "duplicate Content-Length"}
	errCLAndTE          = &Error{400, "both Content-Length and Transfer-Encoding"}
	errTransferEncoding = &Error{400, "Transfer-Encoding other than a single chunked"}
	errUnknownCoding    = &Error{501, "unsupported transfer coding"}
	errTEInHTTP10       = &Error{400, "Transfer-Encoding in HTTP/1.0"}
	errMissingHost      = &Error{400, "missing Host"}
	errMultipleHost     = &Error{400, "multiple Host"}
	errHost             = &Error{400, "invalid Host"}
	errExpectation      = &Error{417, "unsupported expectation"}
	errChunkSize        = &Error{400, "invalid chunk size"}
	errChunkTooLarge    = &Error{400, "chunk size too large"}
	errChunkExt         = &Error{400, "invalid chunk extension"}
	errChunkLineTooLong = &Error{400, "chunk size line too long"}
	errChunkOverhead    = &Error{400, "too much chunk framing for its data"}
	errChunkDataCRLF    = &Error{400, "missing CRLF after chunk data"}
	errTrailersTooLarge = &Error{431, "trailer section too large"}
	errTooManyTrailers  = &Error{431, "too many trailer fields"}
	errForbiddenTrailer = &Error{400, "framing field in trailers"}
	errTrailerField     = &Error{400, "Trailer names a framing field"}
)

// Rejections of an origin's response head. Each is a 502 toward the client:
// the origin, not the client, broke the protocol. Those that share a cause
// with a request rejection have the same Reason under an "origin" prefix,
// so metrics tell the two sides apart.
var (
	errOriginBareLF           = &Error{502, "origin: bare LF line ending"}
	errOriginBareCR           = &Error{502, "origin: bare CR in line"}
	errOriginStatusLine       = &Error{502, "origin: malformed status line"}
	errOriginVersion          = &Error{502, "origin: malformed HTTP version"}
	errOriginVersionNotSupp   = &Error{502, "origin: HTTP version not supported"}
	errOriginStatus           = &Error{502, "origin: invalid status code"}
	errOriginReason           = &Error{502, "origin: invalid reason phrase"}
	errOriginStatusTooLong    = &Error{502, "origin: status line too long"}
	errOriginHeadersTooLarge  = &Error{502, "origin: header section too large"}
	errOriginTooManyHeaders   = &Error{502, "origin: too many header fields"}
	errOriginObsFold          = &Error{502, "origin: obsolete line folding"}
	errOriginHeaderName       = &Error{502, "origin: invalid header name"}
	errOriginSpaceBeforeColon = &Error{502, "origin: whitespace before colon"}
	errOriginHeaderValue      = &Error{502, "origin: invalid header value"}
	errOriginContentLength    = &Error{502, "origin: invalid Content-Length"}
	errOriginDupContentLength = &Error{502, "origin: duplicate Content-Length"}
	errOriginCLAndTE          = &Error{502, "origin: both Content-Length and Transfer-Encoding"}
	errOriginTransferEncoding = &Error{502, "origin: Transfer-Encoding other than a single chunked"}
	errOriginUnknownCoding    = &Error{502, "origin: unsupported transfer coding"}
	errOriginTEInHTTP10       = &Error{502, "origin: Transfer-Encoding in HTTP/1.0"}
	errOriginTrailerField     = &Error{502, "origin: Trailer names a framing field"}
	errOriginMalformed        = &Error{502, "origin: malformed response head"}
)

// originError turns a rejection found by the helpers shared with the
// request parser into its 502 counterpart. Errors already meant for an
// origin, nil and ErrIncomplete pass through. It runs only on the error
// path, so the switch costs nothing on a good response.
func originError(err error) error {
	e, ok := err.(*Error)
	if !ok || e.Status == 502 {
		return err
	}
	switch e {
	case errBareLF:
		return errOriginBareLF
	case errBareCR:
		return errOriginBareCR
	case errHeadersTooLarge:
		return errOriginHeadersTooLarge
	case errTooManyHeaders:
		return errOriginTooManyHeaders
	case errObsFold:
		return errOriginObsFold
	case errHeaderName:
		return errOriginHeaderName
	case errSpaceBeforeColon:
		return errOriginSpaceBeforeColon
	case errHeaderValue:
		return errOriginHeaderValue
	case errContentLength:
		return errOriginContentLength
	case errDupContentLength:
		return errOriginDupContentLength
	case errCLAndTE:
		return errOriginCLAndTE
	case errTransferEncoding:
		return errOriginTransferEncoding
	case errUnknownCoding:
		return errOriginUnknownCoding
	case errTEInHTTP10:
		return errOriginTEInHTTP10
	case errTrailerField:
		return errOriginTrailerField
	}
	// Unreachable while the table above covers every error the shared
	// helpers return; a new one still ends as a 502, not a client error.
	return errOriginMalformed
}
