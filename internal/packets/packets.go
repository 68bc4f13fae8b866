// Package packets builds Ethernet frames for tests, benchmarks and replay
// fixtures with gopacket: well-formed ones from a Spec, and malformed ones
// by editing the bytes of a well-formed one.
//
// Pure functions; safe from any goroutine.
package packets

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Protocol numbers for Spec.Proto.
const (
	ICMP   = 1
	TCP    = 6
	UDP    = 17
	ICMPv6 = 58
	GRE    = 47
)

// Spec describes one frame. The IP version follows Src and Dst.
type Spec struct {
	// VLANs are the tag IDs, outermost first (at most what the test wants;
	// the outer tag of two uses the 802.1ad ethertype, as QinQ does).
	VLANs   []uint16
	Src     netip.Addr
	Dst     netip.Addr
	Proto   uint8
	SrcPort uint16
	DstPort uint16
	// Flags for TCP: any of "FSRPAUEC" (FIN SYN RST PSH ACK URG ECE CWR).
	Flags   string
	Payload []byte
	// IPv4 fragmentation fields: offset in 8-byte units, and MF.
	FragOffset    uint16
	MoreFragments bool
	// IPv6 extension headers to insert before the upper layer, in order:
	// layers.IPProtocolIPv6HopByHop, ...Destination, ...Routing, ...Fragment.
	IPv6Ext []layers.IPProtocol
	// IPv4Options adds this many bytes of NOP options (a multiple of 4).
	IPv4Options int
}

var (
	srcMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	dstMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x02}
)

// Build serialises the frame with lengths and checksums filled in.
func Build(s Spec) ([]byte, error) {
	if !s.Src.IsValid() || !s.Dst.IsValid() || s.Src.Is4() != s.Dst.Is4() {
		return nil, fmt.Errorf("packets: source %v and destination %v must be valid and of one family", s.Src, s.Dst)
	}
	var ls []gopacket.SerializableLayer
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC}
	ls = append(ls, eth)
	ipType := layers.EthernetTypeIPv4
	if s.Src.Is6() {
		ipType = layers.EthernetTypeIPv6
	}
	switch len(s.VLANs) {
	case 0:
		eth.EthernetType = ipType
	default:
		eth.EthernetType = layers.EthernetTypeDot1Q
		if len(s.VLANs) > 1 {
			eth.EthernetType = layers.EthernetTypeQinQ
		}
		for i, id := range s.VLANs {
			next := layers.EthernetTypeDot1Q
			if i == len(s.VLANs)-1 {
				next = ipType
			}
			ls = append(ls, &layers.Dot1Q{VLANIdentifier: id, Type: next})
		}
	}

	var netLayer gopacket.NetworkLayer
	if s.Src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocol(s.Proto),
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice(), FragOffset: s.FragOffset}
		if s.MoreFragments {
			ip.Flags |= layers.IPv4MoreFragments
		}
		if s.IPv4Options > 0 {
			if s.IPv4Options%4 != 0 || s.IPv4Options > 40 {
				return nil, fmt.Errorf("packets: IPv4 options must be a multiple of 4 up to 40, got %d", s.IPv4Options)
			}
			for range s.IPv4Options - 1 {
				ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1})
			}
			ip.Options = append(ip.Options, layers.IPv4Option{OptionType: 0, OptionLength: 1})
		}
		ls = append(ls, ip)
		netLayer = ip
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(s.Proto),
			SrcIP: s.Src.AsSlice(), DstIP: s.Dst.AsSlice()}
		ls = append(ls, ip)
		netLayer = ip
		if len(s.IPv6Ext) > 0 {
			ip.NextHeader = s.IPv6Ext[0]
			for i, h := range s.IPv6Ext {
				next := layers.IPProtocol(s.Proto)
				if i+1 < len(s.IPv6Ext) {
					next = s.IPv6Ext[i+1]
				}
				ls = append(ls, extHeader(h, next))
			}
		}
	}

	switch s.Proto {
	case TCP:
		t := &layers.TCP{SrcPort: layers.TCPPort(s.SrcPort), DstPort: layers.TCPPort(s.DstPort), Window: 64240, Seq: 1}
		for _, c := range s.Flags {
			switch c {
			case 'F':
				t.FIN = true
			case 'S':
				t.SYN = true
			case 'R':
				t.RST = true
			case 'P':
				t.PSH = true
			case 'A':
				t.ACK = true
			case 'U':
				t.URG = true
			case 'E':
				t.ECE = true
			case 'C':
				t.CWR = true
			default:
				return nil, fmt.Errorf("packets: unknown TCP flag %q in %q", c, s.Flags)
			}
		}
		if err := t.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		ls = append(ls, t)
	case UDP:
		u := &layers.UDP{SrcPort: layers.UDPPort(s.SrcPort), DstPort: layers.UDPPort(s.DstPort)}
		if err := u.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		ls = append(ls, u)
	case ICMP:
		ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1})
	case ICMPv6:
		ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
		if err := ic.SetNetworkLayerForChecksum(netLayer); err != nil {
			return nil, err
		}
		ls = append(ls, ic)
	}
	ls = append(ls, gopacket.Payload(s.Payload))

	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, fmt.Errorf("packets: serialise: %w", err)
	}
	return append([]byte(nil), buf.Bytes()...), nil
}

// extHeader is a minimal IPv6 extension header of the given kind.
func extHeader(kind, next layers.IPProtocol) gopacket.SerializableLayer {
	if kind == layers.IPProtocolIPv6Fragment {
		return gopacket.Payload([]byte{byte(next), 0, 0, 0, 0, 0, 0, 1}) // offset 0, M=0: an atomic fragment
	}
	// Hop-by-hop, destination options, routing: 8 bytes, padded with PadN.
	return gopacket.Payload([]byte{byte(next), 0, 1, 4, 0, 0, 0, 0})
}

// MustBuild is Build for fixtures known to be valid; it panics otherwise.
func MustBuild(s Spec) []byte {
	b, err := Build(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Addr parses an address for fixtures; it panics on a typo.
func Addr(s string) netip.Addr { return netip.MustParseAddr(strings.TrimSpace(s)) }

// L3Offset is where the IP header starts in a frame built with vlans tags.
func L3Offset(vlans int) int { return 14 + 4*vlans }
