package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rampart-edge/rampart/xdp"
)

// ngBytes writes frames as pcapng: with pcapgo's own packet blocks, or
// with the comment-carrying blocks drops writes.
func ngBytes(t testing.TB, frames [][]byte, comments bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	if comments {
		w, err := newNgCommentWriter(&buf, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		for i, fr := range frames {
			if err := w.write(xdp.Sample{Time: fixtureEpoch.Add(time.Duration(i) * time.Millisecond),
				Reason: xdp.ReasonTCPFlags, PacketLen: uint32(len(fr)), Data: fr}); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		ci := gopacket.CaptureInfo{Timestamp: fixtureEpoch.Add(time.Duration(i) * time.Millisecond),
			CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadCapture(t *testing.T) {
	frames := fixtureFrames()[:3]
	pcap := writePcap(t, frames)
	ng := ngBytes(t, frames, false)
	ngc := ngBytes(t, frames, true)

	var sll bytes.Buffer
	w := pcapgo.NewWriter(&sll)
	if err := w.WriteFileHeader(65535, layers.LinkTypeLinuxSLL); err != nil {
		t.Fatal(err)
	}
	hugeCaplen := bytes.Clone(pcap)
	binary.LittleEndian.PutUint32(hugeCaplen[24+8:], 0xfffffff0) // first record's captured length
	binary.LittleEndian.PutUint32(hugeCaplen[24+12:], 0xfffffff0)
	badResol := ngWithIDBOption(t, 9, []byte{0x7f})
	epbOver := bytes.Clone(ngc)
	epbOver[bytes.Index(epbOver, []byte{6, 0, 0, 0})+20] = 0xff // caplen past the block

	tests := []struct {
		name    string
		data    []byte
		want    int
		wantErr string
	}{
		{name: "pcap", data: pcap, want: 3},
		{name: "pcapng by pcapgo", data: ng, want: 3},
		{name: "pcapng with comments", data: ngc, want: 3},
		{name: "pcap cut inside a packet", data: pcap[:len(pcap)-5], want: 2, wantErr: "packet 3: file ends inside the packet"},
		{name: "pcapng cut", data: ng[:len(ng)-5], wantErr: "malformed pcapng file"},
		{name: "linux cooked", data: sll.Bytes(), wantErr: "link type"},
		{name: "text", data: []byte("GET / HTTP/1.1\r\n"), wantErr: "not a pcap or pcapng file"},
		{name: "empty", data: nil, wantErr: "too short"},
		{name: "huge captured length", data: hugeCaplen, wantErr: "packet 1"},
		{name: "bad timestamp resolution", data: badResol, wantErr: "timestamp resolution"},
		{name: "packet longer than its block", data: epbOver, wantErr: "exceeds the block"},
		{name: "pcapng without section header", data: ng[28:], wantErr: "not a pcap or pcapng file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got [][]byte
			err := readCapture(tc.data, func(f frame) error {
				got = append(got, f.data)
				return nil
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Fatalf("%d frames, want %d", len(got), tc.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], frames[i]) {
					t.Errorf("frame %d differs", i)
				}
			}
		})
	}
}

// ngWithIDBOption is a pcapng header whose interface block carries one
// option, then one packet.
func ngWithIDBOption(t testing.TB, code uint16, value []byte) []byte {
	t.Helper()
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint32(b, ngSHB)
	b = le.AppendUint32(b, 28)
	b = le.AppendUint32(b, 0x1a2b3c4d)
	b = le.AppendUint16(b, 1)
	b = le.AppendUint16(b, 0)
	b = le.AppendUint64(b, ^uint64(0))
	b = le.AppendUint32(b, 28)
	pad := (4 - len(value)%4) % 4
	idbLen := 20 + 4 + len(value) + pad + 4
	b = le.AppendUint32(b, ngIDB)
	b = le.AppendUint32(b, uint32(idbLen))
	b = le.AppendUint16(b, uint16(layers.LinkTypeEthernet))
	b = le.AppendUint16(b, 0)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint16(b, code)
	b = le.AppendUint16(b, uint16(len(value)))
	b = append(b, value...)
	b = append(b, make([]byte, pad)...)
	b = le.AppendUint32(b, 0)
	b = le.AppendUint32(b, uint32(idbLen))
	return appendEPB(b, gopacket.CaptureInfo{Timestamp: fixtureEpoch, CaptureLength: 60, Length: 60}, make([]byte, 60), "x")
}

func TestSummarize(t *testing.T) {
	want := []string{
		"198.18.0.2:40000 → 198.18.0.1:443 tcp [S]",
		"198.18.0.2:40001 → 198.18.0.1:443 udp",
		"[2001:db8::2]:40000 → [2001:db8::1]:80 tcp [S]",
		"vlan 100 198.18.0.2:40000 → 198.18.0.1:443 tcp [S]",
		"vlan 10 vlan 20 198.18.0.2:40000 → 198.18.0.1:80 tcp [S]",
		"arp request 198.18.0.2 → 198.18.0.1",
		"198.18.0.2 → 198.18.0.1 icmp EchoRequest",
		"198.18.0.2:40000 → 198.18.0.1:443 tcp [none]",
		"198.18.0.2:40000 → 198.18.0.1:443 tcp [FPU]",
		"198.18.0.2:40000 → 198.18.0.1:443 tcp [FS]",
		"ethertype IPv4 (undecodable: Invalid ip4 header. Length 12 less than 20)",
	}
	for i, p := range fixturePackets()[:len(want)] {
		t.Run(p.name, func(t *testing.T) {
			if got := summarize(p.frame); got != want[i] {
				t.Errorf("summarize = %q, want %q", got, want[i])
			}
		})
	}
	if got := summarize([]byte{1, 2, 3}); got == "" {
		t.Error("empty summary for a runt")
	}
}

// FuzzReplayPcap feeds arbitrary bytes to the capture reader replay
// uses: it must not panic or allocate beyond the input, every frame it
// hands out must be consistent, and reading is deterministic.
func FuzzReplayPcap(f *testing.F) {
	frames := fixtureFrames()[:4]
	for _, seed := range [][]byte{
		writePcap(f, frames), ngBytes(f, frames, false), ngBytes(f, frames, true),
		ngWithIDBOption(f, 9, []byte{6}), writePcap(f, nil), []byte("\n\r\r\n"),
	} {
		f.Add(seed)
		f.Add(seed[:len(seed)*2/3])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func() ([]frame, error) {
			var out []frame
			err := readCapture(data, func(fr frame) error {
				out = append(out, fr)
				return nil
			})
			return out, err
		}
		got, err := read()
		if err != nil && strings.Contains(err.Error(), "decoder panic") {
			t.Fatalf("checkPcapng let through what pcapgo panics on: %v", err)
		}
		total := 0
		for i, fr := range got {
			total += len(fr.data)
			if fr.ci.CaptureLength != len(fr.data) || len(fr.data) > len(data) {
				t.Fatalf("frame %d: capture length %d, %d bytes, input %d", i, fr.ci.CaptureLength, len(fr.data), len(data))
			}
		}
		if total > len(data) {
			t.Fatalf("frames hold %d bytes, more than the %d of the input", total, len(data))
		}
		again, err2 := read()
		if (err == nil) != (err2 == nil) || len(again) != len(got) {
			t.Fatalf("not deterministic: %d frames, %v then %d frames, %v", len(got), err, len(again), err2)
		}
		for i := range got {
			if !bytes.Equal(got[i].data, again[i].data) {
				t.Fatalf("frame %d differs between reads", i)
			}
		}
	})
}

// FuzzParsePrefix checks parsePrefix and parseAddr: an error or a valid,
// masked prefix that parses back to itself.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"198.51.100.0/24", "198.51.100.7", "2001:db8::/32", "::ffff:1.2.3.4/120",
		"10.1.2.3/8", "fe80::1%eth0", "", "0.0.0.0/0", "::/0", "1.2.3.4/33"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePrefix(s)
		if err != nil {
			if p.IsValid() {
				t.Fatalf("error %v with a result %v", err, p)
			}
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("parsePrefix(%q) = %v: not a valid canonical prefix", s, p)
		}
		back, err := parsePrefix(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q: %v -> %v, %v", s, p, back, err)
		}
		if a, err := parseAddr(s); err == nil && (netipPrefixFromAddr(a) != p) {
			t.Fatalf("address %q parsed as %v but as prefix %v", s, a, p)
		}
	})
}

// TestFuzzCorpus keeps testdata/fuzz in step with the seeds: -update
// writes the corpus files, otherwise their presence is checked.
func TestFuzzCorpus(t *testing.T) {
	frames := fixtureFrames()[:4]
	corpus := map[string][]byte{
		"FuzzReplayPcap/pcap":           writePcap(t, frames),
		"FuzzReplayPcap/pcapng":         ngBytes(t, frames, false),
		"FuzzReplayPcap/pcapng-comment": ngBytes(t, frames, true),
		"FuzzReplayPcap/pcap-truncated": writePcap(t, frames)[:100],
		"FuzzReplayPcap/idb-tsresol":    ngWithIDBOption(t, 9, []byte{0x85}),
	}
	strs := map[string]string{
		"FuzzParsePrefix/v4":        "198.51.100.0/24",
		"FuzzParsePrefix/v6-mapped": "::ffff:198.51.100.0/120",
		"FuzzParsePrefix/host-bits": "2001:db8::1/32",
	}
	for name, data := range corpus {
		checkCorpusFile(t, name, fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(data))))
	}
	for name, s := range strs {
		checkCorpusFile(t, name, fmt.Sprintf("go test fuzz v1\nstring(%s)\n", strconv.Quote(s)))
	}
}

func checkCorpusFile(t *testing.T, name, content string) {
	path := filepath.Join("testdata", "fuzz", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("fuzz corpus: %v (go test -run TestFuzzCorpus -update writes it)", err)
	}
}

func netipPrefixFromAddr(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
