package http1

import "errors"

// ErrIncomplete means the buffer does not yet hold a whole request head (or
// chunk-size line, or trailer line): read more and call again with the same
// bytes at the start of the buffer.
var ErrIncomplete = errors.New("http1: incomplete message")

// Error is a request the codec refuses. Status is the response to send
// before closing the connection; Reason is a short constant phrase fit for
// the response body and for a metric label.
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
)
