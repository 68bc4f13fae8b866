package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/testnet"
)

// TestRunDaemon runs `rampart run` in a namespace: it attaches, serves
// metrics, rejects a bad profile on SIGHUP while the old one keeps running,
// and detaches on SIGTERM leaving its maps pinned.
func TestRunDaemon(t *testing.T) {
	testnet.RequireRoot(t, "attach XDP and create namespaces")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rampart")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	n := testnet.NewT(t, "edge")
	edge := n.Host("edge")
	pinDir := "/sys/fs/bpf/" + testnet.UniquePrefix("rampart-test-run")
	t.Cleanup(func() { os.RemoveAll(pinDir) })

	good, err := os.ReadFile("../../profiles/edge-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	profile := filepath.Join(dir, "profile.yaml")
	if err := os.WriteFile(profile, good, 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "admin.sock")
	// nsenter, not `ip netns exec`: the latter mounts a private /sys, and
	// the pins would vanish with it.
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+edge.NS, "--",
		bin, "run", "--iface", "eth0", "--profile", profile, "--admin", "unix:"+sock, "--pin-dir", pinDir)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 2 * time.Second}
	metric := func(name string) string {
		resp, err := client.Get("http://admin/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), name) {
				return sc.Text()
			}
		}
		return ""
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("timed out waiting for %s; daemon log:\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("metrics", func() bool {
		return metric("rampart_config_last_reload_successful") == "rampart_config_last_reload_successful 1"
	})
	if m := metric(`rampart_xdp_packets_total{reason="pass",verdict="pass"}`); m == "" {
		t.Errorf("no XDP counters in metrics")
	}
	if m := metric(`rampart_flowtable_capacity{table="flows"}`); m == "" {
		t.Errorf("no flow table metrics")
	}
	// The tables are empty until the pipeline fills them: /flows answers
	// with no lines, and a bad query with 400.
	for _, tc := range []struct {
		path       string
		wantStatus int
		wantBody   string
	}{
		{"/flows?top=5&by=bytes", http.StatusOK, ""},
		{"/visitors", http.StatusOK, ""},
		{"/flows?by=rate", http.StatusBadRequest, "bad query: "},
	} {
		resp, err := client.Get("http://admin" + tc.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || !strings.HasPrefix(string(body), tc.wantBody) ||
			(tc.wantBody == "" && len(body) != 0) {
			t.Errorf("GET %s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
		}
		if tc.wantStatus == http.StatusOK && resp.Header.Get("Rampart-Table-Capacity") == "" {
			t.Errorf("GET %s: no table headers: %v", tc.path, resp.Header)
		}
	}
	if out, _ := edge.Exec(ctx, "ip", "link", "show", "eth0"); !strings.Contains(string(out), "xdp") {
		t.Errorf("filter not attached to eth0:\n%s", out)
	}

	bad := strings.Replace(string(good), "fragments: drop", "fragments: sometimes", 1)
	if err := os.WriteFile(profile, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor("rejected reload", func() bool {
		return metric("rampart_config_last_reload_successful") == "rampart_config_last_reload_successful 0"
	})
	if !strings.Contains(logs.String(), "profile.yaml:") || !strings.Contains(logs.String(), "xdp.fragments") {
		t.Errorf("reload error does not name file:line and field:\n%s", logs.String())
	}
	if out, _ := edge.Exec(ctx, "ip", "link", "show", "eth0"); !strings.Contains(string(out), "xdp") {
		t.Errorf("filter detached after a rejected reload:\n%s", out)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, logs.String())
	}
	if out, _ := edge.Exec(ctx, "ip", "link", "show", "eth0"); strings.Contains(string(out), "xdp") {
		t.Errorf("filter still attached after exit:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(pinDir, "block_v4")); err != nil {
		t.Errorf("maps not left pinned: %v", err)
	}
}

// syncBuffer is written by the command's stderr copier and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
