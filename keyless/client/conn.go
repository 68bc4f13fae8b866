package client

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampart-edge/rampart/keyless"
)

// conn is one mTLS connection to a key server with its three goroutines:
// the writer takes calls from the server's queue (or its own direct
// channel, for pings) whenever it has a free slot, encodes them into one
// buffer and writes them in one go; the reader matches answers to slots
// by ID, in any order; the pinger checks health on a backoff schedule.
//
// A request's ID is (sequence << slotBits) | slot, so matching an answer
// is an array index and a compare. A slot stays taken until its answer
// comes or the connection dies, even when the request timed out: the
// server is still working on it, and this is what bounds the work in
// flight per connection.
type conn struct {
	srv  *server
	nc   net.Conn
	log  *slog.Logger
	born time.Time

	slots    []slot
	slotBits uint
	free     chan uint32 // free slot indexes
	direct   chan *call  // pings for this connection

	dead      atomic.Bool   // set by the reader before it reclaims slots
	deadCh    chan struct{} // closed after the reclaim
	closeOnce sync.Once
	cause     error // why it was closed; written once inside closeOnce

	pingSeq uint64 // pinger only
	seq     uint32 // writer only
}

type slot struct {
	id   atomic.Uint32
	call atomic.Pointer[call]
}

// writeBatchBytes ends a batch: about four TLS records of requests.
const writeBatchBytes = 64 << 10

func newConn(s *server, nc net.Conn) *conn {
	n := s.cl.cfg.MaxInFlightPerConn
	cn := &conn{
		srv: s, nc: nc, log: s.log, born: time.Now(),
		slots:    make([]slot, n+pingSlots),
		slotBits: uint(bits.Len(uint(n + pingSlots - 1))),
		free:     make(chan uint32, n),
		direct:   make(chan *call, pingSlots),
		deadCh:   make(chan struct{}),
	}
	for i := range n {
		cn.free <- uint32(i)
	}
	return cn
}

func (cn *conn) start(wg *sync.WaitGroup) {
	wg.Add(3)
	go func() { defer wg.Done(); cn.readLoop() }()
	go func() { defer wg.Done(); cn.writeLoop() }()
	go func() { defer wg.Done(); cn.pingLoop() }()
}

// fail closes the connection for the reason err (the first reason
// wins); the reader then reclaims its requests.
func (cn *conn) fail(err error) {
	cn.closeOnce.Do(func() {
		cn.cause = err
		cn.nc.Close()
	})
}

func (cn *conn) writeLoop() {
	cl := cn.srv.cl
	var (
		buf      = make([]byte, 0, writeBatchBytes+keyless.MaxMessageLen)
		idx      int // a free request slot, when haveSlot
		haveSlot bool
	)
	for {
		// Wait for work: a ping at any time, a request when a slot is
		// free.
		var c *call
		if haveSlot {
			select {
			case c = <-cn.direct:
			case c = <-cn.srv.queue:
			case <-cn.deadCh:
				return
			}
		} else {
			select {
			case i := <-cn.free:
				idx, haveSlot = int(i), true
				continue
			case c = <-cn.direct:
			case <-cn.deadCh:
				return
			}
		}
		// Then batch whatever else is ready, without waiting.
		buf = buf[:0]
		now := cl.now()
		for c != nil {
			if c.pinned != nil {
				buf, _ = cn.put(buf, c, cn.pingSlot(), now)
			} else {
				var used bool
				if buf, used = cn.put(buf, c, idx, now); used {
					haveSlot = false
				}
			}
			c = nil
			if len(buf) >= writeBatchBytes {
				break
			}
			if !haveSlot {
				select {
				case i := <-cn.free:
					idx, haveSlot = int(i), true
				default:
				}
			}
			if haveSlot {
				select {
				case c = <-cn.direct:
				case c = <-cn.srv.queue:
				default:
				}
			} else {
				select {
				case c = <-cn.direct:
				default:
				}
			}
		}
		if len(buf) == 0 {
			continue
		}
		cn.nc.SetWriteDeadline(time.Now().Add(cl.cfg.WriteTimeout))
		if _, err := cn.nc.Write(buf); err != nil {
			cn.fail(fmt.Errorf("write: %w", err))
			<-cn.deadCh
			return
		}
	}
}

// pingSlots are reserved at the end of the slot table, so that a ping
// goes out even when every request slot is taken: a busy server is not a
// dead one. Two suffice: the pinger and the maintainer's probe each wait
// for their ping, and a ping that fails closes the connection.
const pingSlots = 2

// pingSlot is a free reserved slot, or -1.
func (cn *conn) pingSlot() int {
	n := len(cn.slots)
	for i := n - pingSlots; i < n; i++ {
		if cn.slots[i].call.Load() == nil {
			return i
		}
	}
	return -1
}

// put encodes c into buf and publishes it in slot idx; used reports
// whether the slot is now taken. A call that timed out while it waited is
// dropped, unsent.
func (cn *conn) put(buf []byte, c *call, idx int, now int64) (_ []byte, used bool) {
	cl := cn.srv.cl
	if c.isDone() {
		cn.srv.leave(c)
		c.release()
		return buf, false
	}
	if idx < 0 {
		c.finish(nil, errPingBusy, resultProtocol)
		c.release()
		return buf, false
	}
	cn.seq++
	id := cn.seq<<cn.slotBits | uint32(idx)
	m := keyless.Message{ID: id, Op: c.op, SKI: c.ski, Payload: c.payload}
	buf, err := keyless.AppendMessage(buf, &m)
	if err != nil {
		// Submit checks sizes, so this is a bug; fail the call.
		cn.srv.leave(c)
		c.finish(nil, err, resultProtocol)
		c.release()
		return buf, false
	}
	c.attempts++
	c.sent.Store(now)
	sl := &cn.slots[idx]
	sl.id.Store(id)
	sl.call.Store(c)
	if cn.dead.Load() {
		// The reader may have reclaimed the slots before this
		// publication: take it back if it is still there.
		if sl.call.CompareAndSwap(c, nil) {
			cn.srv.leave(c)
			cl.retry(c, cn.srv, net.ErrClosed)
		}
	}
	return buf, true
}

var errPingBusy = errors.New("keyless client: both ping slots of the connection are in use")

func (cn *conn) readLoop() {
	cn.fail(cn.read())
	err := cn.cause
	cn.dead.Store(true)
	s := cn.srv
	if !s.cl.closing.Load() {
		s.br.failure()
		s.lastFailure(err)
		s.log.Warn("connection lost", slog.Any("err", err), slog.Duration("age", time.Since(cn.born)))
	}
	for i := range cn.slots {
		if c := cn.slots[i].call.Swap(nil); c != nil {
			s.leave(c)
			s.cl.retry(c, s, err)
		}
	}
	close(cn.deadCh)
	s.connGone(cn)
}

func (cn *conn) read() error {
	cl := cn.srv.cl
	br := bufio.NewReaderSize(cn.nc, keyless.MaxMessageLen)
	var m keyless.Message
	for {
		hdr, err := br.Peek(keyless.HeaderLen)
		if err != nil {
			return err
		}
		n, _ := keyless.Frame(hdr)
		msg, err := br.Peek(n)
		if err != nil {
			return err
		}
		if err := m.Decode(msg); err != nil {
			return err
		}
		sl := &cn.slots[m.ID&(1<<cn.slotBits-1)]
		c := sl.call.Load()
		if c == nil || sl.id.Load() != m.ID || !sl.call.CompareAndSwap(c, nil) {
			// Unknown ID: the established client drops these silently.
			br.Discard(n)
			continue
		}
		if i := m.ID & (1<<cn.slotBits - 1); int(i) < len(cn.slots)-pingSlots {
			cn.free <- i
		}
		cn.srv.leave(c)
		rtt := time.Duration(cl.now() - c.sent.Load())
		err = m.Err()
		result := resultOK
		switch {
		case err == nil && c.op == keyless.OpPing:
			if m.Op != keyless.OpPong || !bytes.Equal(m.Payload, c.payload) {
				err, result = errBadPong, resultProtocol
			}
		case err == nil && m.Op != keyless.OpResponse:
			err, result = errors.New("keyless client: answer with opcode "+m.Op.String()), resultProtocol
		case err != nil:
			if _, ok := err.(*keyless.RemoteError); ok {
				result = resultRemoteError
			} else {
				result = resultProtocol
			}
		}
		if result == resultProtocol {
			c.finish(nil, err, result)
			c.release()
			return err
		}
		cn.srv.observe(rtt)
		cn.srv.br.success() // an answer, even an error code: the server works
		c.finish(m.Payload, err, result)
		c.release()
		br.Discard(n)
	}
}

var errBadPong = errors.New("keyless client: pong payload differs from the ping")

// ping sends one ping on this connection and waits for the pong.
func (cn *conn) ping() (time.Duration, error) {
	cn.pingSeq++
	var p [8]byte
	binary.BigEndian.PutUint64(p[:], cn.pingSeq)
	cl := cn.srv.cl
	start := time.Now()
	c, err := cl.submit(keyless.OpPing, keyless.SKI{}, p[:], nil, cn, cl.cfg.PingTimeout)
	if err != nil {
		return 0, err
	}
	_, err = cl.wait(c, false)
	return time.Since(start), err
}

func (cn *conn) pingLoop() {
	cfg := &cn.srv.cl.cfg
	interval := cfg.PingInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-cn.deadCh:
			return
		}
		if _, err := cn.ping(); err != nil {
			cn.fail(fmt.Errorf("health ping: %w", err))
			return
		}
		cn.srv.br.success()
		if age := cn.oldestInFlight(); age > cn.srv.cl.abandonAfter {
			cn.fail(fmt.Errorf("a request has had no answer for %v", age.Round(time.Millisecond)))
			return
		}
		interval = min(2*interval, cfg.PingIntervalMax)
		t.Reset(interval)
	}
}

// oldestInFlight is the age of the oldest request still in a slot. A key
// server that lost a request would otherwise hold its slot forever.
func (cn *conn) oldestInFlight() time.Duration {
	cl := cn.srv.cl
	now := cl.now()
	var oldest int64
	for i := range cn.slots {
		if c := cn.slots[i].call.Load(); c != nil {
			if sent := c.sent.Load(); sent != 0 && now-sent > oldest {
				oldest = now - sent
			}
		}
	}
	return time.Duration(oldest)
}
