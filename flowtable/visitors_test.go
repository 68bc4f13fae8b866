package flowtable

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestVisitorKey(t *testing.T) {
	tests := []struct {
		name       string
		addr       string
		wantKey    string // the key's 16 bytes as an IPv6 address
		wantPrefix string
	}{
		{"ipv4", "198.18.0.1", "::ffff:198.18.0.1", "198.18.0.1/32"},
		{"ipv4-mapped ipv6 is ipv4", "::ffff:198.18.0.1", "::ffff:198.18.0.1", "198.18.0.1/32"},
		{"ipv4 zero", "0.0.0.0", "::ffff:0.0.0.0", "0.0.0.0/32"},
		{"ipv4 broadcast", "255.255.255.255", "::ffff:255.255.255.255", "255.255.255.255/32"},
		{"ipv6 host bits zeroed", "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"ipv6 already a /64", "2001:db8:1:2::", "2001:db8:1:2::", "2001:db8:1:2::/64"},
		{"ipv6 all ones", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::", "ffff:ffff:ffff:ffff::/64"},
		{"ipv6 link-local with zone", "fe80::1%eth0", "fe80::", "fe80::/64"},
		{"ipv6 loopback", "::1", "::", "::/64"},
		// Only ::ffff:0:0/96 is IPv4; the deprecated IPv4-compatible form
		// is an IPv6 address like any other.
		{"ipv4-compatible ipv6", "::198.18.0.1", "::", "::/64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			k := NewVisitorKey(a)
			if want := netip.MustParseAddr(tc.wantKey).As16(); k != want {
				t.Errorf("key %v, want %v", netip.AddrFrom16(k), netip.AddrFrom16(want))
			}
			p := k.Prefix()
			if want := netip.MustParsePrefix(tc.wantPrefix); p != want {
				t.Errorf("Prefix() = %v, want %v", p, want)
			}
			if !p.Contains(a.WithZone("").Unmap()) {
				t.Errorf("Prefix() %v does not contain %v", p, a)
			}
			if again := NewVisitorKey(p.Addr()); again != k {
				t.Errorf("key of its own prefix %v differs", p)
			}
		})
	}
}

// Two addresses in one /64 are one visitor; a neighbouring /64 is not.
func TestVisitorKeyIdentity(t *testing.T) {
	a := NewVisitorKey(netip.MustParseAddr("2001:db8:0:1::1"))
	if b := NewVisitorKey(netip.MustParseAddr("2001:db8:0:1:ffff::9")); a != b {
		t.Error("two hosts of one /64 have different keys")
	}
	if c := NewVisitorKey(netip.MustParseAddr("2001:db8:0:2::1")); a == c {
		t.Error("neighbouring /64s share a key")
	}
	if NewVisitorKey(netip.MustParseAddr("198.18.0.1")) == NewVisitorKey(netip.MustParseAddr("198.18.0.2")) {
		t.Error("two IPv4 addresses share a key")
	}
}

func TestVisitorRate(t *testing.T) {
	const T = 1_700_000_000
	type count struct {
		sec int64
		n   uint32
	}
	type query struct {
		sec  int64
		want float64 // requests per second
	}
	tests := []struct {
		name    string
		counts  []count
		queries []query
	}{
		{"nothing counted", nil, []query{{T, 0}, {0, 0}}},
		{"same second",
			[]count{{T, 1}, {T, 1}, {T, 1}},
			[]query{{T, 3.0 / 8}, {T + 7, 3.0 / 8}, {T + 8, 0}, {T - 1, 0}}},
		{"n at once", []count{{T, 100}}, []query{{T, 12.5}}},
		{"sliding by one",
			[]count{{T, 1}, {T + 1, 1}, {T + 2, 1}, {T + 3, 1}, {T + 4, 1}, {T + 5, 1}, {T + 6, 1}, {T + 7, 1}, {T + 8, 1}, {T + 9, 1}},
			// Seconds T+2..T+9 are kept.
			[]query{{T + 9, 1}, {T + 8, 7.0 / 8}, {T + 3, 2.0 / 8}, {T + 1, 0}, {T + 10, 7.0 / 8}}},
		{"slide of exactly RateWindows",
			[]count{{T, 4}, {T + RateWindows, 1}},
			[]query{{T + RateWindows, 1.0 / 8}, {T, 0}}},
		{"slide of RateWindows-1 keeps the first second",
			[]count{{T, 3}, {T + RateWindows - 1, 1}},
			[]query{{T + RateWindows - 1, 4.0 / 8}, {T, 3.0 / 8}}},
		{"jump beyond the window clears it",
			[]count{{T, 5}, {T + 1, 5}, {T + 2, 5}, {T + 20, 2}},
			[]query{{T + 20, 2.0 / 8}, {T + 2, 0}, {T + 13, 0}}},
		{"jump of two windows reuses the slot",
			[]count{{T, 7}, {T + 2*RateWindows, 1}},
			[]query{{T + 2*RateWindows, 1.0 / 8}}},
		{"old seconds ignored",
			[]count{{T + 10, 1}, {T + 2, 5}, {T, 9}},
			[]query{{T + 10, 1.0 / 8}, {T + 2, 0}}},
		{"late but in the window counted",
			[]count{{T + 10, 1}, {T + 3, 5}},
			[]query{{T + 10, 6.0 / 8}, {T + 3, 5.0 / 8}}},
		{"out of order within the window",
			[]count{{T + 5, 1}, {T + 3, 2}, {T + 4, 4}},
			[]query{{T + 5, 7.0 / 8}, {T + 4, 6.0 / 8}, {T + 3, 2.0 / 8}}},
		{"future query sees the overlap",
			[]count{{T, 8}, {T + 2, 8}},
			[]query{{T + 5, 2}, {T + 7, 2}, {T + 8, 1}, {T + 9, 1}, {T + 10, 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var v Visitor
			for _, c := range tc.counts {
				v.Count(c.sec, c.n)
			}
			for _, q := range tc.queries {
				if got := v.Rate(q.sec); got != q.want {
					t.Errorf("Rate(T%+d) = %v, want %v", q.sec-T, got, q.want)
				}
			}
		})
	}
}

// visitorModel recomputes Rate naively from the counts: a window of
// RateWindows seconds ends at the newest second counted (a fresh Visitor's
// window is seconds 0..RateWindows-1); a count older than the window is
// dropped when it arrives. It keeps one sum per second and forgets seconds
// that left the window (the newest second never moves back, so they can
// never count again).
type visitorModel struct {
	newest int64
	events []visitorEvent
}

type visitorEvent struct {
	sec int64
	n   uint64
}

func newVisitorModel() *visitorModel { return &visitorModel{newest: RateWindows - 1} }

func (m *visitorModel) count(sec int64, n uint32) {
	m.newest = max(m.newest, sec)
	m.events = slices.DeleteFunc(m.events, func(e visitorEvent) bool { return e.sec <= m.newest-RateWindows })
	if sec <= m.newest-RateWindows {
		return
	}
	for i := range m.events {
		if m.events[i].sec == sec {
			m.events[i].n += uint64(n)
			return
		}
	}
	m.events = append(m.events, visitorEvent{sec, uint64(n)})
}

func (m *visitorModel) rate(sec int64) float64 {
	var sum uint64
	for _, e := range m.events {
		// Kept: still in the window, and in the RateWindows seconds up to sec.
		if e.sec > max(sec, m.newest)-RateWindows && e.sec <= sec {
			sum += e.n
		}
	}
	return float64(sum) / RateWindows
}

// FuzzVisitorCount counts requests at seconds that move forward, back and
// jump, and after each count compares Rate around the newest second with
// the naive model.
//
// Input: byte 0 picks the starting second (0: the epoch, so seconds can go
// negative; else around today), then 2 bytes per count: a signed step in
// seconds and the number of requests, at most 256 counts (the fuzzer
// minimises inputs in time quadratic in their length).
func FuzzVisitorCount(f *testing.F) {
	f.Add([]byte{1, 0, 1, 0, 1, 1, 1, 1, 1})
	f.Add([]byte{1, 0, 5, 8, 1, 20, 3, 0xf6, 9, 0xfe, 4}) // forward, jump, back, back
	f.Add([]byte{0, 0xfd, 1, 2, 1, 3, 2, 5, 7})           // from the epoch, below it first
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		var sec int64
		if data[0] != 0 {
			sec = 1_700_000_000 + int64(data[0])
		}
		var v Visitor
		m := newVisitorModel()
		for i := 1; i+2 <= len(data) && i < 2*256; i += 2 {
			sec += int64(int8(data[i]))
			n := uint32(data[i+1])
			v.Count(sec, n)
			m.count(sec, n)
			for q := m.newest - RateWindows - 1; q <= m.newest+RateWindows+1; q++ {
				if got, want := v.Rate(q), m.rate(q); got != want {
					t.Fatalf("after Count(%d, %d) (count %d): Rate(newest%+d) = %v, model %v",
						sec, n, i/2, q-m.newest, got, want)
				}
			}
		}
	})
}

// visitorCountCorpus is FuzzVisitorCount's corpus (see TestWriteFuzzCorpus).
func visitorCountCorpus() map[string][]byte {
	files := map[string][]byte{}
	b := []byte{1}
	for range 40 {
		b = append(b, 1, 3) // steady: 3 requests every second
	}
	files["steady"] = b

	b = []byte{9}
	for i := range 30 {
		b = append(b, 0, 50) // a burst in one second
		if i%10 == 9 {
			b = append(b, byte(RateWindows+i%3), 1) // then a gap of about a window
		}
	}
	files["bursts-and-gaps"] = b

	b = []byte{0}
	for i := range 60 {
		b = append(b, byte(int8([]int{-3, 5, -2, 1, 9, -9}[i%6])), byte(i))
	}
	files["jitter-from-epoch"] = b

	for n := range 3 {
		rng := rand.New(rand.NewPCG(uint64(n), 8))
		b = []byte{byte(1 + n)}
		for range 256 {
			step := rng.IntN(5) - 1 // mostly forward by a little
			if rng.IntN(10) == 0 {
				step = rng.IntN(256) - 128
			}
			b = append(b, byte(int8(step)), byte(rng.IntN(256)))
		}
		files[fmt.Sprintf("random-%d", n)] = b
	}
	return files
}
