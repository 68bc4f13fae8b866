package keyless

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// SKI is the Subject Key Identifier that selects a key on the key server:
// SHA-1 of the contents of the subjectPublicKey BIT STRING (RFC 5280
// §4.2.1.2 method 1). The all-zero value means "absent".
type SKI [20]byte

// IsZero reports whether s is absent. The server answers a request
// without an SKI with ErrInternal, not ErrKeyNotFound.
func (s SKI) IsZero() bool { return s == SKI{} }

// String is lowercase hex, the form logs use and crt.sh accepts as ?ski=.
func (s SKI) String() string { return hex.EncodeToString(s[:]) }

// SKIOf computes the SKI of an RSA, ECDSA (P-224, P-256, P-384, P-521) or
// Ed25519 public key, the types crypto/x509 returns for certificates.
//
// It hashes what the certificate's SubjectPublicKeyInfo carries in its BIT
// STRING, never the whole SPKI and never the certificate's own SKI
// extension (which may have been made differently, as recent Go versions
// do with truncated SHA-256).
func SKIOf(pub crypto.PublicKey) (SKI, error) {
	var bits []byte
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k == nil || k.N == nil {
			return SKI{}, fmt.Errorf("keyless: ski of an empty RSA key")
		}
		bits = x509.MarshalPKCS1PublicKey(k) // RSAPublicKey ::= SEQUENCE { n, e }
	case *ecdsa.PublicKey:
		if k == nil {
			return SKI{}, fmt.Errorf("keyless: ski of an empty ECDSA key")
		}
		b, err := k.Bytes() // 0x04 || X || Y, each padded to the field size
		if err != nil {
			return SKI{}, fmt.Errorf("keyless: ski of ECDSA key: %w", err)
		}
		bits = b
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return SKI{}, fmt.Errorf("keyless: ski of Ed25519 key of %d bytes, want %d", len(k), ed25519.PublicKeySize)
		}
		bits = k
	default:
		return SKI{}, fmt.Errorf("keyless: ski of unsupported key type %T", pub)
	}
	return sha1.Sum(bits), nil
}

// Digest is the legacy certificate digest item (tag 0x01); all zero means
// absent. Current peers neither send nor read it; it exists for peers that
// still select keys by it.
type Digest [32]byte

// IsZero reports whether d is absent.
func (d Digest) IsZero() bool { return d == Digest{} }

// String is lowercase hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// DigestOf computes the legacy digest of an RSA key: SHA-256 of the modulus
// written as uppercase hexadecimal ASCII without leading zeros or "0x"
// (Go's %X of a big.Int), as KEYLESS.md §5 defines it. It is defined for
// RSA only; a nil key gives the zero (absent) Digest.
func DigestOf(pub *rsa.PublicKey) Digest {
	if pub == nil || pub.N == nil {
		return Digest{}
	}
	return sha256.Sum256(fmt.Appendf(nil, "%X", pub.N))
}
