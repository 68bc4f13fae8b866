package xdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf/ringbuf"
)

// Sample is the head of one dropped packet, as the filter sampled it.
type Sample struct {
	Time      time.Time
	Reason    Reason
	Ifindex   uint32
	PacketLen uint32 // length on the wire
	Data      []byte // the first bytes, at most 128
}

// SampleReader reads dropped-packet samples from the ring. The ring has a
// single consumer: two readers split the samples between them.
type SampleReader struct {
	r *ringbuf.Reader
}

// ErrClosed is returned by SampleReader.Read after Close.
var ErrClosed = ringbuf.ErrClosed

// Samples opens the sample ring for reading.
func (m *Maps) Samples() (*SampleReader, error) {
	r, err := ringbuf.NewReader(m.samples)
	if err != nil {
		return nil, fmt.Errorf("open sample ring: %w", err)
	}
	return &SampleReader{r: r}, nil
}

// SetDeadline makes Read return os.ErrDeadlineExceeded after t.
func (s *SampleReader) SetDeadline(t time.Time) { s.r.SetDeadline(t) }

// Read blocks for the next sample.
func (s *SampleReader) Read() (Sample, error) {
	rec, err := s.r.Read()
	if err != nil {
		return Sample{}, err
	}
	var raw filterSample
	if len(rec.RawSample) < binary.Size(raw) {
		return Sample{}, errors.New("short sample record")
	}
	if _, err := binary.Decode(rec.RawSample, binary.NativeEndian, &raw); err != nil {
		return Sample{}, fmt.Errorf("decode sample: %w", err)
	}
	n := min(int(raw.CapturedLen), len(raw.Data))
	return Sample{
		Time:      monoWall(raw.TimestampNs),
		Reason:    Reason(raw.Reason),
		Ifindex:   raw.Ifindex,
		PacketLen: raw.PacketLen,
		Data:      append([]byte(nil), raw.Data[:n]...),
	}, nil
}

// Close stops the reader; a blocked Read returns ErrClosed.
func (s *SampleReader) Close() error { return s.r.Close() }
