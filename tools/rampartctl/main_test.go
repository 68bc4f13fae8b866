package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	out := mustRun(t, t.TempDir(), "version")
	if !strings.HasPrefix(out, "rampartctl ") || !strings.Contains(out, "commit") {
		t.Errorf("version printed %q", out)
	}
}

func TestResolvePinDir(t *testing.T) {
	mk := func(names ...string) string {
		root := t.TempDir()
		for _, n := range names {
			if err := os.Mkdir(filepath.Join(root, n), 0o700); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	one, two, none := mk("eth0"), mk("eth0", "eth1"), mk()
	tests := []struct {
		name      string
		root      string
		iface     string
		pinDir    string
		wantIface string
		wantErr   string
	}{
		{name: "only interface", root: one, wantIface: "eth0"},
		{name: "named interface", root: two, iface: "eth1", wantIface: "eth1"},
		{name: "pin dir wins", root: two, iface: "eth1", pinDir: filepath.Join(one, "eth0"), wantIface: "eth0"},
		{name: "several", root: two, wantErr: "filters on several interfaces under " + two + " (eth0, eth1): pick one with --iface"},
		{name: "none", root: none, wantErr: "no filter state under"},
		{name: "no root", root: filepath.Join(none, "missing"), wantErr: "no filter state under " + filepath.Join(none, "missing") + ": is rampart running?"},
		{name: "unknown interface", root: one, iface: "eth7", wantErr: "no filter state at " + filepath.Join(one, "eth7")},
		{name: "path in interface", root: one, iface: "../etc", wantErr: "invalid interface name"},
		{name: "missing pin dir", root: one, pinDir: filepath.Join(none, "x"), wantErr: "no filter state at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &app{pinRoot: tc.root, iface: tc.iface, pinDir: tc.pinDir}
			dir, iface, err := a.resolvePinDir()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if iface != tc.wantIface || filepath.Base(dir) != tc.wantIface {
				t.Errorf("got %s (%s), want %s", iface, dir, tc.wantIface)
			}
		})
	}
}

func TestStateErrorPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any folder")
	}
	root := t.TempDir()
	locked := filepath.Join(root, "locked")
	if err := os.Mkdir(locked, 0); err != nil {
		t.Fatal(err)
	}
	_, _, err := (&app{pinRoot: locked}).resolvePinDir()
	if err == nil || !strings.Contains(err.Error(), "permission denied: run rampartctl as root") {
		t.Fatalf("err = %v", err)
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "v4 prefix", in: "198.51.100.0/24", want: "198.51.100.0/24"},
		{name: "bare v4", in: "198.51.100.7", want: "198.51.100.7/32"},
		{name: "bare v6", in: "2001:db8::1", want: "2001:db8::1/128"},
		{name: "v6 prefix", in: "2001:db8::/32", want: "2001:db8::/32"},
		{name: "spaces", in: " 10.0.0.0/8 ", want: "10.0.0.0/8"},
		{name: "mapped address", in: "::ffff:198.51.100.7", want: "198.51.100.7/32"},
		{name: "mapped prefix", in: "::ffff:198.51.100.0/120", want: "198.51.100.0/24"},
		{name: "everything", in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{name: "host bits", in: "10.1.2.3/8", wantErr: "host bits set; did you mean 10.0.0.0/8 or 10.1.2.3/32?"},
		{name: "mapped short", in: "::ffff:0:0/95", wantErr: "mixes IPv4-mapped"},
		{name: "bits too long", in: "10.0.0.0/33", wantErr: "invalid prefix"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "invalid prefix"},
		{name: "name", in: "example.com", wantErr: "invalid prefix"},
		{name: "empty", in: "", wantErr: "invalid prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePrefix(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parsePrefix(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("parsePrefix(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "v4", in: "198.18.0.1", want: "198.18.0.1"},
		{name: "v6", in: "2001:db8::1", want: "2001:db8::1"},
		{name: "mapped", in: "::ffff:198.18.0.1", want: "198.18.0.1"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "zones"},
		{name: "prefix", in: "198.18.0.0/24", wantErr: "invalid address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseAddr(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parseAddr(%q) = %v, %v; want error %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tc.want) {
				t.Fatalf("parseAddr(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}
