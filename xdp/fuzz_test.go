//go:build linux

package xdp

import (
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/rampart-edge/rampart/internal/packets"
	"github.com/rampart-edge/rampart/internal/testnet"
)

// fuzzTarget is one loaded filter and the model of its state.
type fuzzTarget struct {
	name string
	f    *Filter
	m    *Model
}

// fuzzTargets loads two filters with opposite switches (fragments,
// service filtering, ICMP, rate limiting) over the same lists: live
// prefixes, prefixes whose longer expired entry hides them, prefixes wide
// enough to set many hint slots, an address in attack mode.
func fuzzTargets(tb testing.TB) []fuzzTarget {
	a := testConfig()
	a.Fragments = "pass"
	b := testConfig()
	b.FilterServices = false
	b.AllowICMP = false
	b.RateLimit.Enabled = false
	b.ReflectionPorts = []uint16{53, 123, 1900, 11211}

	var targets []fuzzTarget
	for _, tc := range []struct {
		name string
		c    Config
	}{{"strict", a}, {"lenient", b}} {
		e := newEnv(tb, tc.c)
		e.add(Blocklist, "10.1.0.0/16", 0)
		e.add(Blocklist, "10.1.2.0/24", time.Millisecond) // expires: hides the /16 for 10.1.2.x
		e.add(Blocklist, "10.1.2.128/25", 0)
		e.add(Blocklist, "172.16.0.0/12", 0)
		e.add(Blocklist, "2001:db8:6:1::/64", time.Millisecond)
		e.add(Blocklist, "2001:db0::/20", 0)
		e.add(Blocklist, "fe80::/10", 0)
		e.add(Allowlist, "198.18.7.0/24", 0)
		e.add(Allowlist, "198.18.7.128/25", time.Millisecond)
		e.add(Allowlist, "10.1.3.0/24", 0) // inside a blocked /16
		e.add(Allowlist, "2001:db8:6:2::/64", 0)
		e.setAttack(tcpOnly4, true)
		e.setServices(append(manyPorts(), manyAddrs()[len(testConfig().Services):]...))
		targets = append(targets, fuzzTarget{tc.name, e.f, e.m})
	}
	// Let the short entries expire for both: the model's clock moves on by
	// as much as the filter's.
	time.Sleep(50 * time.Millisecond)
	for _, t := range targets {
		t.m.Now += uint64(50 * time.Millisecond)
	}
	return targets
}

// fuzzBases are well-formed frames whose header bytes the fuzzer edits,
// so that it reaches the deep checks without first having to find a
// valid header chain.
func fuzzBases() [][]byte {
	syn6 := tcp(client6, served6, 443, "S")
	udp6 := udp(client6, served6, 40000, 443, 16)
	return [][]byte{
		tcp(client4, served4, 80, "S"),
		udp(client4, tcpOnly4, 53, 40000, 32),
		withIPv6Ext(syn6, hopByHop(8), destOpts(), routing()),
		withIPv6Ext(udp6, ah(), fragment(0, true)),
		withIPv6Ext(udp6, fragment(7, false)),
		build(packets.Spec{VLANs: []uint16{1, 2}, Src: packets.Addr("10.1.2.3"), Dst: packets.Addr(served4),
			Proto: packets.TCP, SrcPort: 1, DstPort: 443, Flags: "A"}),
		build(packets.Spec{Src: packets.Addr("198.18.7.200"), Dst: packets.Addr(unserved4), Proto: packets.TCP,
			SrcPort: 40000, DstPort: 8005, Flags: "PA", IPv4Options: 12}),
		build(packets.Spec{Src: packets.Addr(client4), Dst: packets.Addr(served4), Proto: packets.ICMP}),
		build(packets.Spec{Src: packets.Addr(client4), Dst: packets.Addr(served4), Proto: packets.UDP,
			SrcPort: 123, DstPort: 443, MoreFragments: true, Payload: make([]byte, 24)}),
		build(packets.Spec{Src: packets.Addr("2001:db8:6:1::5"), Dst: packets.Addr(tcpOnly6), Proto: packets.UDP,
			SrcPort: 11211, DstPort: 22, IPv6Ext: []layers.IPProtocol{layers.IPProtocolIPv6Destination}}),
		extChain(8),
		arp(),
	}
}

// mutate turns fuzz input into an edited base frame: the first byte picks
// the base, then each pair (at, value) overwrites byte at (modulo the
// length) with value, except that at 0xff cuts the frame to value bytes.
func mutate(data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	bases := fuzzBases()
	b := append([]byte(nil), bases[int(data[0])%len(bases)]...)
	for i := 1; i+1 < len(data); i += 2 {
		at, v := data[i], data[i+1]
		switch {
		case at == 0xff:
			b = b[:min(len(b), int(v))]
		case len(b) > 0:
			b[int(at)%len(b)] = v
		}
	}
	return b
}

// maxFuzzFrame keeps frames within one page of BPF_PROG_TEST_RUN's buffer;
// longer ones would be split into fragments the filter does not read.
const maxFuzzFrame = 1514

// FuzzFilterModel feeds the same frames to the BPF filter (through
// BPF_PROG_TEST_RUN) and to the Go model, and requires the same reason:
// the input as a raw frame, and the input as edits of a well-formed frame.
func FuzzFilterModel(f *testing.F) {
	testnet.RequireRoot(f, "load BPF programs")
	for _, tc := range verdictCases() {
		f.Add(tc.frame)
		for _, s := range tc.before {
			if s.frame != nil {
				f.Add(s.frame)
			}
		}
	}
	for i := range fuzzBases() {
		f.Add([]byte{byte(i)})
	}
	f.Add([]byte{3, 0xff, 70}) // cut inside the AH header

	targets := fuzzTargets(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, frame := range [][]byte{data, mutate(data)} {
			if frame == nil {
				continue
			}
			frame = frame[:min(len(frame), maxFuzzFrame)]
			for _, tg := range targets {
				bpf, model, err := judge(tg.f, tg.m, frame)
				if err != nil {
					t.Fatalf("%s: frame %x: %v", tg.name, frame, err)
				}
				if bpf != model {
					if bug := knownBug(frame, bpf, model); bug != "" {
						t.Skip("BUG: " + bug)
					}
					t.Fatalf("%s: frame %x:\n  bpf   %s\n  model %s", tg.name, frame, bpf, model)
				}
			}
		}
	})
}

// knownBug names a reported filter.c bug that explains a disagreement, so
// that fuzzing can go on looking for new ones until it is fixed. Remove a
// case as soon as its verdict-table row stops being skipped.
func knownBug(frame []byte, bpf, model Reason) string {
	p, r := modelParse(frame)
	if r != ReasonPass {
		return ""
	}
	if model == ReasonNotServed && (bpf == ReasonPass || bpf == ReasonFragmentPassed) &&
		(p.proto == 6 || p.proto == 17) && p.hasPorts && p.dport == 0 {
		return portZeroBug
	}
	return ""
}

// The fuzz corpus holds frames that the seeds do not: check that they
// still parse the way they were meant to, so a corpus file keeps its
// purpose.
func TestFuzzBasesAreWellFormed(t *testing.T) {
	for i, b := range fuzzBases() {
		if _, r := modelParse(b); r.Dropped() {
			t.Errorf("base %d is malformed: %s", i, r)
		}
	}
	if got := mutate([]byte{0, 0xff, 20}); len(got) != 20 {
		t.Errorf("cut to %d bytes, want 20", len(got))
	}
	if got := mutate([]byte{0, 12, 0x86}); got[12] != 0x86 {
		t.Errorf("edit not applied")
	}
}
