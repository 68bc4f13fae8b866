package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/keyless"
	"github.com/rampart-edge/rampart/keyless/server/servertest"
)

// TestMain lets the test binary stand in for the real one: with
// RAMPART_KEYSERVER_MAIN=1 it runs main, so the signal test drives a real
// process without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("RAMPART_KEYSERVER_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// process is a running rampart-keyserver whose JSON log lines are read
// from stderr.
type process struct {
	cmd   *exec.Cmd
	lines chan map[string]any
	seen  []map[string]any // lines read so far, for waitLog
}

func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RAMPART_KEYSERVER_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan map[string]any, 100)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				m = map[string]any{"msg": sc.Text()}
			}
			t.Logf("keyserver: %s", sc.Text())
			p.lines <- m
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill() // by our own child's PID
			cmd.Wait()
		}
	})
	return p
}

// waitLog returns the first log line with message msg whose attributes
// include want.
func (p *process) waitLog(t *testing.T, msg string, want map[string]any) map[string]any {
	t.Helper()
	matches := func(m map[string]any) bool {
		if m["msg"] != msg {
			return false
		}
		for k, v := range want {
			if m[k] != v {
				return false
			}
		}
		return true
	}
	// Lines may come in any order across goroutines: look at what was
	// already read first.
	for _, m := range p.seen {
		if matches(m) {
			return m
		}
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-p.lines:
			if !ok {
				t.Fatalf("keyserver exited before logging %q", msg)
			}
			p.seen = append(p.seen, m)
			if matches(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %q log line", msg)
		}
	}
}

// ping/sign speak the codec: the wire itself is checked in keyless/server.
func roundTrip(t *testing.T, c net.Conn, m *keyless.Message) keyless.Message {
	t.Helper()
	b, err := keyless.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, keyless.HeaderLen)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, keyless.HeaderLen+int(binary.BigEndian.Uint16(hdr[2:])))
	copy(buf, hdr)
	if _, err := io.ReadFull(c, buf[keyless.HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	var resp keyless.Message
	if err := resp.Decode(buf); err != nil {
		t.Fatal(err)
	}
	return resp
}

func signWith(t *testing.T, c net.Conn, id uint32, key *ecdsa.PrivateKey) error {
	t.Helper()
	ski, _ := keyless.SKIOf(key.Public())
	d := sha256.Sum256([]byte("sighup"))
	r := roundTrip(t, c, &keyless.Message{ID: id, Op: keyless.OpECDSASignSHA256, SKI: ski, Payload: d[:]})
	if err := r.Err(); err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(&key.PublicKey, d[:], r.Payload) {
		t.Fatalf("signature does not verify")
	}
	return nil
}

// TestProcessSIGHUP runs the real binary from a config file: it serves
// mutual TLS, reloads its keys on SIGHUP while a connection stays open,
// reports on /metrics, and stops cleanly on SIGTERM.
func TestProcessSIGHUP(t *testing.T) {
	pki := servertest.NewPKI(t)
	keys := servertest.WriteKeys(t, "")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "keyserver.yaml")
	os.WriteFile(cfgPath, fmt.Appendf(nil, `listen: 127.0.0.1:0
ca_file: %s
cert_file: %s
key_file: %s
keys: [%s]
metrics_addr: 127.0.0.1:0
idle_timeout: 1m
`, pki.CAFile, pki.CertFile, pki.KeyFile, keys.Dir), 0o600)

	p := startProcess(t, "--config", cfgPath, "--log-format", "json", "--workers", "2")
	addr := p.waitLog(t, "listening", map[string]any{"listener": "tcp"})["addr"].(string)
	metricsAddr := p.waitLog(t, "serving metrics", nil)["addr"].(string)

	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, pki.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := roundTrip(t, c, &keyless.Message{ID: 1, Op: keyless.OpPing, Payload: []byte("hi")}); r.Op != keyless.OpPong {
		t.Fatalf("ping: %v", r.Op)
	}
	if err := signWith(t, c, 2, keys.ECDSAP256); err != nil {
		t.Fatal(err)
	}

	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(newKey)
	os.WriteFile(filepath.Join(keys.Dir, "added.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	if err := signWith(t, c, 3, newKey); err == nil || !strings.Contains(err.Error(), "key not found") {
		t.Fatalf("new key before SIGHUP: %v", err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, "reloaded", nil)
	if err := signWith(t, c, 4, newKey); err != nil {
		t.Fatalf("new key after SIGHUP, same connection: %v", err)
	}

	// A request is counted once its answer is written, which can be just
	// after the client read it: poll until the counts settle.
	wants := []string{
		`rampart_keyserver_reloads_total{result="ok"} 1`,
		`rampart_keyserver_requests_total{op="ecdsa-sign-sha256",result="ok"} 2`,
		`rampart_keyserver_requests_total{op="ecdsa-sign-sha256",result="key_not_found"} 1`,
		`rampart_keyserver_connections{listener="tcp"} 1`,
		`rampart_keyserver_keys{type="ecdsa"} 3`,
		`rampart_keyserver_request_duration_seconds_bucket`,
		`go_goroutines`,
	}
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, want := range wants {
			if !bytes.Contains(body, []byte(want)) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range missing {
		t.Errorf("/metrics lacks %s", want)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}

// TestFlagsOverrideConfig: a flag that is set wins over the file; bad
// settings are reported with file and line.
func TestFlagsOverrideConfig(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ks.yaml")
	os.WriteFile(cfgPath, []byte("listen: 127.0.0.1:9999\nca_file: ca.pem\ncert_file: s.pem\nkey_file: s.key\nkeys: [keys]\nworkers: 3\n"), 0o600)
	t.Run("override", func(t *testing.T) {
		c := newRootCmd(io.Discard)
		if err := c.ParseFlags([]string{"--config", cfgPath, "--workers", "7", "--keys", "/a", "--keys", "/b", "--max-pending-per-conn", "16"}); err != nil {
			t.Fatal(err)
		}
		cfg, err := buildConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Workers != 7 || cfg.MaxPendingPerConn != 16 || cfg.Listen != "127.0.0.1:9999" ||
			len(cfg.Keys) != 2 || cfg.Keys[1] != "/b" || cfg.CAFile != filepath.Join(dir, "ca.pem") {
			t.Fatalf("config %+v", cfg)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.yaml")
		os.WriteFile(bad, []byte("keys: [k]\nca_file: a\ncert_file: b\nkey_file: c\nworkers: -1\n"), 0o600)
		c := newRootCmd(io.Discard)
		c.ParseFlags([]string{"--config", bad})
		_, err := buildConfig(c)
		if err == nil || !strings.Contains(err.Error(), bad+":5:10: workers: must be in 0..4096, got -1") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no config, flags only", func(t *testing.T) {
		c := newRootCmd(io.Discard)
		c.ParseFlags([]string{"--listen", "none", "--unix-socket", "/run/ks.sock", "--keys", "/k"})
		cfg, err := buildConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.UnixSocket != "/run/ks.sock" || cfg.MetricsAddr != "127.0.0.1:2406" {
			t.Fatalf("config %+v", cfg)
		}
	})
	t.Run("missing tls files", func(t *testing.T) {
		c := newRootCmd(io.Discard)
		c.ParseFlags([]string{"--keys", "/k"})
		_, err := buildConfig(c)
		if err == nil || !strings.Contains(err.Error(), "ca_file: required for mutual TLS") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestRunUnixOnly runs in-process on a unix socket only, and stops when
// its context ends.
func TestRunUnixOnly(t *testing.T) {
	keys := servertest.WriteKeys(t, "")
	sockDir, err := os.MkdirTemp("", "ks")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "ks.sock")
	c := newRootCmd(io.Discard)
	c.ParseFlags([]string{"--listen", "none", "--unix-socket", sock, "--keys", keys.Dir, "--metrics-addr", "none"})
	cfg, err := buildConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	logger, _ := newLogger(io.Discard, "info", "text")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ready := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, logger, nil, ready) }()
	var a addrs
	select {
	case a = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", a.unix)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if r := roundTrip(t, conn, &keyless.Message{ID: 9, Op: keyless.OpPing}); r.Op != keyless.OpPong || r.ID != 9 {
		t.Fatalf("ping: %v %d", r.Op, r.ID)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket file left behind: %v", err)
	}
}
