package server

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	const full = `listen: 0.0.0.0:2407
unix_socket: /run/rampart/keyserver.sock
unix_tls: true
ca_file: /etc/rampart/keyless-ca.pem
cert_file: /etc/rampart/server.pem
key_file: /etc/rampart/server-key.pem
keys:
  - /etc/rampart/keys
  - /etc/rampart/extra.key
  - "pkcs11:token=edge;object=k1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"
metrics_addr: 127.0.0.1:9100
workers: 4
max_pending_per_conn: 256
idle_timeout: 45s
unix_idle_timeout: 2h
drain_timeout: 3s
handshake_timeout: 5s
shutdown_timeout: 20s
`
	for _, tc := range []struct {
		name    string
		yaml    string
		want    *Config
		wantErr string // every line must appear
	}{
		{
			name: "full",
			yaml: full,
			want: &Config{
				Listen: "0.0.0.0:2407", UnixSocket: "/run/rampart/keyserver.sock", UnixTLS: true,
				CAFile: "/etc/rampart/keyless-ca.pem", CertFile: "/etc/rampart/server.pem", KeyFile: "/etc/rampart/server-key.pem",
				Keys: []string{"/etc/rampart/keys", "/etc/rampart/extra.key",
					"pkcs11:token=edge;object=k1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"},
				MetricsAddr: "127.0.0.1:9100", Workers: 4, MaxPendingPerConn: 256,
				IdleTimeout: 45 * time.Second, UnixIdleTimeout: 2 * time.Hour, DrainTimeout: 3 * time.Second,
				HandshakeTimeout: 5 * time.Second, ShutdownTimeout: 20 * time.Second,
			},
		},
		{
			name: "defaults",
			yaml: "ca_file: ca.pem\ncert_file: s.pem\nkey_file: s.key\nkeys: [keys]\n",
			want: &Config{
				Listen: ":2407", CAFile: "ca.pem", CertFile: "s.pem", KeyFile: "s.key", Keys: []string{"keys"},
				MetricsAddr: DefaultMetricsAddr, MaxPendingPerConn: 1024,
				IdleTimeout: 30 * time.Second, UnixIdleTimeout: time.Hour, DrainTimeout: 5 * time.Second,
				HandshakeTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
			},
		},
		{
			name: "unix only needs no certificates",
			yaml: "listen: none\nunix_socket: /run/ks.sock\nkeys: [k]\n",
			want: &Config{
				Listen: "none", UnixSocket: "/run/ks.sock", Keys: []string{"k"},
				MetricsAddr: DefaultMetricsAddr, MaxPendingPerConn: 1024,
				IdleTimeout: 30 * time.Second, UnixIdleTimeout: time.Hour, DrainTimeout: 5 * time.Second,
				HandshakeTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
			},
		},
		{name: "unknown field", yaml: "keys: [k]\nlisten: :1\nlisen: :2\n",
			wantErr: "ks.yaml:3:1: field lisen not found in type server.Config"},
		{name: "wrong type", yaml: "keys: [k]\nworkers: many\n",
			wantErr: "ks.yaml:2:1: cannot unmarshal !!str `many` into int"},
		{name: "bad duration", yaml: "keys: [k]\nidle_timeout: soon\n",
			wantErr: "ks.yaml:2:1: cannot unmarshal !!str `soon` into time.Duration"},
		{name: "syntax", yaml: "keys: [k\n",
			wantErr: "ks.yaml:"},
		{name: "out of range, positioned", yaml: "ca_file: a\ncert_file: b\nkey_file: c\nkeys: [k, \"\"]\nworkers: 5000\nmax_pending_per_conn: -1\nidle_timeout: 10ms\n",
			wantErr: "ks.yaml:4:11: keys[1]: empty\n" +
				"ks.yaml:5:10: workers: must be in 0..4096, got 5000\n" +
				"ks.yaml:6:23: max_pending_per_conn: must be in 1..1048576, got -1\n" +
				"ks.yaml:7:15: idle_timeout: must be in 1s..24h0m0s, got 10ms"},
		{name: "missing everything", yaml: "",
			wantErr: "ks.yaml:1:1: ca_file: required for mutual TLS\n" +
				"ks.yaml:1:1: cert_file: required for mutual TLS\n" +
				"ks.yaml:1:1: key_file: required for mutual TLS\n" +
				"ks.yaml:1:1: keys: no key store"},
		{name: "listen none alone", yaml: "listen: none\nkeys: [k]\n",
			wantErr: "ks.yaml:1:9: listen: \"none\" needs a unix_socket"},
		{name: "two documents", yaml: "keys: [k]\n---\nworkers: 1\n",
			wantErr: "ks.yaml:2:1: a configuration is one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConfig("ks.yaml", []byte(tc.yaml))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("no error; got %+v", got)
				}
				for _, line := range strings.Split(tc.wantErr, "\n") {
					if !strings.Contains(err.Error(), line) {
						t.Fatalf("error\n%v\nlacks %q", err, line)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadConfigRelativePaths(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ks.yaml")
	os.WriteFile(p, []byte("ca_file: tls/ca.pem\ncert_file: /abs/s.pem\nkey_file: s.key\nunix_socket: ks.sock\nkeys: [keys, \"pkcs11:token=a\"]\n"), 0o600)
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.CAFile != filepath.Join(dir, "tls/ca.pem") || c.CertFile != "/abs/s.pem" || c.KeyFile != filepath.Join(dir, "s.key") ||
		c.UnixSocket != filepath.Join(dir, "ks.sock") || c.Keys[0] != filepath.Join(dir, "keys") || c.Keys[1] != "pkcs11:token=a" {
		t.Fatalf("%+v", c)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Fatal("missing file loaded")
	}
}

// FuzzParseConfig: any input gives a config or an error, never both,
// never a panic; a config is valid.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("ca_file: a\ncert_file: b\nkey_file: c\nkeys: [k]\n"))
	f.Add([]byte("listen: none\nunix_socket: s\nkeys: [k]\nworkers: 3\nidle_timeout: 1m\n"))
	f.Add([]byte("keys: [k\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("keys: {a: b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("f.yaml", data)
		if (c == nil) == (err == nil) {
			t.Fatalf("config %v and error %v", c, err)
		}
		if c != nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("parsed config invalid: %v", err)
			}
		}
	})
}

// TestExampleConfig keeps the documented example valid.
func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig("testdata/keyserver.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.WithDefaults().Validate() != nil || len(c.Keys) != 2 || c.Listen != ":2407" {
		t.Fatalf("%+v", c)
	}
}
