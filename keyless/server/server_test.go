package server_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"math/big"
	"net"
	"strings"
	"testing"

	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// TestPingWorkedExample sends KEYLESS.md's worked example byte for byte
// and expects the pong it shows.
func TestPingWorkedExample(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	req := mustHex(t, "0100 03f8 00000007"+"110001f1"+"120006"+hex.EncodeToString([]byte("Hello!"))+"2003e8"+strings.Repeat("00", 1000))
	if len(req) != 1024 {
		t.Fatalf("example is %d bytes", len(req))
	}
	want := bytes.Clone(req)
	want[11] = 0xf2
	got := exchange(t, c, req)
	if !bytes.Equal(got.raw, want) {
		t.Fatalf("pong:\n got %x\nwant %x", got.raw, want)
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPingPadding checks the padding of pongs around the 1024-byte edge,
// and a pong with an empty payload (no payload item at all).
func TestPingPadding(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	for _, tc := range []struct {
		name    string
		payload int
		wantLen int
	}{
		{name: "empty", payload: 0, wantLen: 1024},
		{name: "small", payload: 6, wantLen: 1024},
		{name: "pad-zero-exact", payload: 1006, wantLen: 1024}, // 8+4+3+1006 = 1021: a 0-byte padding item fits exactly
		{name: "pad-1025", payload: 1007, wantLen: 1025},       // 1022: padding would be negative; empty item
		{name: "pad-1026", payload: 1008, wantLen: 1026},       // 1023
		{name: "no-pad", payload: 1009, wantLen: 1024},         // 1024: no padding item
		{name: "large", payload: 4000, wantLen: 8 + 4 + 3 + 4000},
		{name: "largest", payload: 65528, wantLen: 65543},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := make([]byte, tc.payload)
			rand.Read(payload)
			got := exchange(t, c, request(42, opPing, nil, payload))
			if got.op != opPong || got.id != 42 {
				t.Fatalf("op %#x id %d, want pong 42", got.op, got.id)
			}
			if !bytes.Equal(got.payload, payload) {
				t.Fatalf("pong payload differs")
			}
			if tc.payload == 0 && bytes.Contains(got.raw[8:12], []byte{tagPayload}) {
				t.Fatalf("empty payload sent as an item")
			}
			if len(got.raw) != tc.wantLen {
				t.Fatalf("pong is %d bytes, want %d", len(got.raw), tc.wantLen)
			}
		})
	}
}

// opCase is one key operation: the opcode, how the payload is made from
// a message, and how the result is verified.
type opCase struct {
	name string
	op   byte
	hash crypto.Hash // 0: payload is the message (Ed25519)
	kind string      // pkcs1, pss, ecdsa, ed25519
}

var signOps = []opCase{
	{"rsa-md5sha1", 0x02, crypto.MD5SHA1, "pkcs1"},
	{"rsa-sha1", 0x03, crypto.SHA1, "pkcs1"},
	{"rsa-sha224", 0x04, crypto.SHA224, "pkcs1"},
	{"rsa-sha256", 0x05, crypto.SHA256, "pkcs1"},
	{"rsa-sha384", 0x06, crypto.SHA384, "pkcs1"},
	{"rsa-sha512", 0x07, crypto.SHA512, "pkcs1"},
	{"ecdsa-md5sha1", 0x12, crypto.MD5SHA1, "ecdsa"},
	{"ecdsa-sha1", 0x13, crypto.SHA1, "ecdsa"},
	{"ecdsa-sha224", 0x14, crypto.SHA224, "ecdsa"},
	{"ecdsa-sha256", 0x15, crypto.SHA256, "ecdsa"},
	{"ecdsa-sha384", 0x16, crypto.SHA384, "ecdsa"},
	{"ecdsa-sha512", 0x17, crypto.SHA512, "ecdsa"},
	{"ed25519", 0x18, 0, "ed25519"},
	{"rsa-pss-sha256", 0x35, crypto.SHA256, "pss"},
	{"rsa-pss-sha384", 0x36, crypto.SHA384, "pss"},
	{"rsa-pss-sha512", 0x37, crypto.SHA512, "pss"},
}

func digest(h crypto.Hash, msg []byte) []byte {
	if h == crypto.MD5SHA1 {
		m := md5.Sum(msg)
		s := sha1.Sum(msg)
		return append(m[:], s[:]...)
	}
	d := h.New()
	d.Write(msg)
	return d.Sum(nil)
}

// TestSignEveryOpEveryKey runs every sign opcode against every key: the
// matching key type must give a signature that verifies, any other key
// type ErrCrypto (0x01).
func TestSignEveryOpEveryKey(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	checkEveryOp(t, in.Dial(t), in.Keys.All())
}

// checkEveryOp runs every sign opcode with every key over c.
func checkEveryOp(t *testing.T, c net.Conn, keys []crypto.Signer) {
	msg := []byte("rampart keyless test message")
	id := uint32(1)
	for _, key := range keys {
		pub := key.Public()
		ski := servertest.SKI(t, pub)
		for _, oc := range signOps {
			keyKind := map[string]string{"pkcs1": "rsa", "pss": "rsa", "ecdsa": "ecdsa", "ed25519": "ed25519"}[oc.kind]
			name := oc.name + "/" + keyName(pub)
			t.Run(name, func(t *testing.T) {
				id++
				payload := msg
				if oc.hash != 0 {
					payload = digest(oc.hash, msg)
				}
				got := exchange(t, c, request(id, oc.op, ski[:], payload))
				if got.id != id {
					t.Fatalf("reply id %d, want %d", got.id, id)
				}
				if keyType(pub) != keyKind {
					if !bytes.Equal(got.raw, errorReply(id, 0x01)) {
						t.Fatalf("op on a %s key: got %x, want ErrCrypto", keyType(pub), got.raw[:16])
					}
					return
				}
				if got.op != opResponse {
					t.Fatalf("op %#x payload %x, want a response", got.op, got.payload)
				}
				verify(t, oc, pub, msg, payload, got.payload)
			})
		}
	}
}

func keyType(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "?"
}

func keyName(pub crypto.PublicKey) string {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return "ecdsa-" + k.Curve.Params().Name
	}
	return keyType(pub)
}

func verify(t testing.TB, oc opCase, pub crypto.PublicKey, msg, payload, sig []byte) {
	t.Helper()
	var err error
	switch oc.kind {
	case "pkcs1":
		err = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), oc.hash, payload, sig)
	case "pss":
		err = rsa.VerifyPSS(pub.(*rsa.PublicKey), oc.hash, payload, sig,
			&rsa.PSSOptions{SaltLength: oc.hash.Size(), Hash: oc.hash})
	case "ecdsa":
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), payload, sig) {
			err = errBadSig
		}
	case "ed25519":
		if !ed25519.Verify(pub.(ed25519.PublicKey), msg, sig) {
			err = errBadSig
		}
	}
	if err != nil {
		t.Fatalf("%s signature does not verify: %v", oc.name, err)
	}
}

var errBadSig = &sigError{}

type sigError struct{}

func (*sigError) Error() string { return "bad signature" }

// TestRSADecrypt checks the raw RSA private operation: a PKCS#1 v1.5
// ciphertext of a known plaintext comes back as the whole k-byte block
// 00 02 PS 00 M, padding not removed; a raw m^e comes back as m,
// left-padded with zeros.
func TestRSADecrypt(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	checkDecrypt(t, in.Dial(t), &in.Keys.RSA.PublicKey)
}

func checkDecrypt(t *testing.T, c net.Conn, pub *rsa.PublicKey) {
	t.Helper()
	ski := servertest.SKI(t, pub)
	k := pub.Size()

	plain := []byte("pre-master secret 48 bytes long, more or less...")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, plain)
	if err != nil {
		t.Fatal(err)
	}
	got := exchange(t, c, request(1, 0x01, ski[:], ct))
	if got.op != opResponse || len(got.payload) != k {
		t.Fatalf("op %#x, %d bytes, want a %d-byte response", got.op, len(got.payload), k)
	}
	block := got.payload
	sep := bytes.IndexByte(block[2:], 0) + 2
	if block[0] != 0 || block[1] != 2 || sep < 10 || !bytes.Equal(block[sep+1:], plain) {
		t.Fatalf("block %x is not 00 02 PS 00 plaintext", block)
	}

	// A small m: the result must be left-padded to k bytes.
	m := big.NewInt(0x1234567)
	cm := new(big.Int).Exp(m, big.NewInt(int64(pub.E)), pub.N)
	got = exchange(t, c, request(2, 0x01, ski[:], cm.FillBytes(make([]byte, k))))
	want := m.FillBytes(make([]byte, k))
	if got.op != opResponse || !bytes.Equal(got.payload, want) {
		t.Fatalf("raw decrypt: op %#x %x, want %x", got.op, got.payload, want)
	}
	// The same ciphertext with its leading zeros stripped, or with extra
	// ones, is the same integer.
	got = exchange(t, c, request(3, 0x01, ski[:], cm.Bytes()))
	if got.op != opResponse || !bytes.Equal(got.payload, want) {
		t.Fatalf("raw decrypt of the short form: op %#x", got.op)
	}
	got = exchange(t, c, request(4, 0x01, ski[:], append([]byte{0, 0}, cm.FillBytes(make([]byte, k))...)))
	if got.op != opResponse || !bytes.Equal(got.payload, want) {
		t.Fatalf("raw decrypt of the zero-extended form: op %#x", got.op)
	}
	// Not below n: ErrCrypto.
	if got := exchange(t, c, request(5, 0x01, ski[:], pub.N.Bytes())); !bytes.Equal(got.raw, errorReply(5, 0x01)) {
		t.Fatalf("decrypt of n: op %#x", got.op)
	}
}

// TestErrors checks each error the spec assigns, byte for byte.
func TestErrors(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	rsaSKI := servertest.SKI(t, in.Keys.RSA.Public())
	ecSKI := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	edSKI := servertest.SKI(t, in.Keys.Ed25519.Public())
	unknown := bytes.Repeat([]byte{0xab}, 20)
	sha256 := digest(crypto.SHA256, []byte("x"))
	n := in.Keys.RSA.N.Bytes()
	nPlus1 := new(big.Int).Add(in.Keys.RSA.N, big.NewInt(1)).Bytes()

	for i, tc := range []struct {
		name string
		req  func(id uint32) []byte
		code byte
	}{
		{"missing ski", func(id uint32) []byte { return request(id, 0x05, nil, sha256) }, 0x08},
		{"all-zero ski", func(id uint32) []byte { return request(id, 0x05, make([]byte, 20), sha256) }, 0x08},
		{"short ski is ignored, so missing", func(id uint32) []byte { return request(id, 0x05, rsaSKI[:19], sha256) }, 0x08},
		{"unknown ski", func(id uint32) []byte { return request(id, 0x05, unknown, sha256) }, 0x02},
		{"rsa op on ecdsa key", func(id uint32) []byte { return request(id, 0x05, ecSKI[:], sha256) }, 0x01},
		{"decrypt with ecdsa key", func(id uint32) []byte { return request(id, 0x01, ecSKI[:], sha256) }, 0x01},
		{"ecdsa op on rsa key", func(id uint32) []byte { return request(id, 0x15, rsaSKI[:], sha256) }, 0x01},
		{"ed25519 op on rsa key", func(id uint32) []byte { return request(id, 0x18, rsaSKI[:], sha256) }, 0x01},
		{"pss op on ed25519 key", func(id uint32) []byte { return request(id, 0x35, edSKI[:], sha256) }, 0x01},
		{"rsa sha256 with 20-byte digest", func(id uint32) []byte { return request(id, 0x05, rsaSKI[:], sha256[:20]) }, 0x01},
		{"rsa md5sha1 with 32-byte digest", func(id uint32) []byte { return request(id, 0x02, rsaSKI[:], sha256) }, 0x01},
		{"pss sha384 with 32-byte digest", func(id uint32) []byte { return request(id, 0x36, rsaSKI[:], sha256) }, 0x01},
		{"rsa sign with no payload", func(id uint32) []byte { return request(id, 0x05, rsaSKI[:], nil) }, 0x01},
		{"decrypt ciphertext = n", func(id uint32) []byte { return request(id, 0x01, rsaSKI[:], n) }, 0x01},
		{"decrypt ciphertext > n", func(id uint32) []byte { return request(id, 0x01, rsaSKI[:], nPlus1) }, 0x01},
		{"decrypt ciphertext too long", func(id uint32) []byte { return request(id, 0x01, rsaSKI[:], append([]byte{1}, n...)) }, 0x01},
		{"missing opcode", func(id uint32) []byte {
			return frame(id, item(tagPayload, []byte("x")), item(tagSKI, rsaSKI[:]))
		}, 0x05},
		{"opcode 0x00", func(id uint32) []byte { return request(id, 0x00, rsaSKI[:], sha256) }, 0x05},
		{"raw decrypt 0x08", func(id uint32) []byte { return request(id, 0x08, rsaSKI[:], sha256) }, 0x05},
		{"unknown opcode 0x99", func(id uint32) []byte { return request(id, 0x99, rsaSKI[:], sha256) }, 0x05},
		{"response opcode", func(id uint32) []byte { return request(id, opResponse, rsaSKI[:], sha256) }, 0x06},
		{"pong opcode", func(id uint32) []byte { return request(id, opPong, nil, nil) }, 0x06},
		{"error opcode", func(id uint32) []byte { return request(id, opError, nil, []byte{1}) }, 0x06},
		{"seal, no sealer", func(id uint32) []byte { return request(id, 0x21, nil, []byte("blob")) }, 0x08},
		{"unseal, no sealer", func(id uint32) []byte { return request(id, 0x22, nil, []byte("blob")) }, 0x08},
		{"rpc, no methods", func(id uint32) []byte { return request(id, 0x23, nil, []byte("gob")) }, 0x08},
		{"custom, no function", func(id uint32) []byte { return request(id, 0x24, nil, []byte("x")) }, 0x05},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := uint32(1000 + i)
			got := exchange(t, c, tc.req(id))
			if want := errorReply(id, tc.code); !bytes.Equal(got.raw, want) {
				t.Fatalf("got op %#x payload %x (%d bytes), want error %#x:\n got %x\nwant %x",
					got.op, got.payload, len(got.raw), tc.code, got.raw[:20], want[:20])
			}
		})
	}
	// The connection survived every error.
	if got := exchange(t, c, request(7, opPing, nil, []byte("still here"))); got.op != opPong {
		t.Fatalf("after errors: op %#x", got.op)
	}
}

// TestUnpaddedAndExtraItems: a receiver must not demand padding, and
// skips unknown tags; the items the server does not use (SNI, IPs,
// digest) are accepted and not echoed.
func TestUnpaddedAndExtraItems(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	c := in.Dial(t)
	ski := servertest.SKI(t, in.Keys.ECDSAP256.Public())
	d := digest(crypto.SHA256, []byte("m"))
	req := frame(9,
		item(0x7e, []byte("unknown tag")),
		item(tagSNI, []byte("example.com")),
		item(tagClientIP, []byte{192, 0, 2, 1}),
		item(tagServerIP, bytes.Repeat([]byte{0x20}, 16)),
		item(tagDigest, bytes.Repeat([]byte{1}, 32)),
		item(tagPayload, d),
		item(tagSKI, ski[:]),
		item(tagOpcode, []byte{0x15}),
		[]byte{0x00, 0x00}, // two stray bytes at the end are ignored
	)
	got := exchange(t, c, req)
	if got.op != opResponse || !ecdsa.VerifyASN1(&in.Keys.ECDSAP256.PublicKey, d, got.payload) {
		t.Fatalf("op %#x: unpadded request with extra items not signed", got.op)
	}
}

// TestTLSVersions: TLS 1.2 with the established suites, and TLS 1.3,
// work; TLS 1.2 with other suites, and older versions, do not.
func TestTLSVersions(t *testing.T) {
	in := servertest.StartWith(t, servertest.Options{})
	for _, tc := range []struct {
		name    string
		min     uint16
		max     uint16
		suites  []uint16
		wantErr bool
	}{
		{name: "tls1.3", min: tls.VersionTLS13, max: tls.VersionTLS13},
		{name: "tls1.2 ecdhe-ecdsa-aes256-gcm", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}},
		{name: "tls1.2 aes128 only", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, wantErr: true},
		{name: "tls1.2 chacha only", min: tls.VersionTLS12, max: tls.VersionTLS12,
			suites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}, wantErr: true},
		{name: "tls1.1", min: tls.VersionTLS10, max: tls.VersionTLS11, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := in.ClientTLS.Clone()
			cfg.MinVersion, cfg.MaxVersion, cfg.CipherSuites = tc.min, tc.max, tc.suites
			c, err := tls.Dial("tcp", in.Addr, cfg)
			if tc.wantErr {
				if err == nil {
					c.Close()
					t.Fatalf("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer c.Close()
			if v := c.ConnectionState().Version; v != tc.max {
				t.Fatalf("version %#x, want %#x", v, tc.max)
			}
			if got := exchange(t, c, request(1, opPing, nil, []byte("v"))); got.op != opPong {
				t.Fatalf("op %#x", got.op)
			}
		})
	}
}
