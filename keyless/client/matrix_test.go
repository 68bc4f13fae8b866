package client

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"testing"

	"github.com/rampart-edge/rampart/keyless"
)

// digestOf hashes msg with h, MD5SHA1 included.
func digestOf(h crypto.Hash, msg []byte) []byte {
	if h == crypto.MD5SHA1 {
		m, s := md5.Sum(msg), sha1.Sum(msg)
		return append(m[:], s[:]...)
	}
	w := h.New()
	w.Write(msg)
	return w.Sum(nil)
}

var allHashes = []crypto.Hash{crypto.MD5SHA1, crypto.SHA1, crypto.SHA224, crypto.SHA256, crypto.SHA384, crypto.SHA512}

type matrixCase struct {
	name    string
	key     string // testKeys name
	opts    crypto.SignerOpts
	digest  []byte // nil: digest of msg with opts' hash
	wantOp  keyless.Op
	wantErr error // nil, or a sentinel/code it must match
	badOpts bool  // refused before sending
}

// signCases covers every sign opcode against every key type it applies
// to, and the refusals, in one table.
func signCases() []matrixCase {
	var cs []matrixCase
	for _, h := range allHashes {
		cs = append(cs, matrixCase{name: "rsa2048/pkcs1v15-" + h.String(), key: "rsa2048", opts: h, wantOp: hashOps[h][0]})
		for _, k := range []string{"ecdsa-p256", "ecdsa-p384"} {
			cs = append(cs, matrixCase{name: k + "/" + h.String(), key: k, opts: h, wantOp: hashOps[h][1]})
		}
	}
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		cs = append(cs,
			matrixCase{name: "rsa2048/pss-equals-hash-" + h.String(), key: "rsa2048", opts: &rsa.PSSOptions{Hash: h, SaltLength: rsa.PSSSaltLengthEqualsHash}, wantOp: hashOps[h][2]},
			matrixCase{name: "rsa2048/pss-explicit-salt-" + h.String(), key: "rsa2048", opts: &rsa.PSSOptions{Hash: h, SaltLength: h.Size()}, wantOp: hashOps[h][2]})
	}
	cs = append(cs,
		matrixCase{name: "ed25519/pure", key: "ed25519", opts: crypto.Hash(0), digest: []byte("a whole message, not a digest"), wantOp: keyless.OpEd25519Sign},
		matrixCase{name: "ed25519/options", key: "ed25519", opts: &ed25519.Options{}, digest: []byte("another message"), wantOp: keyless.OpEd25519Sign},
		// Refusals: caught before sending.
		matrixCase{name: "rsa2048/pss-salt-auto", key: "rsa2048", opts: &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthAuto}, badOpts: true},
		matrixCase{name: "rsa2048/pss-sha1", key: "rsa2048", opts: &rsa.PSSOptions{Hash: crypto.SHA1}, badOpts: true},
		matrixCase{name: "rsa2048/short-digest", key: "rsa2048", opts: crypto.SHA256, digest: make([]byte, 31), badOpts: true},
		matrixCase{name: "ecdsa-p256/long-digest", key: "ecdsa-p256", opts: crypto.SHA256, digest: make([]byte, 48), badOpts: true},
		matrixCase{name: "rsa2048/no-hash", key: "rsa2048", opts: crypto.Hash(0), digest: make([]byte, 32), badOpts: true},
		matrixCase{name: "ecdsa-p256/sha3", key: "ecdsa-p256", opts: crypto.SHA3_256, digest: make([]byte, 32), badOpts: true},
		matrixCase{name: "ed25519/ph", key: "ed25519", opts: &ed25519.Options{Hash: crypto.SHA512}, digest: make([]byte, 64), badOpts: true},
		matrixCase{name: "ed25519/context", key: "ed25519", opts: &ed25519.Options{Context: "x"}, digest: []byte("m"), badOpts: true},
		matrixCase{name: "rsa2048/nil-opts", key: "rsa2048", digest: make([]byte, 32), badOpts: true},
	)
	return cs
}

func verify(pub crypto.PublicKey, opts crypto.SignerOpts, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(k, pss.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(k, opts.HashFunc(), digest, sig)
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ecdsa signature does not verify")
		}
	case ed25519.PublicKey:
		if !ed25519.Verify(k, digest, sig) {
			return errors.New("ed25519 signature does not verify")
		}
	}
	return nil
}

// runSignMatrix signs with every case through cl, blocking and async, and
// verifies each signature with the standard library.
func runSignMatrix(t *testing.T, cl *Client) {
	msg := []byte("keyless test message")
	for _, tc := range signCases() {
		t.Run(tc.name, func(t *testing.T) {
			key := testKeys(t)[tc.key]
			s, err := cl.Signer(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			digest := tc.digest
			if digest == nil {
				digest = digestOf(tc.opts.HashFunc(), msg)
			}
			sig, err := s.Sign(nil, digest, tc.opts)
			if tc.badOpts {
				if err == nil {
					t.Fatalf("Sign accepted bad options %#v", tc.opts)
				}
				if err := s.SignAsync(digest, tc.opts, func([]byte, error) { t.Error("done called after a refusal") }); err == nil {
					t.Fatal("SignAsync accepted bad options")
				}
				return
			}
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if op, _ := s.OpFor(len(digest), tc.opts); op != tc.wantOp {
				t.Errorf("opcode %v, want %v", op, tc.wantOp)
			}
			if err := verify(key.Public(), tc.opts, digest, sig); err != nil {
				t.Fatalf("blocking Sign: %v", err)
			}
			type result struct {
				sig []byte
				err error
			}
			ch := make(chan result, 1)
			if err := s.SignAsync(digest, tc.opts, func(sig []byte, err error) {
				ch <- result{bytes.Clone(sig), err}
			}); err != nil {
				t.Fatal(err)
			}
			r := <-ch
			if r.err != nil {
				t.Fatalf("SignAsync: %v", r.err)
			}
			if err := verify(key.Public(), tc.opts, digest, r.sig); err != nil {
				t.Fatalf("SignAsync: %v", err)
			}
		})
	}
}

// runDecryptMatrix decrypts a known plaintext with every option.
func runDecryptMatrix(t *testing.T, cl *Client) {
	key := testKeys(t)["rsa2048"].(*rsa.PrivateKey)
	pk, err := cl.PrivateKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	s, ok := pk.(*RSAKey)
	if !ok {
		t.Fatalf("PrivateKey of an RSA key is a %T, want *RSAKey", pk)
	}
	plain := []byte("48 bytes of premaster secret, or thereabouts!!!!")
	ct, err := rsa.EncryptPKCS1v15(rand.Reader, &key.PublicKey, plain)
	if err != nil {
		t.Fatal(err)
	}
	// A block that is not PKCS #1 v1.5: the raw RSA of a small integer.
	junk := new(rsaInt).enc(&key.PublicKey, []byte("not padded"))
	tests := []struct {
		name    string
		ct      []byte
		opts    crypto.DecrypterOpts
		want    []byte // nil: check by func
		check   func(t *testing.T, got []byte)
		wantErr error
	}{
		{name: "pkcs1v15", ct: ct, opts: &rsa.PKCS1v15DecryptOptions{}, want: plain},
		{name: "session-key-valid", ct: ct, opts: &rsa.PKCS1v15DecryptOptions{SessionKeyLen: len(plain)}, want: plain},
		{name: "session-key-wrong-length", ct: ct, opts: &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 48 - 1},
			check: func(t *testing.T, got []byte) {
				if len(got) != 47 || bytes.Equal(got, plain[:47]) {
					t.Errorf("want a random 47-byte key, got %x", got)
				}
			}},
		{name: "raw", ct: ct, check: func(t *testing.T, got []byte) {
			if len(got) != key.Size() || got[0] != 0 || got[1] != 2 || !bytes.HasSuffix(got, plain) {
				t.Errorf("raw block %x is not 00 02 PS 00 plaintext", got)
			}
		}},
		{name: "bad-padding", ct: junk, opts: &rsa.PKCS1v15DecryptOptions{}, wantErr: rsa.ErrDecryption},
		{name: "bad-padding-session-key", ct: junk, opts: &rsa.PKCS1v15DecryptOptions{SessionKeyLen: 48},
			check: func(t *testing.T, got []byte) {
				if len(got) != 48 {
					t.Errorf("want a random 48-byte key, got %d bytes", len(got))
				}
			}},
		{name: "ciphertext-above-modulus", ct: bytes.Repeat([]byte{0xff}, key.Size()), opts: &rsa.PKCS1v15DecryptOptions{}, wantErr: keyless.ErrCrypto},
		{name: "oaep-refused", ct: ct, opts: &rsa.OAEPOptions{Hash: crypto.SHA256}, wantErr: errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Decrypt(nil, tc.ct, tc.opts)
			if tc.wantErr != nil {
				if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, got)
			} else if !bytes.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, k := range []string{"ecdsa-p256", "ecdsa-p384", "ed25519"} {
		t.Run("no-decrypter-"+k, func(t *testing.T) {
			pk, err := cl.PrivateKey(testKeys(t)[k].Public())
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := pk.(crypto.Decrypter); ok {
				t.Fatalf("PrivateKey of %s is a crypto.Decrypter; crypto/tls would refuse it", k)
			}
		})
	}
}

var errAny = errors.New("any error")

type rsaInt struct{}

// enc is raw RSA (m^e mod n) of m, left-padded to the modulus size.
func (rsaInt) enc(pub *rsa.PublicKey, m []byte) []byte {
	x := newInt(m)
	x.Exp(x, newInt(nil).SetInt64(int64(pub.E)), pub.N)
	return x.FillBytes(make([]byte, pub.Size()))
}

// runUnknownKey: a key no server holds gives ErrKeyNotFound.
func runUnknownKey(t *testing.T, cl *Client) {
	s, err := cl.Signer(&mustECKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Sign(nil, make([]byte, 32), crypto.SHA256)
	var re *keyless.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, keyless.ErrKeyNotFound) {
		t.Fatalf("err %v, want a remote ErrKeyNotFound", err)
	}
}
