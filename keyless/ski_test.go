package keyless

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
)

// spkiBitsSKI is the spec's definition read literally: parse the DER
// SubjectPublicKeyInfo and hash the contents of its subjectPublicKey BIT
// STRING.
func spkiBitsSKI(t *testing.T, pub crypto.PublicKey) SKI {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if rest, err := asn1.Unmarshal(der, &spki); err != nil || len(rest) != 0 {
		t.Fatalf("parse SPKI: %v (%d bytes left)", err, len(rest))
	}
	return sha1.Sum(spki.PublicKey.Bytes)
}

func TestSKIOfMatchesSPKI(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := []struct {
		name string
		pub  crypto.PublicKey
	}{{"rsa2048", &rsaKey.PublicKey}}
	for _, c := range []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, struct {
			name string
			pub  crypto.PublicKey
		}{c.Params().Name, &k.PublicKey})
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys = append(keys, struct {
		name string
		pub  crypto.PublicKey
	}{"ed25519", edPub})

	for _, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			got, err := SKIOf(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			if want := spkiBitsSKI(t, k.pub); got != want {
				t.Fatalf("SKIOf = %v, SHA-1 of SPKI bits = %v", got, want)
			}
		})
	}
}

// TestSKIOfOpenSSL checks SKIOf against certificates made by OpenSSL
// (testdata/ski/gen.sh), whose subjectKeyIdentifier=hash extension is the
// same RFC 5280 method 1, computed by code that is not Go's.
func TestSKIOfOpenSSL(t *testing.T) {
	files, err := filepath.Glob("testdata/ski/*.pem")
	if err != nil || len(files) == 0 {
		t.Fatalf("no certificates: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			blk, _ := pem.Decode(b)
			if blk == nil {
				t.Fatal("no PEM block")
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			got, err := SKIOf(cert.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got[:], cert.SubjectKeyId) {
				t.Fatalf("SKIOf = %v, OpenSSL's SKI = %x", got, cert.SubjectKeyId)
			}
		})
	}
}

func TestSKIOfKnownAnswer(t *testing.T) {
	// RFC 8032 §7.1 TEST 1 public key; the SKI is SHA-1 of its 32 bytes
	// (sha1sum of the raw key gives the expected value).
	pub := ed25519.PublicKey{
		0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
		0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a}
	got, err := SKIOf(pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := SKI(sha1.Sum(pub)); got != want || got.String() != want.String() {
		t.Fatalf("SKIOf = %v, want %v", got, want)
	}
	if s := got.String(); len(s) != 40 || s != lower(s) {
		t.Fatalf("String = %q, want 40 lowercase hex digits", s)
	}
}

func lower(s string) string { return string(bytes.ToLower([]byte(s))) }

func TestSKIOfErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pub  crypto.PublicKey
	}{
		{"nil", nil},
		{"nil-rsa", (*rsa.PublicKey)(nil)},
		{"rsa-no-modulus", &rsa.PublicKey{E: 65537}},
		{"nil-ecdsa", (*ecdsa.PublicKey)(nil)},
		{"ecdsa-no-point", &ecdsa.PublicKey{Curve: elliptic.P256(), X: big.NewInt(0), Y: big.NewInt(0)}},
		{"ed25519-short", ed25519.PublicKey(make([]byte, 31))},
		{"ed25519-pointer", new(ed25519.PublicKey)},
		{"private-key", ed25519.PrivateKey(make([]byte, 64))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := SKIOf(tc.pub); err == nil {
				t.Fatalf("SKIOf = %v, want an error", s)
			}
		})
	}
}

func TestDigestOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    *big.Int
		hex  string // the spec's %X form
	}{
		{"small", big.NewInt(0xabc), "ABC"},
		{"leading-zero-nibble", big.NewInt(0x0f00), "F00"},
		{"byte-boundary", new(big.Int).Lsh(big.NewInt(1), 64), "10000000000000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := DigestOf(&rsa.PublicKey{N: tc.n, E: 3})
			if want := Digest(sha256.Sum256([]byte(tc.hex))); got != want {
				t.Fatalf("DigestOf = %v, want SHA-256(%q) = %v", got, tc.hex, want)
			}
		})
	}
	if d := DigestOf(nil); !d.IsZero() {
		t.Fatalf("DigestOf(nil) = %v", d)
	}
}
