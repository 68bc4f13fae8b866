package keyless

import (
	"errors"
	"strconv"
)

// ErrTooLarge means a message would not fit the 16-bit body length. The
// established encoder panics here; a length the caller chose (a big seal
// blob, say) is the caller's error to handle, not a crash.
var ErrTooLarge = errors.New("keyless: message too large")

// Reason says which rule a malformed message broke. Its String is a short
// constant fit for a metric label.
type Reason uint8

const (
	// ReasonShortHeader: fewer than HeaderLen bytes. Value is the length.
	ReasonShortHeader Reason = iota + 1
	// ReasonVersion: major version other than 1. Value is the major version.
	ReasonVersion
	// ReasonBodyLength: the bytes after the header are not as many as the
	// header's body length. Value is the number present, Limit the header's.
	ReasonBodyLength
	// ReasonItemOverrun: an item's data runs past the end of the body. Value
	// is its declared length, Limit the bytes left after its header.
	ReasonItemOverrun
	// ReasonDuplicateTag: a known tag appears twice.
	ReasonDuplicateTag
	// ReasonItemLength: an opcode, IP or compliance-region item whose length
	// the spec forbids. Value is the length.
	ReasonItemLength
	// ReasonResponseOp: Message.Err was asked about a message whose opcode
	// is not a response opcode. Value is the opcode.
	ReasonResponseOp
	// ReasonErrorPayload: an OpError response whose payload is not exactly
	// one byte. Value is the payload length.
	ReasonErrorPayload
)

func (r Reason) String() string {
	switch r {
	case ReasonShortHeader:
		return "short_header"
	case ReasonVersion:
		return "version"
	case ReasonBodyLength:
		return "body_length"
	case ReasonItemOverrun:
		return "item_overrun"
	case ReasonDuplicateTag:
		return "duplicate_tag"
	case ReasonItemLength:
		return "item_length"
	case ReasonResponseOp:
		return "response_op"
	case ReasonErrorPayload:
		return "error_payload"
	}
	return "unknown"
}

// ParseError is a message the codec refused.
//
// Every ParseError means: close the connection. That is what the
// established key server and client do on any message they cannot parse
// (they never send ErrFormat), and once a peer has sent one malformed
// message nothing else it sends can be trusted. Code gives the error code
// the spec assigns, for metrics and logs; it is never sent.
//
// Creating one allocates, which Decode accepts because the connection is
// closed right after.
type ParseError struct {
	Reason Reason
	Offset int // where the header or item at fault starts in the message
	Tag    Tag // the item at fault, for item reasons
	Value  int // what was found; see the Reason constants
	Limit  int // what it was checked against; see the Reason constants
}

// Code is ErrVersionMismatch for a version error and ErrFormat otherwise.
func (e *ParseError) Code() ErrCode {
	if e.Reason == ReasonVersion {
		return ErrVersionMismatch
	}
	return ErrFormat
}

// Unwrap makes errors.Is(err, ErrFormat) true for any parse error.
func (e *ParseError) Unwrap() error { return e.Code() }

func (e *ParseError) Error() string {
	itoa := strconv.Itoa
	item := func() string {
		name := "item " + hexByte(byte(e.Tag))
		if e.Tag.Known() {
			name += " (" + e.Tag.String() + ")"
		}
		return name + " at offset " + itoa(e.Offset)
	}
	switch e.Reason {
	case ReasonShortHeader:
		return "keyless: message of " + itoa(e.Value) + " bytes is shorter than the 8-byte header"
	case ReasonVersion:
		return "keyless: major version " + itoa(e.Value) + ", want 1"
	case ReasonBodyLength:
		return "keyless: header says " + itoa(e.Limit) + " body bytes, message has " + itoa(e.Value)
	case ReasonItemOverrun:
		return "keyless: " + item() + " declares " + itoa(e.Value) + " bytes, only " + itoa(e.Limit) + " left in body"
	case ReasonDuplicateTag:
		return "keyless: " + item() + " repeats a tag already seen"
	case ReasonItemLength:
		return "keyless: " + item() + " has invalid length " + itoa(e.Value)
	case ReasonResponseOp:
		return "keyless: opcode " + Op(e.Value).String() + " is not a response"
	case ReasonErrorPayload:
		return "keyless: error response payload has " + itoa(e.Value) + " bytes, want 1"
	}
	return "keyless: malformed message"
}

// RemoteError is an OpError response: the peer ran the request and reports
// that it failed with Code.
type RemoteError struct {
	Code ErrCode
}

func (e *RemoteError) Error() string { return "keyless: remote: " + e.Code.text() }

// Unwrap makes errors.Is(err, ErrKeyNotFound) and the like work.
func (e *RemoteError) Unwrap() error { return e.Code }
