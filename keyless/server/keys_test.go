package server

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rampart-edge/rampart/keyless"
)

var (
	testKeysOnce sync.Once
	testRSA      *rsa.PrivateKey
	testEC       *ecdsa.PrivateKey
	testEd       ed25519.PrivateKey
)

func testKeys(t testing.TB) (*rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey) {
	t.Helper()
	testKeysOnce.Do(func() {
		testRSA, _ = rsa.GenerateKey(rand.Reader, 2048)
		testEC, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, testEd, _ = ed25519.GenerateKey(rand.Reader)
	})
	return testRSA, testEC, testEd
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8(t testing.TB, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParsePrivateKeys(t *testing.T) {
	rk, ek, edk := testKeys(t)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	x25519, _ := ecdh.X25519().GenerateKey(rand.Reader)
	certDER := selfSigned(t, ek)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00"}, Bytes: x509.MarshalPKCS1PrivateKey(rk)})
	for _, tc := range []struct {
		name    string
		data    []byte
		want    []crypto.PublicKey
		wantErr string
	}{
		{name: "pkcs1 pem", data: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)), want: []crypto.PublicKey{rk.Public()}},
		{name: "pkcs8 pem rsa", data: pemBlock("PRIVATE KEY", pkcs8(t, rk)), want: []crypto.PublicKey{rk.Public()}},
		{name: "pkcs8 pem ecdsa", data: pemBlock("PRIVATE KEY", pkcs8(t, ek)), want: []crypto.PublicKey{ek.Public()}},
		{name: "pkcs8 pem ed25519", data: pemBlock("PRIVATE KEY", pkcs8(t, edk)), want: []crypto.PublicKey{edk.Public()}},
		{name: "sec1 pem", data: pemBlock("EC PRIVATE KEY", sec1), want: []crypto.PublicKey{ek.Public()}},
		{name: "sec1 pem after EC PARAMETERS (openssl ecparam -genkey)",
			data: append(pemBlock("EC PARAMETERS", []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}), pemBlock("EC PRIVATE KEY", sec1)...),
			want: []crypto.PublicKey{ek.Public()}},
		{name: "pkcs1 der", data: x509.MarshalPKCS1PrivateKey(rk), want: []crypto.PublicKey{rk.Public()}},
		{name: "pkcs8 der", data: pkcs8(t, edk), want: []crypto.PublicKey{edk.Public()}},
		{name: "sec1 der", data: sec1, want: []crypto.PublicKey{ek.Public()}},
		{name: "bundle: certificate and two keys",
			data: bytes.Join([][]byte{pemBlock("CERTIFICATE", certDER), pemBlock("EC PRIVATE KEY", sec1), pemBlock("PRIVATE KEY", pkcs8(t, edk))}, nil),
			want: []crypto.PublicKey{ek.Public(), edk.Public()}},
		{name: "certificate only", data: pemBlock("CERTIFICATE", certDER), want: nil},
		{name: "encrypted pem", data: encrypted, wantErr: "encrypted PEM keys are not supported"},
		{name: "encrypted pkcs8", data: pemBlock("ENCRYPTED PRIVATE KEY", []byte{1, 2}), wantErr: "encrypted PKCS#8"},
		{name: "x25519 is not a signing key", data: pemBlock("PRIVATE KEY", pkcs8(t, x25519)), wantErr: "unsupported private key type"},
		{name: "corrupt pem", data: pemBlock("PRIVATE KEY", []byte{0x30, 0x03, 1, 2, 3}), wantErr: "PRIVATE KEY block"},
		{name: "garbage", data: []byte("hello"), wantErr: "neither PEM nor a DER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePrivateKeys(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tc.want))
			}
			for i, s := range got {
				if !s.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
}

func selfSigned(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1)},
		&x509.Certificate{SerialNumber: big.NewInt(1)}, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestLoadStore(t *testing.T) {
	rk, ek, edk := testKeys(t)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rsa.key", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rk)))
	write("ec.der", sec1)
	write("same-ec-again.pem", pemBlock("EC PRIVATE KEY", sec1)) // a duplicate: kept once
	write("cert.pem", pemBlock("CERTIFICATE", selfSigned(t, ek)))
	write("README.txt", []byte("not a key"))
	write(".hidden.key", []byte("garbage, skipped"))
	os.Mkdir(filepath.Join(dir, "sub.key"), 0o700)
	os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.key"))
	edFile := filepath.Join(t.TempDir(), "ed25519.anything")
	os.WriteFile(edFile, pemBlock("PRIVATE KEY", pkcs8(t, edk)), 0o644)

	var logs bytes.Buffer
	l := &storeLoader{logger: slog.New(slog.NewTextHandler(&logs, nil)), p11: newPKCS11Modules(slog.New(slog.DiscardHandler), 2)}
	st, err := l.load([]string{dir, edFile})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.keys) != 3 {
		t.Fatalf("%d keys, want 3", len(st.keys))
	}
	for _, pub := range []crypto.PublicKey{rk.Public(), ek.Public(), edk.Public()} {
		ski, _ := keyless.SKIOf(pub)
		if st.get(ski) == nil {
			t.Fatalf("key %s missing", ski)
		}
	}
	if n := st.counts(); n["rsa"] != 1 || n["ecdsa"] != 1 || n["ed25519"] != 1 {
		t.Fatalf("counts %v", n)
	}
	for _, want := range []string{"duplicate key ignored", "key file readable by group or others"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs.String())
		}
	}

	for _, tc := range []struct {
		name    string
		sources []string
		wantErr string
	}{
		{"missing path", []string{filepath.Join(dir, "nope")}, "no such file"},
		{"file without a key", []string{filepath.Join(dir, "cert.pem")}, "no private key in it"},
		{"empty directory", []string{t.TempDir()}, "no keys found"},
		{"broken key in directory", []string{brokenDir(t)}, "bad.key"},
		{"pkcs11 errors name the source", []string{"pkcs11:token=nope?module-path=/nonexistent/libnope.so"}, "pkcs11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.load(tc.sources)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func brokenDir(t testing.TB) string {
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "bad.key"), []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o600)
	return d
}

// TestRawRSA checks the raw private operation against the standard
// library: c^d mod n, its PKCS#1 v1.5 block, and its errors.
func TestRawRSA(t *testing.T) {
	rk, _, _ := testKeys(t)
	raw, err := newRawRSA(rk)
	if err != nil {
		t.Fatal(err)
	}
	k := rk.Size()
	for range 5 {
		m, _ := rand.Int(rand.Reader, rk.N)
		c := new(big.Int).Exp(m, big.NewInt(int64(rk.E)), rk.N)
		got, err := raw.decrypt(c.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, m.FillBytes(make([]byte, k))) {
			t.Fatalf("decrypt(m^e) != m")
		}
	}
	msg := []byte("secret")
	ct, _ := rsa.EncryptPKCS1v15(rand.Reader, &rk.PublicKey, msg)
	block, err := raw.decrypt(ct)
	if err != nil {
		t.Fatal(err)
	}
	if block[0] != 0 || block[1] != 2 || !bytes.HasSuffix(block, append([]byte{0}, msg...)) {
		t.Fatalf("block %x", block)
	}
	if _, err := raw.decrypt(rk.N.Bytes()); err == nil {
		t.Fatal("c = n accepted")
	}
	if got, err := raw.decrypt(nil); err != nil || !bytes.Equal(got, make([]byte, k)) {
		t.Fatalf("c = 0: %x %v", got, err)
	}

	// Keys with more than two primes take the non-CRT path.
	mp, err := rsa.GenerateMultiPrimeKey(rand.Reader, 3, 1024) //nolint:staticcheck // testing the fallback
	if err != nil {
		t.Skipf("no multi-prime key: %v", err)
	}
	rawMP, err := newRawRSA(mp)
	if err != nil {
		t.Fatal(err)
	}
	m := big.NewInt(424242)
	c := new(big.Int).Exp(m, big.NewInt(int64(mp.E)), mp.N)
	got, err := rawMP.decrypt(c.Bytes())
	if err != nil || !bytes.Equal(got, m.FillBytes(make([]byte, mp.Size()))) {
		t.Fatalf("multi-prime: %x %v", got, err)
	}
}

// FuzzParsePrivateKeys: any input gives keys or an error, never a panic,
// and every key it gives can make a Key.
func FuzzParsePrivateKeys(f *testing.F) {
	_, ek, edk := testKeys(f)
	sec1, _ := x509.MarshalECPrivateKey(ek)
	f.Add(pemBlock("EC PRIVATE KEY", sec1))
	f.Add(pkcs8(f, edk))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parsePrivateKeys(data)
		if err != nil && keys != nil {
			t.Fatalf("keys and error")
		}
		for _, k := range keys {
			if _, err := keyless.SKIOf(k.Public()); err != nil {
				t.Fatalf("parsed key has no SKI: %v", err)
			}
		}
	})
}
