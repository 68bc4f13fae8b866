package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/csv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rampart-edge/rampart/xdp"
)

// dropFrames are frames the edge-default filter drops, one reason each.
func dropFrames() ([][]byte, []string) {
	var frames [][]byte
	var reasons []string
	for _, p := range fixturePackets() {
		if p.want != "pass" && p.want != "non_ip" {
			frames = append(frames, p.frame)
			reasons = append(reasons, p.want)
		}
	}
	return frames, reasons
}

// TestDrops samples every drop of a pinned filter, then captures them
// from the pinned ring in both formats.
func TestDrops(t *testing.T) {
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			f, root, _ := pinnedFilter(t, func(c *xdp.Config) { c.SampleEvery = 1 })
			frames, reasons := dropFrames()
			for _, fr := range frames {
				if _, err := f.Run(fr); err != nil {
					t.Fatal(err)
				}
			}
			out := filepath.Join(t.TempDir(), "drops."+format)
			stdout, stderr, err := rampartctl(t, root, "drops", "--pcap", out, "--count", itoa(len(frames)), "--timeout", "10s")
			if err != nil {
				t.Fatalf("drops: %v\n%s", err, stderr)
			}
			if !strings.Contains(stderr, "wrote "+itoa(len(frames))+" sampled drops") {
				t.Errorf("stderr: %q", stderr)
			}
			got := readBack(t, out)
			checkCapture(t, got, frames, reasons)
			table, err := os.ReadFile(out + ".reasons.csv")
			if err != nil {
				t.Fatal(err)
			}
			if string(table) != stdout {
				t.Errorf("printed table differs from the csv file:\n%s\n---\n%s", stdout, table)
			}
			checkTable(t, table, frames, reasons)
			if format == "pcapng" {
				comments := pcapngComments(t, out)
				for i, want := range reasons {
					if i >= len(comments) || comments[i] != "rampart drop reason="+want {
						t.Errorf("packet %d comment %q, want reason %s", i+1, comments[min(i, len(comments)-1)], want)
					}
				}
			}
			if tcpdump, err := exec.LookPath("tcpdump"); err == nil {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				b, err := exec.CommandContext(ctx, tcpdump, "-nr", out).CombinedOutput()
				if err != nil || strings.Count(string(b), "\n") < len(frames) {
					t.Errorf("tcpdump -r %s: %v\n%s", out, err, b)
				}
			}

			// Nothing left in the ring: the timeout ends the capture.
			start := time.Now()
			if _, stderr, err := rampartctl(t, root, "drops", "--pcap", out, "--timeout", "200ms"); err != nil ||
				!strings.Contains(stderr, "wrote 0 sampled drops") {
				t.Errorf("empty ring: %v, %q", err, stderr)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("timeout of 200ms took %s", time.Since(start))
			}
		})
	}
}

// TestCaptureDrops covers the writers, the stop conditions and the
// backlog filter without a kernel, using a scripted ring.
func TestCaptureDrops(t *testing.T) {
	frames, reasons := dropFrames()
	now := time.Now().Add(time.Second) // after captureDrops starts, as live samples are
	var samples []xdp.Sample
	for i, fr := range frames {
		r, err := xdp.ParseReason(reasons[i])
		if err != nil {
			t.Fatal(err)
		}
		samples = append(samples, xdp.Sample{Time: now.Add(time.Duration(i) * time.Millisecond), Reason: r,
			Ifindex: 3, PacketLen: uint32(len(fr)), Data: fr[:min(len(fr), snapLen)]})
	}
	old := samples[0]
	old.Time = now.Add(-time.Hour)
	tests := []struct {
		name        string
		format      string
		ring        []xdp.Sample
		count       int
		skipBacklog bool
		want        int
	}{
		{name: "pcap all", format: "pcap", ring: samples, want: len(samples)},
		{name: "pcapng all", format: "pcapng", ring: samples, want: len(samples)},
		{name: "count stops early", format: "pcap", ring: samples, count: 2, want: 2},
		{name: "backlog skipped", format: "pcapng", ring: append([]xdp.Sample{old}, samples...), skipBacklog: true, want: len(samples)},
		{name: "empty ring", format: "pcap", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "d."+tc.format)
			var stdout, stderr bytes.Buffer
			ring := &fakeRing{samples: tc.ring}
			err := captureDrops(t.Context(), ring, dropsOptions{path: out, format: tc.format, iface: "eth0",
				count: tc.count, skipBacklog: tc.skipBacklog, stdout: &stdout, stderr: &stderr})
			if err != nil {
				t.Fatal(err)
			}
			got := readBack(t, out)
			if len(got) != tc.want {
				t.Fatalf("read back %d packets, want %d", len(got), tc.want)
			}
			checkCapture(t, got, frames[:tc.want], reasons[:tc.want])
			checkTable(t, stdout.Bytes(), frames[:tc.want], reasons[:tc.want])
		})
	}

	t.Run("timeout", func(t *testing.T) {
		var stderr bytes.Buffer
		err := captureDrops(t.Context(), &fakeRing{block: true, closed: make(chan struct{})}, dropsOptions{path: filepath.Join(t.TempDir(), "d.pcap"),
			format: "pcap", timeout: 50 * time.Millisecond, stdout: io.Discard, stderr: &stderr})
		if err != nil || !strings.Contains(stderr.String(), "wrote 0") {
			t.Fatalf("err %v, stderr %q", err, stderr.String())
		}
	})
	t.Run("unwritable", func(t *testing.T) {
		err := captureDrops(t.Context(), &fakeRing{}, dropsOptions{path: filepath.Join(t.TempDir(), "no", "d.pcap"),
			format: "pcap", stdout: io.Discard, stderr: io.Discard})
		if err == nil || !strings.Contains(err.Error(), "create capture file") {
			t.Fatalf("err %v", err)
		}
	})
}

// fakeRing plays samples, then reports the ring closed (or, with block,
// waits until closed, as the real ring does).
type fakeRing struct {
	samples []xdp.Sample
	block   bool
	closed  chan struct{}
}

func (r *fakeRing) Read() (xdp.Sample, error) {
	if len(r.samples) > 0 {
		s := r.samples[0]
		r.samples = r.samples[1:]
		return s, nil
	}
	if r.block {
		<-r.closed
	}
	return xdp.Sample{}, xdp.ErrClosed
}

func (r *fakeRing) Close() error {
	if r.block && r.closed != nil {
		select {
		case <-r.closed:
		default:
			close(r.closed)
		}
	}
	return nil
}

type captured struct {
	data   []byte
	length int
	ts     time.Time
}

// readBack reads a capture file with pcapgo, whichever the format.
func readBack(t *testing.T, path string) []captured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []captured
	err = readCapture(data, func(f frame) error {
		out = append(out, captured{f.data, f.ci.Length, f.ci.Timestamp})
		return nil
	})
	if err != nil {
		t.Fatalf("read back %s: %v", path, err)
	}
	// And with pcapgo's readers directly, as another tool would.
	var n int
	if strings.HasSuffix(path, ".pcapng") {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Errorf("link type %v", r.LinkType())
		}
		for ; ; n++ {
			if _, _, err := r.ReadPacketData(); err != nil {
				break
			}
		}
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != snapLen {
			t.Errorf("link type %v snaplen %d", r.LinkType(), r.Snaplen())
		}
		for ; ; n++ {
			if _, _, err := r.ReadPacketData(); err != nil {
				break
			}
		}
	}
	if n != len(out) {
		t.Errorf("pcapgo read %d packets, readCapture %d", n, len(out))
	}
	return out
}

func checkCapture(t *testing.T, got []captured, frames [][]byte, reasons []string) {
	t.Helper()
	if len(got) != len(frames) {
		t.Fatalf("%d packets in the capture, want %d (%v)", len(got), len(frames), reasons)
	}
	for i, fr := range frames {
		want := fr[:min(len(fr), snapLen)]
		if !bytes.Equal(got[i].data, want) || got[i].length != len(fr) {
			t.Errorf("packet %d (%s): %d bytes of %d, want %d of %d", i+1, reasons[i], len(got[i].data), got[i].length, len(want), len(fr))
		}
		if d := time.Since(got[i].ts).Abs(); d > time.Minute {
			t.Errorf("packet %d: timestamp %s is not recent", i+1, got[i].ts)
		}
	}
}

func checkTable(t *testing.T, table []byte, frames [][]byte, reasons []string) {
	t.Helper()
	rows, err := csv.NewReader(bytes.NewReader(table)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(frames)+1 || strings.Join(rows[0], ",") != "packet,time,reason,length" {
		t.Fatalf("table:\n%s", table)
	}
	for i, row := range rows[1:] {
		if row[0] != itoa(i+1) || row[2] != reasons[i] || row[3] != itoa(len(frames[i])) {
			t.Errorf("row %d = %v, want reason %s length %d", i+1, row, reasons[i], len(frames[i]))
		}
		if _, err := time.Parse(time.RFC3339Nano, row[1]); err != nil {
			t.Errorf("row %d time: %v", i+1, err)
		}
	}
}

// pcapngComments returns the opt_comment of each enhanced packet block.
// pcapgo's reader skips packet options, hence this small walker.
func pcapngComments(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	var out []string
	for off := 0; off+12 <= len(data); {
		typ, n := le.Uint32(data[off:]), int(le.Uint32(data[off+4:]))
		if n < 12 || off+n > len(data) {
			t.Fatalf("bad block at %d", off)
		}
		if typ == ngEPB {
			caplen := int(le.Uint32(data[off+20:]))
			opts := data[off+28+caplen+(4-caplen%4)%4 : off+n-4]
			comment := ""
			for len(opts) >= 4 {
				code, l := le.Uint16(opts), int(le.Uint16(opts[2:]))
				if code == 0 {
					break
				}
				if code == 1 {
					comment = string(opts[4 : 4+l])
				}
				opts = opts[4+l+(4-l%4)%4:]
			}
			out = append(out, comment)
		}
		off += n
	}
	return out
}
