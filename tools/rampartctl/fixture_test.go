package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rampart-edge/rampart/internal/packets"
)

var update = flag.Bool("update", false, "rewrite testdata/replay.pcap and testdata/replay.golden")

// fixturePacket is one frame of testdata/replay.pcap with the reason the
// edge-default profile gives it.
type fixturePacket struct {
	name  string
	frame []byte
	want  string
}

var (
	client   = packets.Addr("198.18.0.2")
	edge     = packets.Addr("198.18.0.1")
	attacker = packets.Addr("198.19.66.6") // blocked in the live-state test
)

// fixturePackets covers each kind of verdict replay must show: legitimate
// traffic, non-IP, flag sanity, malformed headers, unserved ports,
// fragments, and a source the live test blocks.
func fixturePackets() []fixturePacket {
	syn := func(src, dst string, port uint16) packets.Spec {
		return packets.Spec{Src: packets.Addr(src), Dst: packets.Addr(dst), Proto: packets.TCP,
			SrcPort: 40000, DstPort: port, Flags: "S"}
	}
	tcp := func(flags string) []byte {
		s := syn("198.18.0.2", "198.18.0.1", 443)
		s.Flags = flags
		return packets.MustBuild(s)
	}
	edit := func(b []byte, fn func([]byte)) []byte {
		b = bytes.Clone(b)
		fn(b)
		return b
	}
	ok := packets.MustBuild(syn("198.18.0.2", "198.18.0.1", 443))
	vlan := syn("198.18.0.2", "198.18.0.1", 443)
	vlan.VLANs = []uint16{100}
	qinq := syn("198.18.0.2", "198.18.0.1", 80)
	qinq.VLANs = []uint16{10, 20}
	frag := packets.Spec{Src: client, Dst: edge, Proto: packets.UDP, SrcPort: 40001, DstPort: 443,
		MoreFragments: true, Payload: make([]byte, 64)}
	return []fixturePacket{
		{"tcp syn to a served port", ok, "pass"},
		{"quic to a served udp port", packets.MustBuild(packets.Spec{Src: client, Dst: edge, Proto: packets.UDP,
			SrcPort: 40001, DstPort: 443, Payload: []byte("quic")}), "pass"},
		{"ipv6 syn", packets.MustBuild(syn("2001:db8::2", "2001:db8::1", 80)), "pass"},
		{"vlan-tagged syn", packets.MustBuild(vlan), "pass"},
		{"qinq syn", packets.MustBuild(qinq), "pass"},
		{"arp request", arpRequest(), "non_ip"},
		{"icmp echo", packets.MustBuild(packets.Spec{Src: client, Dst: edge, Proto: packets.ICMP}), "pass"},
		{"tcp null flags", tcp(""), "tcp_flags"},
		{"tcp xmas", tcp("FPU"), "tcp_flags"},
		{"tcp syn+fin", tcp("FS"), "tcp_flags"},
		{"truncated ipv4 header", ok[:packets.L3Offset(0)+12], "ipv4_truncated"},
		{"ipv4 ihl 4", edit(ok, func(b []byte) { b[14] = 0x44 }), "ipv4_bad_ihl"},
		{"ipv4 total length past the frame", edit(ok, func(b []byte) { b[16], b[17] = 0x05, 0xdc }), "ipv4_bad_length"},
		{"tcp to an unserved port", packets.MustBuild(syn("198.18.0.2", "198.18.0.1", 22)), "not_served"},
		{"dns response to an unserved udp port", packets.MustBuild(packets.Spec{Src: client, Dst: edge,
			Proto: packets.UDP, SrcPort: 53, DstPort: 5000, Payload: make([]byte, 512)}), "not_served"},
		{"ipv4 fragment", packets.MustBuild(frag), "fragment"},
		{"syn from the blocked attacker", packets.MustBuild(syn("198.19.66.6", "198.18.0.1", 443)), "pass"},
	}
}

func arpRequest() []byte {
	buf := gopacket.NewSerializeBuffer()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0x5e, 0, 0, 1}, DstMAC: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
		ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: eth.SrcMAC,
		SourceProtAddress: client.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: edge.AsSlice()}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, arp); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// fixtureEpoch keeps the fixture byte-identical across regenerations.
var fixtureEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// writePcap writes frames as a classic pcap, 1 ms apart.
func writePcap(t testing.TB, frames [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: fixtureEpoch.Add(time.Duration(i) * time.Millisecond),
			CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func fixtureFrames() [][]byte {
	var out [][]byte
	for _, p := range fixturePackets() {
		out = append(out, p.frame)
	}
	return out
}

// TestReplayFixture is the generator of testdata/replay.pcap: with
// -update it rewrites the file, otherwise it checks the committed file is
// what the packets above produce.
func TestReplayFixture(t *testing.T) {
	got := writePcap(t, fixtureFrames())
	path := filepath.Join("testdata", "replay.pcap")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with: go test ./tools/rampartctl -run TestReplay -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: regenerate with go test ./tools/rampartctl -run TestReplay -update", path)
	}
}
