package flood

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
)

func TestSetMACs(t *testing.T) {
	dst := net.HardwareAddr{1, 2, 3, 4, 5, 6}
	src := net.HardwareAddr{7, 8, 9, 10, 11, 12}
	tests := []struct {
		name  string
		frame []byte
		want  []byte
	}{
		{name: "ethernet header", frame: make([]byte, 14), want: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0}},
		{name: "payload untouched", frame: bytes.Repeat([]byte{0xff}, 16),
			want: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xff, 0xff, 0xff, 0xff}},
		{name: "too short is left alone", frame: []byte{0xaa, 0xbb}, want: []byte{0xaa, 0xbb}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			SetMACs(tc.frame, dst, src)
			if !bytes.Equal(tc.frame, tc.want) {
				t.Fatalf("got % x, want % x", tc.frame, tc.want)
			}
		})
	}
}

// pair is two hosts on a lan, a Sender on a's eth0 and frames addressed to b.
type pair struct {
	n      *testnet.Net
	s      *Sender
	frames [][]byte
}

func newPair(t *testing.T) *pair {
	t.Helper()
	testnet.RequireRoot(t, "open packet sockets in network namespaces")
	n := testnet.NewT(t, "a", "b")
	a, b := n.Host("a"), n.Host("b")
	var aMAC, bMAC net.HardwareAddr
	if err := b.Do(func() (err error) { bMAC, err = MAC("eth0"); return err }); err != nil {
		t.Fatal(err)
	}
	var s *Sender
	if err := a.Do(func() (err error) {
		if aMAC, err = MAC("eth0"); err != nil {
			return err
		}
		s, err = Open("eth0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	p := &pair{n: n, s: s}
	for i := range 16 {
		f := packets.MustBuild(packets.Spec{Src: a.Addr, Dst: b.Addr, Proto: packets.UDP,
			SrcPort: uint16(40000 + i), DstPort: 9, Payload: make([]byte, 18)})
		SetMACs(f, bMAC, aMAC)
		p.frames = append(p.frames, f)
	}
	return p
}

// rxPackets reads b's eth0 receive counter from inside b's namespace.
func (p *pair) rxPackets(t *testing.T, ctx context.Context) uint64 {
	t.Helper()
	out, err := p.n.Host("b").Exec(ctx, "cat", "/sys/class/net/eth0/statistics/rx_packets")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("rx_packets: %v", err)
	}
	return v
}

func TestSendReachesPeer(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const count = 20000
	before := p.rxPackets(t, ctx)
	sent, err := p.s.Send(ctx, p.frames, count)
	if err != nil || sent != count {
		t.Fatalf("Send = %d, %v; want %d, nil", sent, err, count)
	}
	// Frames cross a bridge in softirq; give the last ones a moment.
	var got uint64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if got = p.rxPackets(t, ctx) - before; got >= count {
			break
		}
	}
	// Other traffic (neighbour discovery) may add a few packets. A few may
	// also be lost: a busy machine's softirq backlog (1000 frames per CPU)
	// overflows when the sender outruns the bridge, as on a real wire.
	if got < count*98/100 || got > count+20 {
		t.Fatalf("b received %d packets, want %d (less at most 2 %% backlog loss, + a few for neighbour discovery)", got, count)
	}
}

func TestSendStopsOnCancel(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sent, err := p.s.Send(ctx, p.frames, 1_000_000)
	if err != context.Canceled || sent != 0 {
		t.Fatalf("Send on a cancelled context = %d, %v; want 0, context.Canceled", sent, err)
	}
}

func TestSendDoesNotAllocate(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := p.s.Send(ctx, p.frames, 1); err != nil { // builds the headers
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := p.s.Send(ctx, p.frames, 1000); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Send allocated %.1f times per call of 1000 frames, want 0", allocs)
	}
}

func TestSendErrors(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		frames  [][]byte
		count   int
		want    int
		wantErr string
	}{
		{name: "zero count sends nothing", frames: p.frames, count: 0},
		{name: "no frames", frames: nil, count: 10, wantErr: "no frames"},
		{name: "runt frame", frames: [][]byte{make([]byte, 10)}, count: 1, wantErr: "shorter than an Ethernet header"},
		{name: "count below one batch", frames: p.frames, count: 3, want: 3},
		{name: "count not a multiple of frames", frames: p.frames, count: 1000, want: 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent, err := p.s.Send(ctx, tc.frames, tc.count)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Send err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || sent != tc.want {
				t.Fatalf("Send = %d, %v; want %d, nil", sent, err, tc.want)
			}
		})
	}
	if err := p.s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.s.Send(ctx, p.frames, 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Send after Close = %v, want a closed error", err)
	}
}

func TestOpenUnknownInterface(t *testing.T) {
	if _, err := Open("rampart-nonexistent0"); err == nil {
		t.Fatal("Open on a missing interface succeeded")
	}
}

func TestSendContinuesCycle(t *testing.T) {
	p := newPair(t)
	ctx := context.Background()
	steps := []struct {
		name     string
		frames   [][]byte
		count    int
		wantNext int
	}{
		{name: "first share", frames: p.frames, count: 3, wantNext: 3},
		{name: "same frames continue", frames: p.frames, count: 14, wantNext: 1},
		{name: "other frames start over", frames: p.frames[:4], count: 2, wantNext: 2},
		{name: "back to the first set starts over", frames: p.frames, count: 5, wantNext: 5},
	}
	for _, st := range steps {
		if _, err := p.s.Send(ctx, st.frames, st.count); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if p.s.next != st.wantNext {
			t.Fatalf("%s: next frame %d, want %d", st.name, p.s.next, st.wantNext)
		}
	}
}
