package keyless

import "strconv"

// Sizes fixed by the wire format (KEYLESS.md §1, §2, §5).
const (
	// HeaderLen is the fixed message header: version (2), body length (2), ID (4).
	HeaderLen = 8
	// ItemHeaderLen is a TLV item's header: tag (1) and data length (2).
	ItemHeaderLen = 3
	// MaxBodyLen is the most the 16-bit length field can describe.
	MaxBodyLen = 0xFFFF
	// MaxMessageLen bounds a read buffer: no message is longer.
	MaxMessageLen = HeaderLen + MaxBodyLen
	// MaxPayloadLen is the largest payload a message can carry when it holds
	// only the opcode and payload items, as every response does.
	MaxPayloadLen = MaxBodyLen - (ItemHeaderLen + 1) - ItemHeaderLen
	// PaddedLen is the total size every message is padded up to, so that a
	// watcher of the TLS record sizes cannot tell operations apart.
	PaddedLen = 1024

	// VersionMajor and VersionMinor are what every message is sent with.
	VersionMajor = 1
	VersionMinor = 0
)

// Tag identifies a TLV item in a message body.
type Tag byte

// Tags, with the names KEYLESS.md §2 gives them.
const (
	TagCertificateDigest Tag = 0x01 // legacy 32-byte RSA key digest (DigestOf)
	TagSNI               Tag = 0x02 // server name the TLS client asked for
	TagClientIP          Tag = 0x03 // end user's IP, 4 or 16 bytes
	TagSKI               Tag = 0x04 // 20-byte key selector (SKIOf)
	TagServerIP          Tag = 0x05 // IP the TLS connection was addressed to
	TagCertID            Tag = 0x06 // opaque certificate ID
	TagOpcode            Tag = 0x11 // exactly one byte: Op
	TagPayload           Tag = 0x12 // operation input, result or error code
	TagCustomFuncName    Tag = 0x13 // function name for OpCustom
	TagExtra             Tag = 0x14 // extra payload agreed out of band
	TagJaegerSpan        Tag = 0x15 // tracing context
	TagRequestContext    Tag = 0x16 // JSON object of request metadata
	TagComplianceRegion  Tag = 0x17 // exactly one byte: Region
	TagPadding           Tag = 0x20 // length hiding; content ignored
)

// knownTags has bit t set for every tag the decoder interprets. All known
// tags are below 64, so one word also serves as the "seen" set in Decode,
// which is what keeps duplicate detection free of maps and allocations.
const knownTags uint64 = 1<<TagCertificateDigest | 1<<TagSNI | 1<<TagClientIP |
	1<<TagSKI | 1<<TagServerIP | 1<<TagCertID | 1<<TagOpcode | 1<<TagPayload |
	1<<TagCustomFuncName | 1<<TagExtra | 1<<TagJaegerSpan | 1<<TagRequestContext |
	1<<TagComplianceRegion | 1<<TagPadding

// Known reports whether the decoder interprets t; unknown tags are skipped
// so that peers can add tags without breaking each other.
func (t Tag) Known() bool { return t < 64 && knownTags&(1<<t) != 0 }

func (t Tag) String() string {
	switch t {
	case TagCertificateDigest:
		return "certificate digest"
	case TagSNI:
		return "SNI"
	case TagClientIP:
		return "client IP"
	case TagSKI:
		return "SKI"
	case TagServerIP:
		return "server IP"
	case TagCertID:
		return "cert ID"
	case TagOpcode:
		return "opcode"
	case TagPayload:
		return "payload"
	case TagCustomFuncName:
		return "custom function name"
	case TagExtra:
		return "extra"
	case TagJaegerSpan:
		return "jaeger span"
	case TagRequestContext:
		return "request context"
	case TagComplianceRegion:
		return "compliance region"
	case TagPadding:
		return "padding"
	}
	return "tag " + hexByte(byte(t))
}

// Op is the value of the opcode item: in a request the operation asked for,
// in a response its status (OpResponse, OpPong or OpError).
type Op byte

// Opcodes, with the names KEYLESS.md §3 gives them. For the sign operations
// other than OpEd25519Sign the payload is a digest already made with the
// named hash.
const (
	OpRSADecrypt       Op = 0x01
	OpRSASignMD5SHA1   Op = 0x02
	OpRSASignSHA1      Op = 0x03
	OpRSASignSHA224    Op = 0x04
	OpRSASignSHA256    Op = 0x05
	OpRSASignSHA384    Op = 0x06
	OpRSASignSHA512    Op = 0x07
	OpECDSASignMD5SHA1 Op = 0x12
	OpECDSASignSHA1    Op = 0x13
	OpECDSASignSHA224  Op = 0x14
	OpECDSASignSHA256  Op = 0x15
	OpECDSASignSHA384  Op = 0x16
	OpECDSASignSHA512  Op = 0x17
	OpEd25519Sign      Op = 0x18 // payload is the whole message, not a hash
	OpSeal             Op = 0x21
	OpUnseal           Op = 0x22
	OpRPC              Op = 0x23
	OpCustom           Op = 0x24 // function named by TagCustomFuncName
	OpRSAPSSSignSHA256 Op = 0x35
	OpRSAPSSSignSHA384 Op = 0x36
	OpRSAPSSSignSHA512 Op = 0x37
	OpPing             Op = 0xF1 // answered with OpPong and the same payload

	OpResponse Op = 0xF0 // success; payload is the result
	OpPong     Op = 0xF2 // answer to OpPing
	OpError    Op = 0xFF // payload is exactly one ErrCode byte

	// OpRSADecryptRaw appears only in old documents and was never
	// implemented; it is named so that code can say so, and CheckRequest
	// answers it with ErrBadOpcode like any unknown opcode.
	OpRSADecryptRaw Op = 0x08
)

// CheckRequest reports whether o may appear in a request: nil for an
// operation the protocol defines, ErrUnexpectedOpcode for a response opcode,
// ErrBadOpcode for anything else (including 0x00, a missing opcode item).
// The result is an ErrCode, so answering it costs no allocation. Whether
// the server actually offers the operation is the server's business.
func (o Op) CheckRequest() error {
	switch o {
	case OpResponse, OpPong, OpError:
		return ErrUnexpectedOpcode
	case OpRSADecrypt, OpRSASignMD5SHA1, OpRSASignSHA1, OpRSASignSHA224,
		OpRSASignSHA256, OpRSASignSHA384, OpRSASignSHA512,
		OpECDSASignMD5SHA1, OpECDSASignSHA1, OpECDSASignSHA224,
		OpECDSASignSHA256, OpECDSASignSHA384, OpECDSASignSHA512,
		OpEd25519Sign, OpSeal, OpUnseal, OpRPC, OpCustom,
		OpRSAPSSSignSHA256, OpRSAPSSSignSHA384, OpRSAPSSSignSHA512, OpPing:
		return nil
	}
	return ErrBadOpcode
}

// Type is the op "type" metric label of KEYLESS.md §3: one of rsa, ecdsa,
// ed25519, rpc, custom, other, unknown. The set is small and fixed, as a
// label must be.
func (o Op) Type() string {
	switch {
	case o >= OpRSADecrypt && o <= OpRSASignSHA512,
		o >= OpRSAPSSSignSHA256 && o <= OpRSAPSSSignSHA512:
		return "rsa"
	case o >= OpECDSASignMD5SHA1 && o <= OpECDSASignSHA512:
		return "ecdsa"
	case o == OpEd25519Sign:
		return "ed25519"
	case o == OpRPC:
		return "rpc"
	case o == OpCustom:
		return "custom"
	case o == OpSeal, o == OpUnseal, o >= OpResponse && o <= OpPong, o == OpError:
		return "other"
	}
	return "unknown"
}

func (o Op) String() string {
	switch o {
	case OpRSADecrypt:
		return "rsa-decrypt"
	case OpRSASignMD5SHA1:
		return "rsa-sign-md5sha1"
	case OpRSASignSHA1:
		return "rsa-sign-sha1"
	case OpRSASignSHA224:
		return "rsa-sign-sha224"
	case OpRSASignSHA256:
		return "rsa-sign-sha256"
	case OpRSASignSHA384:
		return "rsa-sign-sha384"
	case OpRSASignSHA512:
		return "rsa-sign-sha512"
	case OpRSADecryptRaw:
		return "rsa-decrypt-raw"
	case OpECDSASignMD5SHA1:
		return "ecdsa-sign-md5sha1"
	case OpECDSASignSHA1:
		return "ecdsa-sign-sha1"
	case OpECDSASignSHA224:
		return "ecdsa-sign-sha224"
	case OpECDSASignSHA256:
		return "ecdsa-sign-sha256"
	case OpECDSASignSHA384:
		return "ecdsa-sign-sha384"
	case OpECDSASignSHA512:
		return "ecdsa-sign-sha512"
	case OpEd25519Sign:
		return "ed25519-sign"
	case OpSeal:
		return "seal"
	case OpUnseal:
		return "unseal"
	case OpRPC:
		return "rpc"
	case OpCustom:
		return "custom"
	case OpRSAPSSSignSHA256:
		return "rsa-pss-sign-sha256"
	case OpRSAPSSSignSHA384:
		return "rsa-pss-sign-sha384"
	case OpRSAPSSSignSHA512:
		return "rsa-pss-sign-sha512"
	case OpResponse:
		return "response"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	case OpError:
		return "error"
	}
	return "op " + hexByte(byte(o))
}

// Region is the value of the compliance region item.
type Region byte

const (
	// RegionNone is the zero value; it is never sent (the item is left out).
	RegionNone Region = 0x00
	// RegionFedRAMPHigh asks that the key operation stay within FedRAMP High.
	RegionFedRAMPHigh Region = 0x01
)

// ErrCode is the one-byte payload of an OpError response (KEYLESS.md §4).
//
// It implements error so that a handler can return, say, ErrKeyNotFound and
// the server can recover the code with errors.As; a code is one byte, so
// turning it into an error value does not allocate. ErrNone is "no error"
// and is never sent nor returned as an error.
type ErrCode byte

// Error codes, with the names KEYLESS.md §4 gives them.
const (
	ErrNone                ErrCode = 0x00
	ErrCrypto              ErrCode = 0x01 // operation failed, wrong key type, bad digest length
	ErrKeyNotFound         ErrCode = 0x02 // valid SKI, no such key
	ErrRead                ErrCode = 0x03 // defined; never sent by the established server
	ErrVersionMismatch     ErrCode = 0x04 // defined; never sent by the established server
	ErrBadOpcode           ErrCode = 0x05 // unknown opcode, or not allowed here
	ErrUnexpectedOpcode    ErrCode = 0x06 // a response opcode in a request
	ErrFormat              ErrCode = 0x07 // malformed message; peers close instead of sending it
	ErrInternal            ErrCode = 0x08 // key store error, including a missing SKI
	ErrCertNotFound        ErrCode = 0x09
	ErrExpired             ErrCode = 0x0A // sealed blob can no longer be unsealed
	ErrRemoteConfiguration ErrCode = 0x0B // forwarding to another key server failed
)

func (c ErrCode) Error() string { return "keyless: " + c.text() }

// text is the code's meaning without the package prefix, so that
// RemoteError can say where the error came from.
func (c ErrCode) text() string {
	switch c {
	case ErrNone:
		return "no error"
	case ErrCrypto:
		return "cryptography error"
	case ErrKeyNotFound:
		return "key not found"
	case ErrRead:
		return "read error"
	case ErrVersionMismatch:
		return "version mismatch"
	case ErrBadOpcode:
		return "bad opcode"
	case ErrUnexpectedOpcode:
		return "unexpected opcode"
	case ErrFormat:
		return "malformed message"
	case ErrInternal:
		return "internal error"
	case ErrCertNotFound:
		return "certificate not found"
	case ErrExpired:
		return "sealing key expired"
	case ErrRemoteConfiguration:
		return "remote key server configuration error"
	}
	return "error code " + hexByte(byte(c))
}

// hexByte formats b as 0xNN for names of values the spec does not define.
func hexByte(b byte) string {
	s := strconv.FormatUint(uint64(b), 16)
	if len(s) == 1 {
		s = "0" + s
	}
	return "0x" + s
}
