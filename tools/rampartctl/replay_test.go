package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
)

// replayLines runs replay --json and returns the per-packet results and
// the summary.
func replayLines(t *testing.T, root string, args ...string) ([]packetResult, replaySummary) {
	t.Helper()
	out := mustRun(t, root, append([]string{"replay", "--json"}, args...)...)
	var results []packetResult
	var sum replaySummary
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var probe struct{ Type string }
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("bad json line %q: %v", sc.Text(), err)
		}
		switch probe.Type {
		case "packet":
			var r packetResult
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			results = append(results, r)
		case "summary":
			if err := json.Unmarshal(sc.Bytes(), &sum); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("line of unknown type: %s", sc.Text())
		}
	}
	return results, sum
}

// TestReplayLiveState replays against the pinned state of a filter: its
// blocklist applies, its counters stay untouched.
func TestReplayLiveState(t *testing.T) {
	f, root, _ := pinnedFilter(t, nil)
	mustRun(t, root, "block", "add", attacker.String())
	before, err := f.Maps().Stats()
	if err != nil {
		t.Fatal(err)
	}

	fixture := fixturePackets()
	frames := fixtureFrames()
	runt := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	frames = append(frames, runt)
	pcap := filepath.Join(t.TempDir(), "in.pcap")
	if err := os.WriteFile(pcap, writePcap(t, frames), 0o600); err != nil {
		t.Fatal(err)
	}
	results, sum := replayLines(t, root, pcap)
	if len(results) != len(frames) {
		t.Fatalf("got %d results for %d packets", len(results), len(frames))
	}
	for i, p := range fixture {
		want := p.want
		if p.name == "syn from the blocked attacker" {
			want = "blocklist"
		}
		if results[i].Reason != want {
			t.Errorf("packet %d (%s): reason %q, want %q (%s)", i+1, p.name, results[i].Reason, want, results[i].Summary)
		}
	}
	if r := results[len(results)-1]; r.Verdict != "error" || !strings.Contains(r.Error, "shorter than an Ethernet header") {
		t.Errorf("runt frame: got %+v, want an error result", r)
	}
	if sum.Packets != len(frames) || sum.Errors != 1 || sum.Reasons["blocklist"] != 1 || sum.Reasons["tcp_flags"] != 3 {
		t.Errorf("summary %+v", sum)
	}
	after, err := f.Maps().Stats()
	if err != nil {
		t.Fatal(err)
	}
	for i := range after {
		if after[i] != before[i] {
			t.Errorf("replay changed live counter %d: %+v -> %+v", i, before[i], after[i])
		}
	}

	out := mustRun(t, root, "replay", pcap)
	for _, want := range []string{"198.19.66.6:40000 → 198.18.0.1:443 tcp [S]", "blocklist", "tcp [none]",
		"total: 18 packets, 7 passed, 10 dropped, 1 not run"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
}

// TestReplayGolden is the documented example:
// rampartctl replay testdata/replay.pcap --profile edge-default.
func TestReplayGolden(t *testing.T) {
	testnet.RequireRoot(t, "load the XDP filter")
	results, _ := replayLines(t, t.TempDir(), filepath.Join("testdata", "replay.pcap"), "--profile", "edge-default")
	fixture := fixturePackets()
	if len(results) != len(fixture) {
		t.Fatalf("got %d results, want %d", len(results), len(fixture))
	}
	for i, p := range fixture {
		if results[i].Reason != p.want {
			t.Errorf("packet %d (%s): reason %q, want %q", i+1, p.name, results[i].Reason, p.want)
		}
	}
	got := mustRun(t, t.TempDir(), "replay", filepath.Join("testdata", "replay.pcap"), "--profile", "edge-default")
	golden := filepath.Join("testdata", "replay.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run TestReplayGolden -update rewrites it):\n%s", golden, got)
	}
}

func TestReplayErrors(t *testing.T) {
	empty := t.TempDir()
	pcap := filepath.Join(t.TempDir(), "in.pcap")
	if err := os.WriteFile(pcap, writePcap(t, [][]byte{packets.MustBuild(packets.Spec{Src: client, Dst: edge,
		Proto: packets.TCP, SrcPort: 1, DstPort: 443, Flags: "S"})}), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.pcap")
	if err := os.WriteFile(garbage, []byte("this is not a capture"), 0o600); err != nil {
		t.Fatal(err)
	}
	var sll bytes.Buffer
	w := pcapgo.NewWriter(&sll)
	if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
		t.Fatal(err)
	}
	cooked := filepath.Join(t.TempDir(), "any.pcap")
	if err := os.WriteFile(cooked, sll.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no state and no profile", []string{"replay", pcap}, "pass --profile"},
		{"linux cooked capture", []string{"replay", cooked, "--profile", "edge-default"}, "replay needs Ethernet frames"},
		{"unknown profile", []string{"replay", pcap, "--profile", "no-such-profile"}, `no profile named "no-such-profile"`},
		{"missing file", []string{"replay", filepath.Join(empty, "nope.pcap"), "--profile", "edge-default"}, "open capture"},
		{"not a capture", []string{"replay", garbage, "--profile", "edge-default"}, "not a pcap or pcapng file"},
		{"pin dir missing", []string{"--pin-dir", filepath.Join(empty, "eth9"), "replay", pcap}, "no filter state at"},
		{"no file", []string{"replay"}, "accepts 1 arg"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := rampartctl(t, empty, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
