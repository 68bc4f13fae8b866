//go:build cgo

package server_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampart-edge/rampart/keyless/server"
	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// softHSMModule is where Debian's softhsm2 package puts the module.
const softHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// softHSM makes a SoftHSM token labelled "rampart" (user PIN 1234) in a
// temporary directory holding the shared test keys, and returns the
// pkcs11: URI of the token.
func softHSM(t *testing.T) (uri string, keys *servertest.Keys) {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if _, serr := os.Stat(softHSMModule); err != nil || serr != nil {
		t.Skip("needs SoftHSM: apt-get install softhsm2")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.Mkdir(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	run := func(args ...string) {
		t.Helper()
		out, err := exec.Command(util, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("softhsm2-util %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("--init-token", "--free", "--label", "rampart", "--pin", "1234", "--so-pin", "5678")
	keys = servertest.TestKeys(t)
	for i, k := range []struct {
		label string
		key   crypto.Signer
	}{{"rsa", keys.RSA}, {"ecdsa-p256", keys.ECDSAP256}, {"ecdsa-p384", keys.ECDSAP384}, {"ed25519", keys.Ed25519}} {
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, k.label+".pem")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
		run("--import", p, "--token", "rampart", "--label", k.label, "--id", "0"+string(rune('1'+i)), "--pin", "1234")
		os.Remove(p)
	}
	return "pkcs11:token=rampart?module-path=" + softHSMModule + "&pin-value=1234", keys
}

// TestPKCS11SoftHSM serves every key type from a SoftHSM token: every
// opcode verifies, raw decrypt matches, reload reopens the sessions, and
// bad URIs fail with clear errors.
func TestPKCS11SoftHSM(t *testing.T) {
	uri, keys := softHSM(t)
	in := servertest.StartWith(t, servertest.Options{Configure: func(c *server.Config) {
		c.Keys = []string{uri}
		c.Workers = 2
	}})
	for _, k := range in.Server.Keys() {
		if !strings.HasPrefix(k.Source, "pkcs11:token=rampart?module-path=") || strings.Contains(k.Source, "1234") {
			t.Fatalf("key source %q: not from the token, or shows the PIN", k.Source)
		}
	}
	if n := len(in.Server.Keys()); n != 4 {
		t.Fatalf("%d keys on the token, want 4", n)
	}
	c := in.Dial(t)
	checkEveryOp(t, c, keys.All())
	t.Run("decrypt", func(t *testing.T) { checkDecrypt(t, c, &keys.RSA.PublicKey) })
	if err := in.Server.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Run("after reload", func(t *testing.T) {
		ski := servertest.SKI(t, keys.ECDSAP256.Public())
		d := digest(crypto.SHA256, []byte("again"))
		if r := exchange(t, c, request(99, 0x15, ski[:], d)); r.op != opResponse {
			t.Fatalf("op %#x", r.op)
		}
	})
}

// TestPKCS11URIs loads tokens by various URIs, with no other server in
// the process holding the module (login state is per process, so a
// logged-in token would accept any PIN).
func TestPKCS11URIs(t *testing.T) {
	softHSM(t)
	for _, tc := range []struct {
		name, uri, wantErr string
	}{
		{"one object by label", "pkcs11:token=rampart;object=ecdsa-p384?module-path=" + softHSMModule + "&pin-value=1234", ""},
		{"one object by id", "pkcs11:token=rampart;id=%04?module-path=" + softHSMModule + "&pin-value=1234", ""},
		{"pin from a file", "pkcs11:token=rampart;object=rsa?module-path=" + softHSMModule + "&pin-source=" + pinFile(t), ""},
		{"wrong pin", "pkcs11:token=rampart?module-path=" + softHSMModule + "&pin-value=9999", "login"},
		{"no pin", "pkcs11:token=rampart?module-path=" + softHSMModule, "no usable private key matches (no pin-value"},
		{"no such token", "pkcs11:token=other?module-path=" + softHSMModule + "&pin-value=1234", "no token matches"},
		{"no such module", "pkcs11:token=rampart?module-path=/nonexistent/lib.so&pin-value=1234", "cannot load PKCS#11 module"},
		{"no module path", "pkcs11:token=rampart?pin-value=1234", "module-path is required"},
		{"public keys asked for", "pkcs11:token=rampart;type=public?module-path=" + softHSMModule, "only private keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keysCfg := []string{tc.uri}
			cfg := server.Config{Listen: server.ListenNone, UnixSocket: "unused", Keys: keysCfg}
			s, err := server.New(cfg, nil, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := len(s.Keys()); n != 1 {
					t.Fatalf("%d keys, want 1", n)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "9999") {
				t.Fatalf("err = %v, want %q and no PIN", err, tc.wantErr)
			}
		})
	}
}

func pinFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(p, []byte("1234\n"), 0o600)
	return p
}
