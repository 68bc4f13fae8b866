package flowtable

import (
	"net/netip"
	"testing"
	"unsafe"
)

// The sizes are part of the design: keys are hashed as bytes (no padding)
// and ten million flows must fit in a GiB.
func TestFlowSizes(t *testing.T) {
	if n := unsafe.Sizeof(FlowKey{}); n != 37 {
		t.Errorf("FlowKey is %d bytes, want 37", n)
	}
	if n := unsafe.Sizeof(Flow{}); n != 48 {
		t.Errorf("Flow is %d bytes, want 48", n)
	}
	if n := unsafe.Sizeof(VisitorKey{}); n != 16 {
		t.Errorf("VisitorKey is %d bytes, want 16", n)
	}
	// New refuses padded keys and pointerful values: both tables must be
	// accepted as they are.
	flows, err := NewFlows(16)
	if err != nil {
		t.Fatalf("NewFlows: %v", err)
	}
	flows.Close()
	visitors, err := NewVisitors(16)
	if err != nil {
		t.Fatalf("NewVisitors: %v", err)
	}
	visitors.Close()
}

func TestFlowKey(t *testing.T) {
	tests := []struct {
		name             string
		src, dst         string
		proto            uint8
		wantSrc, wantDst string // "" means the same as given
		wantPorts        [4]byte
	}{
		{name: "ipv4 tcp", src: "198.18.0.1:40000", dst: "198.19.0.2:443", proto: 6,
			wantPorts: [4]byte{0x9c, 0x40, 0x01, 0xbb}},
		{name: "ipv6 udp", src: "[2001:db8::1]:53", dst: "[2001:db8:ffff::2]:5353", proto: 17,
			wantPorts: [4]byte{0x00, 0x35, 0x14, 0xe9}},
		{name: "port zero and max", src: "10.0.0.1:0", dst: "10.0.0.2:65535", proto: 6,
			wantPorts: [4]byte{0, 0, 0xff, 0xff}},
		{name: "mixed families", src: "198.18.0.1:1", dst: "[2001:db8::2]:2", proto: 6,
			wantPorts: [4]byte{0, 1, 0, 2}},
		// IPv4-mapped IPv6 is how IPv4 is stored: it comes back as IPv4.
		{name: "ipv4-mapped ipv6", src: "[::ffff:198.18.0.1]:80", dst: "[::ffff:198.19.0.1]:8080", proto: 6,
			wantSrc: "198.18.0.1:80", wantDst: "198.19.0.1:8080", wantPorts: [4]byte{0, 80, 0x1f, 0x90}},
		// A zone is not part of the key.
		{name: "link-local with zone", src: "[fe80::1%eth0]:546", dst: "[fe80::2%eth0]:547", proto: 17,
			wantSrc: "[fe80::1]:546", wantDst: "[fe80::2]:547", wantPorts: [4]byte{0x02, 0x22, 0x02, 0x23}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
			wantSrc, wantDst := src, dst
			if tc.wantSrc != "" {
				wantSrc, wantDst = netip.MustParseAddrPort(tc.wantSrc), netip.MustParseAddrPort(tc.wantDst)
			}
			k := NewFlowKey(src, dst, tc.proto)
			if got := k.Source(); got != wantSrc {
				t.Errorf("Source() = %v, want %v", got, wantSrc)
			}
			if got := k.Destination(); got != wantDst {
				t.Errorf("Destination() = %v, want %v", got, wantDst)
			}
			if k.Proto != tc.proto {
				t.Errorf("Proto = %d, want %d", k.Proto, tc.proto)
			}
			if k.Ports != tc.wantPorts {
				t.Errorf("Ports = % x, want % x (big-endian, source first)", k.Ports, tc.wantPorts)
			}
			// Building the key again from what it returns gives the same
			// bytes, so a key round-trips through its printed form.
			if again := NewFlowKey(k.Source(), k.Destination(), k.Proto); again != k {
				t.Errorf("rebuilt key %+v differs from %+v", again, k)
			}
		})
	}
}

// A flow must have one key, whichever way its IPv4 addresses were spelt,
// and the direction and protocol must tell flows apart.
func TestFlowKeyIdentity(t *testing.T) {
	a := netip.MustParseAddrPort("198.18.0.1:40000")
	aMapped := netip.MustParseAddrPort("[::ffff:198.18.0.1]:40000")
	b := netip.MustParseAddrPort("198.19.0.2:443")
	if NewFlowKey(a, b, 6) != NewFlowKey(aMapped, b, 6) {
		t.Error("IPv4 and IPv4-mapped IPv6 spellings give different keys")
	}
	if NewFlowKey(a, b, 6) == NewFlowKey(b, a, 6) {
		t.Error("reversed flow has the same key")
	}
	if NewFlowKey(a, b, 6) == NewFlowKey(a, b, 17) {
		t.Error("TCP and UDP flows have the same key")
	}
}

func TestVerdictString(t *testing.T) {
	tests := []struct {
		name string
		v    Verdict
		want string
	}{
		{"none", VerdictNone, "none"},
		{"allow", VerdictAllow, "allow"},
		{"challenge", VerdictChallenge, "challenge"},
		{"tarpit", VerdictTarpit, "tarpit"},
		{"rate delay", VerdictRateDelay, "rate_delay"},
		{"block", VerdictBlock, "block"},
		{"out of range", VerdictBlock + 1, "unknown"},
		{"max", Verdict(255), "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.String(); got != tc.want {
				t.Errorf("%d.String() = %q, want %q", tc.v, got, tc.want)
			}
		})
	}
}
