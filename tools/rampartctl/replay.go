package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/profiles"
	"github.com/rampart-edge/rampart/xdp"
)

// replayCapacity sizes the replay filter's private maps: its own rate
// state and a token sample ring (nobody reads its samples).
var replayCapacity = xdp.Capacity{RateSources: 65536, SampleRingBytes: 4096}

func (a *app) newReplayCmd() *cobra.Command {
	var (
		asJSON  bool
		profile string
	)
	cmd := &cobra.Command{
		Use:   "replay FILE [--profile NAME|FILE] [--json]",
		Short: "Run every packet of a pcap or pcapng file through the XDP filter and print verdicts",
		Long: `replay loads a private copy of the XDP program and runs each Ethernet frame
of the capture through it with BPF_PROG_TEST_RUN, printing the verdict,
the reason and a short summary of each packet, then a count per reason.

By default the copy shares the live filter's lists, services and settings
(pinned under /sys/fs/bpf/rampart/IFACE) but has its own counters and rate
buckets: replaying touches nothing live. With --profile it runs offline
against a profile instead (no blocklist, no attack mode), with no daemon.

Packets run back to back, so rate limits see the replay's pace, not the
capture's timestamps. A packet captured shorter than it was on the wire is
judged on the captured bytes.`,
		Example: "  rampartctl replay suspicious.pcap\n" +
			"  rampartctl replay tools/rampartctl/testdata/replay.pcap --profile edge-default\n" +
			"  rampartctl replay flood.pcapng --json | jq -r 'select(.type==\"packet\") | .reason'",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readCaptureFile(args[0])
			if err != nil {
				return err
			}
			capture, err := openCapture(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			f, against, err := a.loadReplayFilter(cmd, profile)
			if err != nil {
				return err
			}
			defer f.Close()
			return replay(cmd.OutOrStdout(), f, args[0], against, capture, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines: one per packet, then a summary")
	cmd.Flags().StringVar(&profile, "profile", "",
		"replay offline against this profile (embedded name or file) instead of the live filter state")
	return cmd
}

func readCaptureFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open capture: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCaptureBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read capture: %w", err)
	}
	if len(data) > maxCaptureBytes {
		return nil, fmt.Errorf("capture %s is larger than %d MiB: cut it first (editcap -c)", path, maxCaptureBytes>>20)
	}
	return data, nil
}

// loadReplayFilter loads the private copy of the filter: observing the
// pinned state, or configured from a profile. against says which, for
// the output.
func (a *app) loadReplayFilter(cmd *cobra.Command, profile string) (f *xdp.Filter, against string, err error) {
	log := logger(cmd)
	if profile != "" {
		spec, err := profiles.Load(profile)
		if err != nil {
			return nil, "", err
		}
		c := spec.XDP.Capacity
		c.RateSources, c.SampleRingBytes = replayCapacity.RateSources, replayCapacity.SampleRingBytes
		f, err := xdp.Load(xdp.LoadOptions{Capacity: c, Logger: log})
		if err != nil {
			return nil, "", err
		}
		if err := f.Configure(spec.XDP); err != nil {
			f.Close()
			return nil, "", fmt.Errorf("configure replay filter: %w", err)
		}
		return f, fmt.Sprintf("profile %s (offline: no runtime block/allow entries or attack mode)", spec.Name), nil
	}
	dir, iface, err := a.resolvePinDir()
	if err != nil {
		if errors.Is(err, errNoState) {
			return nil, "", fmt.Errorf("%w; to replay without a running filter, pass --profile NAME|FILE (e.g. --profile %s)",
				err, profiles.DefaultName)
		}
		return nil, "", err
	}
	f, err = xdp.Load(xdp.LoadOptions{PinDir: dir, Observe: true, Capacity: replayCapacity, Logger: log})
	if err != nil {
		return nil, "", err
	}
	return f, fmt.Sprintf("the live lists, services and settings of %s (%s); private counters and rate state", iface, dir), nil
}

// runner is what replay needs of a filter: *xdp.Filter.
type runner interface {
	Run(frame []byte) (xdp.Reason, error)
}

// packetResult is one line of replay output.
type packetResult struct {
	Type     string    `json:"type"` // "packet"
	Packet   int       `json:"packet"`
	Time     time.Time `json:"time"`
	Length   int       `json:"length"`
	Captured int       `json:"captured"`
	Verdict  string    `json:"verdict"` // pass, drop, or error
	Reason   string    `json:"reason,omitempty"`
	Error    string    `json:"error,omitempty"`
	Summary  string    `json:"summary"`
}

type replaySummary struct {
	Type    string            `json:"type"` // "summary"
	File    string            `json:"file"`
	Against string            `json:"against"`
	Packets int               `json:"packets"`
	Passed  int               `json:"passed"`
	Dropped int               `json:"dropped"`
	Errors  int               `json:"errors"`
	Reasons map[string]uint64 `json:"reasons"`
}

// ethHeaderLen is the shortest frame BPF_PROG_TEST_RUN accepts for XDP.
const ethHeaderLen = 14

func replay(w io.Writer, f runner, file, against string, capture *captureReader, asJSON bool) error {
	sum := replaySummary{Type: "summary", File: file, Against: against, Reasons: map[string]uint64{}}
	counts := make([]uint64, len(xdp.Reasons()))
	enc := json.NewEncoder(w)
	if !asJSON {
		fmt.Fprintf(w, "replaying %s against %s\n\n", file, against)
		fmt.Fprintf(w, "%6s  %-7s  %-18s  %s\n", "#", "VERDICT", "REASON", "PACKET")
	}
	readErr := capture.each(func(fr frame) error {
		sum.Packets++
		res := packetResult{Type: "packet", Packet: sum.Packets, Time: fr.ci.Timestamp.UTC(),
			Length: fr.ci.Length, Captured: len(fr.data), Summary: summarize(fr.data)}
		if len(fr.data) < fr.ci.Length {
			res.Summary += fmt.Sprintf(" [captured %d of %d bytes]", len(fr.data), fr.ci.Length)
		}
		reason, err := runFrame(f, fr.data)
		if err != nil {
			res.Verdict, res.Error = "error", err.Error()
			sum.Errors++
		} else {
			res.Verdict, res.Reason = reason.Verdict(), reason.String()
			if int(reason) < len(counts) {
				counts[reason]++
			}
			sum.Reasons[reason.String()]++
			if reason.Dropped() {
				sum.Dropped++
			} else {
				sum.Passed++
			}
		}
		if asJSON {
			return enc.Encode(res)
		}
		reasonText := res.Reason
		if res.Error != "" {
			reasonText = "-"
			res.Summary += " (" + res.Error + ")"
		}
		_, err = fmt.Fprintf(w, "%6d  %-7s  %-18s  %s\n", res.Packet, res.Verdict, reasonText, res.Summary)
		return err
	})
	if asJSON {
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "\n%-18s  %-7s  %s\n", "REASON", "VERDICT", "PACKETS")
		for i, n := range counts {
			if n > 0 {
				r := xdp.Reason(i)
				fmt.Fprintf(w, "%-18s  %-7s  %d\n", r, r.Verdict(), n)
			}
		}
		if sum.Errors > 0 {
			fmt.Fprintf(w, "%-18s  %-7s  %d\n", "-", "error", sum.Errors)
		}
		fmt.Fprintf(w, "total: %d packets, %d passed, %d dropped, %d not run\n", sum.Packets, sum.Passed, sum.Dropped, sum.Errors)
	}
	if readErr != nil {
		return fmt.Errorf("%s: %w", file, readErr)
	}
	return nil
}

// runFrame runs one frame, explaining the frames the kernel's test run
// refuses instead of passing on a bare EINVAL.
func runFrame(f runner, data []byte) (xdp.Reason, error) {
	if len(data) < ethHeaderLen {
		return 0, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header; the kernel test run needs %d",
			len(data), ethHeaderLen)
	}
	r, err := f.Run(data)
	if err != nil && len(data) > 3000 {
		return 0, fmt.Errorf("frame of %d bytes may exceed what BPF_PROG_TEST_RUN takes in one page: %w", len(data), err)
	}
	return r, err
}

// summarize describes a frame in one line: addresses, protocol, ports,
// TCP flags, VLAN tags, fragments, and where decoding stopped.
func summarize(data []byte) string {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var parts []string
	for _, l := range p.Layers() {
		if v, ok := l.(*layers.Dot1Q); ok {
			parts = append(parts, fmt.Sprintf("vlan %d", v.VLANIdentifier))
		}
	}
	var src, dst netip.Addr
	var frag string
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			frag = fmt.Sprintf(" fragment offset %d", int(ip.FragOffset)*8)
			if ip.Flags&layers.IPv4MoreFragments != 0 {
				frag += " +more"
			}
		}
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	}
	if arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		s, _ := netip.AddrFromSlice(arp.SourceProtAddress)
		d, _ := netip.AddrFromSlice(arp.DstProtAddress)
		op := "request"
		if arp.Operation == layers.ARPReply {
			op = "reply"
		}
		parts = append(parts, fmt.Sprintf("arp %s %s → %s", op, s, d))
	}
	switch t := p.TransportLayer().(type) {
	case *layers.TCP:
		parts = append(parts, fmt.Sprintf("%s → %s tcp [%s]",
			netip.AddrPortFrom(src, uint16(t.SrcPort)), netip.AddrPortFrom(dst, uint16(t.DstPort)), tcpFlags(t)))
	case *layers.UDP:
		parts = append(parts, fmt.Sprintf("%s → %s udp",
			netip.AddrPortFrom(src, uint16(t.SrcPort)), netip.AddrPortFrom(dst, uint16(t.DstPort))))
	default:
		if src.IsValid() {
			proto := ""
			switch ip := p.NetworkLayer().(type) {
			case *layers.IPv4:
				proto = strings.ToLower(ip.Protocol.String())
			case *layers.IPv6:
				proto = strings.ToLower(ip.NextHeader.String())
			}
			if l := p.Layer(layers.LayerTypeICMPv4); l != nil {
				proto = "icmp " + l.(*layers.ICMPv4).TypeCode.String()
			} else if l := p.Layer(layers.LayerTypeICMPv6); l != nil {
				proto = "icmpv6 " + l.(*layers.ICMPv6).TypeCode.String()
			}
			parts = append(parts, fmt.Sprintf("%s → %s %s", src, dst, proto))
		}
	}
	if !src.IsValid() && p.Layer(layers.LayerTypeARP) == nil {
		if eth, ok := p.LinkLayer().(*layers.Ethernet); ok {
			parts = append(parts, fmt.Sprintf("ethertype %s", eth.EthernetType))
		}
	}
	s := strings.Join(parts, " ") + frag
	if e := p.ErrorLayer(); e != nil {
		s += " (undecodable: " + e.Error().Error() + ")"
	}
	if s == "" {
		s = fmt.Sprintf("%d bytes", len(data))
	}
	return s
}

// tcpFlags names the set flags in the order FSRPAUEC, as the fixtures
// write them; "none" for a null scan.
func tcpFlags(t *layers.TCP) string {
	var b strings.Builder
	for _, f := range []struct {
		on bool
		c  byte
	}{{t.FIN, 'F'}, {t.SYN, 'S'}, {t.RST, 'R'}, {t.PSH, 'P'}, {t.ACK, 'A'}, {t.URG, 'U'}, {t.ECE, 'E'}, {t.CWR, 'C'}} {
		if f.on {
			b.WriteByte(f.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}
