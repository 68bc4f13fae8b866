package main

import (
	"context"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
	"github.com/spf13/cobra"

	"github.com/rampart-edge/rampart/xdp"
)

// snapLen is how many bytes of a dropped packet the filter samples
// (SAMPLE_BYTES in xdp/include/consts.h).
const snapLen = 128

func (a *app) newDropsCmd() *cobra.Command {
	var (
		out, format string
		count       int
		timeout     time.Duration
		skipBacklog bool
	)
	cmd := &cobra.Command{
		Use:   "drops --pcap FILE [--count N] [--timeout D] [--format pcap|pcapng]",
		Short: "Write sampled dropped packets to a capture file, with the reason of each",
		Long: `drops reads the filter's sample ring (1 in sample_every drops per reason and
CPU, the first 128 bytes of each) and writes the packets to a capture file
that tcpdump and Wireshark open, until --count samples, --timeout, or ^C.

The reason of every packet goes to FILE.reasons.csv (packet number, time,
reason, original length), which is also printed. With --format pcapng
(the default for a .pcapng file name) each packet also carries its reason
as a packet comment: in Wireshark, frame.comment contains "tcp_flags".

The ring has a single reader: run one drops at a time. Samples taken
while nobody reads wait in the ring (the oldest first); --skip-backlog
discards those taken before the command started.`,
		Example: "  rampartctl drops --pcap drops.pcap --count 100 --timeout 30s\n" +
			"  tcpdump -nr drops.pcap\n" +
			"  rampartctl drops --pcap drops.pcapng --timeout 1m",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("format") && strings.HasSuffix(out, ".pcapng") {
				format = "pcapng"
			}
			if format != "pcap" && format != "pcapng" {
				return fmt.Errorf(`invalid --format %q: want "pcap" or "pcapng"`, format)
			}
			if count < 0 || timeout < 0 {
				return errors.New("--count and --timeout must not be negative (0: no limit)")
			}
			m, iface, err := a.openMaps()
			if err != nil {
				return err
			}
			defer m.Close()
			if s, err := m.Settings(); err == nil && s.SampleEvery == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning: drop sampling is off (sample_every: 0 in the profile); only samples already in the ring will be written")
			}
			ring, err := m.Samples()
			if err != nil {
				return err
			}
			defer ring.Close()
			return captureDrops(cmd.Context(), ring, dropsOptions{
				path: out, format: format, iface: iface, count: count, timeout: timeout,
				skipBacklog: skipBacklog, stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(),
			})
		},
	}
	cmd.Flags().StringVar(&out, "pcap", "", "capture file to write (required)")
	cmd.Flags().StringVar(&format, "format", "pcap", `"pcap" (reasons in a side table) or "pcapng" (also in packet comments)`)
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many samples (0: no limit)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "stop after this long (0: until ^C)")
	cmd.Flags().BoolVar(&skipBacklog, "skip-backlog", false, "discard samples taken before the command started")
	_ = cmd.MarkFlagRequired("pcap")
	return cmd
}

type dropsOptions struct {
	path, format, iface string
	count               int
	timeout             time.Duration
	skipBacklog         bool
	stdout, stderr      io.Writer
}

// sampleSource is what captureDrops reads: an *xdp.SampleReader.
type sampleSource interface {
	Read() (xdp.Sample, error)
	Close() error
}

// captureDrops copies samples from the ring to the capture file and the
// reasons table until the count, the timeout or ctx ends it.
func captureDrops(ctx context.Context, ring sampleSource, o dropsOptions) (err error) {
	start := time.Now()
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	// Closing the reader is the only way to wake a blocked Read.
	stop := context.AfterFunc(ctx, func() { ring.Close() })
	defer stop()

	f, err := os.Create(o.path)
	if err != nil {
		return fmt.Errorf("create capture file: %w", err)
	}
	defer func() {
		if e := f.Close(); e != nil && err == nil {
			err = fmt.Errorf("write %s: %w", o.path, e)
		}
	}()
	cw, err := newCaptureWriter(f, o.format, o.iface)
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	csvPath := o.path + ".reasons.csv"
	cf, err := os.Create(csvPath)
	if err != nil {
		return fmt.Errorf("create reasons table: %w", err)
	}
	defer func() {
		if e := cf.Close(); e != nil && err == nil {
			err = fmt.Errorf("write %s: %w", csvPath, e)
		}
	}()
	table := csv.NewWriter(io.MultiWriter(cf, o.stdout))
	header := []string{"packet", "time", "reason", "length"}
	if err := table.Write(header); err != nil {
		return err
	}
	table.Flush()

	n, skipped := 0, 0
	for o.count == 0 || n < o.count {
		s, err := ring.Read()
		if errors.Is(err, xdp.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return fmt.Errorf("read sample ring: %w", err)
		}
		if o.skipBacklog && s.Time.Before(start) {
			skipped++
			continue
		}
		n++
		if err := cw.write(s); err != nil {
			return fmt.Errorf("write %s: %w", o.path, err)
		}
		// Flushed per packet: samples are rare, and a reader of the file
		// (or a kill) should see every one already counted.
		if err := table.Write([]string{strconv.Itoa(n), s.Time.UTC().Format(time.RFC3339Nano),
			s.Reason.String(), strconv.FormatUint(uint64(s.PacketLen), 10)}); err != nil {
			return err
		}
		table.Flush()
		if err := table.Error(); err != nil {
			return fmt.Errorf("write reasons table: %w", err)
		}
	}
	fmt.Fprintf(o.stderr, "wrote %d sampled drops to %s (%s), reasons in %s", n, o.path, o.format, csvPath)
	if skipped > 0 {
		fmt.Fprintf(o.stderr, "; skipped %d older samples", skipped)
	}
	fmt.Fprintln(o.stderr)
	return nil
}

// captureWriter writes one sample as one packet record.
type captureWriter interface {
	write(xdp.Sample) error
}

func newCaptureWriter(w io.Writer, format, iface string) (captureWriter, error) {
	if format == "pcapng" {
		return newNgCommentWriter(w, iface)
	}
	pw := pcapgo.NewWriter(w)
	if err := pw.WriteFileHeader(snapLen, layers.LinkTypeEthernet); err != nil {
		return nil, err
	}
	return pcapWriter{pw}, nil
}

type pcapWriter struct{ w *pcapgo.Writer }

func (p pcapWriter) write(s xdp.Sample) error { return p.w.WritePacket(captureInfo(s), s.Data) }

func captureInfo(s xdp.Sample) gopacket.CaptureInfo {
	return gopacket.CaptureInfo{
		Timestamp:     s.Time,
		CaptureLength: len(s.Data),
		Length:        max(int(s.PacketLen), len(s.Data)),
	}
}

// ngCommentWriter writes pcapng with the reason as each packet's
// opt_comment. pcapgo's NgWriter writes the section and interface blocks,
// but its WritePacket takes no per-packet options, so the enhanced packet
// blocks are encoded here (pcapng spec section 4.3, little endian like
// the header NgWriter wrote).
type ngCommentWriter struct {
	w   io.Writer
	buf []byte
}

func newNgCommentWriter(w io.Writer, iface string) (*ngCommentWriter, error) {
	ng, err := pcapgo.NewNgWriterInterface(w, pcapgo.NgInterface{
		Name:                iface,
		Description:         "rampart xdp drop samples",
		LinkType:            layers.LinkTypeEthernet,
		SnapLength:          snapLen,
		TimestampResolution: 9,
	}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: "rampartctl drops"}})
	if err != nil {
		return nil, err
	}
	if err := ng.Flush(); err != nil {
		return nil, err
	}
	return &ngCommentWriter{w: w}, nil
}

func (n *ngCommentWriter) write(s xdp.Sample) error {
	comment := "rampart drop reason=" + s.Reason.String()
	n.buf = appendEPB(n.buf[:0], captureInfo(s), s.Data, comment)
	_, err := n.w.Write(n.buf)
	return err
}

// appendEPB encodes one enhanced packet block on interface 0 with an
// opt_comment, timestamps in nanoseconds (the interface's if_tsresol 9).
func appendEPB(b []byte, ci gopacket.CaptureInfo, data []byte, comment string) []byte {
	const (
		blockEPB     = 6
		optComment   = 1
		optEndOfOpts = 0
	)
	pad := func(n int) int { return (4 - n&3) & 3 }
	comment = comment[:min(len(comment), 0xffff)]
	total := 28 + len(data) + pad(len(data)) + 4 + len(comment) + pad(len(comment)) + 4 + 4
	le := binary.LittleEndian
	ts := uint64(ci.Timestamp.UnixNano())
	b = le.AppendUint32(b, blockEPB)
	b = le.AppendUint32(b, uint32(total))
	b = le.AppendUint32(b, 0) // interface 0
	b = le.AppendUint32(b, uint32(ts>>32))
	b = le.AppendUint32(b, uint32(ts))
	b = le.AppendUint32(b, uint32(len(data)))
	b = le.AppendUint32(b, uint32(ci.Length))
	b = append(b, data...)
	b = append(b, make([]byte, pad(len(data)))...)
	b = le.AppendUint16(b, optComment)
	b = le.AppendUint16(b, uint16(len(comment)))
	b = append(b, comment...)
	b = append(b, make([]byte, pad(len(comment)))...)
	b = le.AppendUint16(b, optEndOfOpts)
	b = le.AppendUint16(b, 0)
	return le.AppendUint32(b, uint32(total))
}
