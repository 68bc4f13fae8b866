package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// maxCaptureBytes bounds what replay reads into memory.
const maxCaptureBytes = 1 << 30

// frame is one packet of a capture file.
type frame struct {
	ci   gopacket.CaptureInfo
	data []byte
}

// captureReader reads the packets of a pcap or pcapng file held in
// memory, in file order. Only Ethernet captures are accepted: the filter
// parses from the Ethernet header.
//
// Decoding is pcapgo's. Its readers trust the lengths in the file (a
// corrupt capture length becomes a multi-gigabyte allocation, a bad
// timestamp resolution a division by zero), so the file's framing is
// checked against its real size first, and a panic left in pcapgo is
// turned into an error rather than a crash.
type captureReader struct {
	src interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	n int // packets read
}

// openCapture checks the file's header (and, for pcapng, its framing) and
// link type.
func openCapture(data []byte) (*captureReader, error) {
	if len(data) < 4 {
		return nil, errors.New("not a capture file: too short")
	}
	c := &captureReader{}
	switch binary.LittleEndian.Uint32(data) {
	case 0x0a0d0d0a:
		if err := checkPcapng(data); err != nil {
			return nil, fmt.Errorf("malformed pcapng file: %w", err)
		}
		var r *pcapgo.NgReader
		err := guard(func() (err error) {
			r, err = pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{ErrorOnMismatchingLinkType: true})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read pcapng file: %w", err)
		}
		c.src = r
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		var r *pcapgo.Reader
		err := guard(func() (err error) {
			r, err = pcapgo.NewReader(bytes.NewReader(data))
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read pcap file: %w", err)
		}
		// No packet can be longer than the file: this bounds the buffer
		// pcapgo allocates, and tolerates headers with a too-small snaplen.
		r.SetSnaplen(uint32(min(len(data), maxCaptureBytes)))
		c.src = r
	default:
		return nil, errors.New("not a pcap or pcapng file (unknown magic number)")
	}
	if lt := c.src.LinkType(); lt != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("capture has link type %s (%d); replay needs Ethernet frames: capture on the interface itself, not on \"any\"",
			lt, uint32(lt))
	}
	return c, nil
}

// next returns the next packet, or io.EOF after the last.
func (c *captureReader) next() (frame, error) {
	var f frame
	err := guard(func() (err error) {
		f.data, f.ci, err = c.src.ReadPacketData()
		return err
	})
	if errors.Is(err, io.EOF) {
		return frame{}, io.EOF
	}
	c.n++
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("file ends inside the packet (truncated capture)")
		}
		return frame{}, fmt.Errorf("packet %d: %w", c.n, err)
	}
	return f, nil
}

// readCapture calls fn for each packet of a capture file in memory and
// stops at the first error.
func readCapture(data []byte, fn func(frame) error) error {
	c, err := openCapture(data)
	if err != nil {
		return err
	}
	return c.each(fn)
}

// each calls fn for each remaining packet and stops at the first error.
func (c *captureReader) each(fn func(frame) error) error {
	for {
		f, err := c.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			return err
		}
	}
}

// guard runs a pcapgo call, turning a panic into an error.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed capture file (decoder panic: %v)", r)
		}
	}()
	return fn()
}

// pcapng block types and options checkPcapng knows (pcapng spec, section 4).
const (
	ngIDB = 1
	ngPB  = 2 // obsolete packet block
	ngSPB = 3
	ngISB = 5
	ngEPB = 6
	ngSHB = 0x0a0d0d0a

	ngOptTSResol  = 9
	ngOptTSOffset = 14
	ngOptFilter   = 11
)

// checkPcapng walks the blocks of a pcapng file and checks that every
// length pcapgo will trust fits inside the file: block lengths, the
// packet lengths inside packet blocks, and the options of section,
// interface and statistics blocks.
func checkPcapng(data []byte) error {
	var bo binary.ByteOrder = binary.LittleEndian
	var snap0 uint32 // snap length of interface 0 of the current section
	interfaces := 0
	for off := 0; off < len(data); {
		rest := data[off:]
		if len(rest) < 12 {
			return fmt.Errorf("block at offset %d: %d bytes left, a block needs at least 12", off, len(rest))
		}
		typ := binary.LittleEndian.Uint32(rest)
		if typ == ngSHB {
			switch {
			case binary.LittleEndian.Uint32(rest[8:]) == 0x1a2b3c4d:
				bo = binary.LittleEndian
			case binary.BigEndian.Uint32(rest[8:]) == 0x1a2b3c4d:
				bo = binary.BigEndian
			default:
				return fmt.Errorf("section at offset %d: bad byte-order magic", off)
			}
			interfaces, snap0 = 0, 0
		} else {
			typ = bo.Uint32(rest)
			if off == 0 {
				return errors.New("file does not start with a section header block")
			}
		}
		length := bo.Uint32(rest[4:])
		if length < 12 || length%4 != 0 || uint64(length) > uint64(len(rest)) {
			return fmt.Errorf("block at offset %d: length %d does not fit (%d bytes left, multiple of 4 needed)", off, length, len(rest))
		}
		block := rest[:length]
		if bo.Uint32(block[length-4:]) != length {
			return fmt.Errorf("block at offset %d: trailing length differs from leading length", off)
		}
		body := block[8 : length-4]
		var err error
		switch typ {
		case ngSHB:
			err = checkOptions(body, 16, bo, false)
		case ngIDB:
			if len(body) >= 8 && interfaces == 0 {
				snap0 = bo.Uint32(body[4:])
			}
			interfaces++
			err = checkOptions(body, 8, bo, true)
		case ngISB:
			err = checkOptions(body, 12, bo, false)
		case ngEPB, ngPB:
			if len(body) < 20 {
				err = errors.New("packet block too short")
			} else if caplen := bo.Uint32(body[12:]); uint64(caplen) > uint64(len(body)-20) {
				err = fmt.Errorf("captured length %d exceeds the block (%d bytes)", caplen, len(body)-20)
			}
		case ngSPB:
			if len(body) < 4 {
				err = errors.New("simple packet block too short")
				break
			}
			caplen := bo.Uint32(body)
			if snap0 != 0 && caplen > snap0 {
				caplen = snap0
			}
			if uint64(caplen) > uint64(len(body)-4) {
				err = fmt.Errorf("simple packet of %d bytes exceeds the block (%d bytes)", caplen, len(body)-4)
			}
		}
		if err != nil {
			return fmt.Errorf("block at offset %d: %w", off, err)
		}
		off += int(length)
	}
	return nil
}

// checkOptions checks the options after a block's fixed part: each fits,
// and the interface options pcapgo reads with a fixed size have it.
func checkOptions(body []byte, fixed int, bo binary.ByteOrder, idb bool) error {
	if len(body) < fixed {
		return fmt.Errorf("block body of %d bytes, needs %d", len(body), fixed)
	}
	opts := body[fixed:]
	for len(opts) >= 4 {
		code, n := bo.Uint16(opts), int(bo.Uint16(opts[2:]))
		if code == 0 {
			return nil
		}
		padded := n + (4-n%4)%4
		if 4+padded > len(opts) {
			return fmt.Errorf("option %d of %d bytes overruns the block", code, n)
		}
		v := opts[4 : 4+n]
		if idb {
			switch code {
			case ngOptTSResol:
				if n != 1 || (v[0]&0x80 == 0 && v[0] > 19) || (v[0]&0x80 != 0 && v[0]&0x7f > 63) {
					return fmt.Errorf("unusable timestamp resolution option")
				}
			case ngOptTSOffset:
				if n != 8 {
					return fmt.Errorf("timestamp offset option of %d bytes, want 8", n)
				}
			case ngOptFilter:
				if n < 1 {
					return fmt.Errorf("empty filter option")
				}
			}
		}
		opts = opts[4+padded:]
	}
	return nil
}
