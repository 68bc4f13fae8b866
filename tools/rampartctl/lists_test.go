package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/xdp"
)

func TestLists(t *testing.T) {
	f, root, _ := pinnedFilter(t, nil)
	synFrom := func(src string) []byte {
		dst := edge
		if packets.Addr(src).Is6() {
			dst = packets.Addr("2001:db8::1")
		}
		return packets.MustBuild(packets.Spec{Src: packets.Addr(src), Dst: dst, Proto: packets.TCP,
			SrcPort: 40000, DstPort: 22, Flags: "S"}) // port 22 is not served: only the allowlist passes it
	}
	tests := []struct {
		name     string
		list     string
		prefix   string
		ttl      string
		probe    string // a source inside prefix
		listed   bool   // expected verdict for probe while listed
		want     xdp.Reason
		wantList string // the prefix as list prints it
	}{
		{name: "block v4 prefix with ttl", list: "block", prefix: "198.19.66.0/24", ttl: "10m",
			probe: "198.19.66.77", want: xdp.ReasonBlocklist, wantList: "198.19.66.0/24"},
		{name: "block bare v6 address", list: "block", prefix: "2001:db8:bad::1",
			probe: "2001:db8:bad::1", want: xdp.ReasonBlocklist, wantList: "2001:db8:bad::1/128"},
		{name: "block v4-mapped address", list: "block", prefix: "::ffff:198.19.1.2",
			probe: "198.19.1.2", want: xdp.ReasonBlocklist, wantList: "198.19.1.2/32"},
		{name: "allow bare v4 address", list: "allow", prefix: "198.18.0.9",
			probe: "198.18.0.9", want: xdp.ReasonAllowlist, wantList: "198.18.0.9/32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{tc.list, "add", tc.prefix}
			if tc.ttl != "" {
				args = append(args, "--ttl", tc.ttl)
			}
			out := mustRun(t, root, args...)
			if !strings.Contains(out, tc.wantList) {
				t.Errorf("add printed %q, want it to name %s", out, tc.wantList)
			}
			probe := synFrom(tc.probe)
			if r, err := f.Run(probe); err != nil || r != tc.want {
				t.Errorf("listed source: reason %v (err %v), want %v", r, err, tc.want)
			}

			out = mustRun(t, root, tc.list, "list")
			line := lineWith(out, tc.wantList)
			if line == "" {
				t.Fatalf("list lacks %s:\n%s", tc.wantList, out)
			}
			if tc.ttl == "" && !strings.Contains(line, "never") {
				t.Errorf("entry without ttl should expire never: %q", line)
			}
			if tc.ttl != "" && !strings.Contains(line, "9m5") && !strings.Contains(line, "10m0s") {
				t.Errorf("entry with ttl 10m should have about 10m left: %q", line)
			}

			var entries []entryJSON
			if err := json.Unmarshal([]byte(mustRun(t, root, tc.list, "list", "--json")), &entries); err != nil {
				t.Fatal(err)
			}
			found := false
			for _, e := range entries {
				if e.Prefix == tc.wantList {
					found = true
					if (tc.ttl == "") != (e.Expires == nil) || (tc.ttl != "" && *e.RemainingSeconds < 590) {
						t.Errorf("json entry %+v for ttl %q", e, tc.ttl)
					}
				}
			}
			if !found {
				t.Errorf("json list lacks %s: %+v", tc.wantList, entries)
			}

			mustRun(t, root, tc.list, "del", tc.prefix)
			if r, err := f.Run(probe); err != nil || r != xdp.ReasonNotServed {
				t.Errorf("after del: reason %v (err %v), want not_served", r, err)
			}
			_, _, err := rampartctl(t, root, tc.list, "del", tc.prefix)
			if err == nil || !strings.Contains(err.Error(), "is not on the") {
				t.Errorf("second del: err %v, want not listed", err)
			}
		})
	}

	errs := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"invalid prefix", []string{"block", "add", "198.19.300.0/24"}, "invalid prefix"},
		{"host bits", []string{"block", "add", "198.19.66.7/24"}, "did you mean 198.19.66.0/24"},
		{"negative ttl", []string{"block", "add", "198.19.66.0/24", "--ttl", "-1m"}, "invalid --ttl"},
		{"bad ttl", []string{"allow", "add", "198.19.66.0/24", "--ttl", "soon"}, "invalid argument"},
		{"no prefix", []string{"block", "add"}, "accepts 1 arg"},
		{"not listed", []string{"allow", "del", "198.19.99.0/24"}, "198.19.99.0/24 is not on the allowlist"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := rampartctl(t, root, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}

	if out := mustRun(t, root, "allow", "list"); !strings.Contains(out, "the allowlist is empty") {
		t.Errorf("empty list printed %q", out)
	}
	if out := mustRun(t, root, "block", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("empty json list printed %q", out)
	}
}

func TestAttackAndServices(t *testing.T) {
	f, root, dir := pinnedFilter(t, nil)
	mustRun(t, root, "attack", "on", "198.18.0.1")
	mustRun(t, root, "--iface", "test0", "attack", "on", "2001:db8::1")
	if out := mustRun(t, root, "attack", "list"); out != "198.18.0.1\n2001:db8::1\n" {
		t.Errorf("attack list = %q", out)
	}
	s, err := f.Maps().Settings()
	if err != nil || s.AttackEntries != 2 {
		t.Errorf("settings after attack on: %+v, %v", s, err)
	}
	mustRun(t, root, "--pin-dir", dir, "attack", "off", "198.18.0.1")
	var addrs []string
	if err := json.Unmarshal([]byte(mustRun(t, root, "attack", "list", "--json")), &addrs); err != nil ||
		len(addrs) != 1 || addrs[0] != "2001:db8::1" {
		t.Errorf("attack list --json = %v, %v", addrs, err)
	}
	// Off twice is not an error: the state is what the operator asked for.
	mustRun(t, root, "attack", "off", "198.18.0.1")
	if _, _, err := rampartctl(t, root, "attack", "on", "edge.example"); err == nil || !strings.Contains(err.Error(), "invalid address") {
		t.Errorf("attack on a name: err %v", err)
	}

	out := mustRun(t, root, "services")
	for _, want := range []string{"198.18.0.1  tcp    80", "198.18.0.1  tcp    443", "198.18.0.1  udp    443", "2001:db8::1  tcp    80"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("services lacks %q:\n%s", want, out)
		}
	}
	var svcs struct {
		FilterServices bool `json:"filter_services"`
		Services       []struct {
			Addr, Proto string
			Port        uint16
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, root, "services", "--json")), &svcs); err != nil {
		t.Fatal(err)
	}
	if !svcs.FilterServices || len(svcs.Services) != 6 {
		t.Errorf("services --json = %+v", svcs)
	}
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
