package packets

import (
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		want    []gopacket.LayerType
		wantErr string
	}{
		{name: "ipv4 syn with options",
			spec: Spec{Src: Addr("198.18.0.2"), Dst: Addr("198.18.0.1"), Proto: TCP, SrcPort: 1, DstPort: 80, Flags: "S", IPv4Options: 8},
			want: []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeTCP}},
		{name: "qinq ipv6 udp",
			spec: Spec{VLANs: []uint16{10, 20}, Src: Addr("2001:db8::2"), Dst: Addr("2001:db8::1"), Proto: UDP, SrcPort: 4000, DstPort: 443, Payload: []byte("x")},
			want: []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeDot1Q, layers.LayerTypeDot1Q, layers.LayerTypeIPv6, layers.LayerTypeUDP}},
		{name: "icmp", spec: Spec{Src: Addr("198.18.0.2"), Dst: Addr("198.18.0.1"), Proto: ICMP},
			want: []gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeICMPv4}},
		{name: "mixed families", spec: Spec{Src: Addr("198.18.0.2"), Dst: Addr("2001:db8::1"), Proto: TCP}, wantErr: "one family"},
		{name: "bad flag", spec: Spec{Src: Addr("198.18.0.2"), Dst: Addr("198.18.0.1"), Proto: TCP, Flags: "SX"}, wantErr: "unknown TCP flag"},
		{name: "bad options", spec: Spec{Src: Addr("198.18.0.2"), Dst: Addr("198.18.0.1"), Proto: TCP, IPv4Options: 6}, wantErr: "multiple of 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pkt := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
			if el := pkt.ErrorLayer(); el != nil {
				t.Fatalf("frame does not decode: %v", el.Error())
			}
			var got []gopacket.LayerType
			for _, l := range pkt.Layers() {
				if l.LayerType() != gopacket.LayerTypePayload {
					got = append(got, l.LayerType())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("layers %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("layers %v, want %v", got, tc.want)
				}
			}
			if len(tc.spec.VLANs) == 2 && (b[12] != 0x88 || b[13] != 0xa8) {
				t.Errorf("outer tag ethertype %x, want 88a8 (802.1ad)", b[12:14])
			}
		})
	}
}
