package server

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rampart-edge/rampart/keyless"
)

var errTooManyFiles = syscall.EMFILE

// conn is one client connection after its handshake. Its reader goroutine
// (serve) reads and dispatches requests; its writer goroutine (writeLoop)
// writes responses in the order they complete; workers run the key
// operations between the two.
type conn struct {
	s      *Server
	nc     net.Conn // the tls.Conn, or raw on a plain unix socket
	raw    net.Conn // the accepted socket, for closing without ceremony
	r      io.Reader
	kind   string // listenerTCP or listenerUnix
	idle   time.Duration
	peer   []slog.Attr // identity for logs
	logger *slog.Logger

	// slots is the per-connection semaphore of pending requests: a
	// request holds one from before it is read until its response is
	// written (or dropped).
	slots chan struct{}
	// out carries finished responses to the writer. Its capacity equals
	// the number of slots, so a worker never blocks sending to it.
	out chan *request

	pending    atomic.Int64
	readerDone chan struct{}
	writerDone chan struct{}
	stopping   atomic.Bool // Close asked the reader to stop
	broken     atomic.Bool // a write failed; responses are dropped
}

// request is one message in flight: its raw bytes (which the decoded
// Message aliases), then its encoded response.
type request struct {
	c     *conn
	buf   *[]byte
	msg   keyless.Message
	start time.Time
	resp  *[]byte
	op    keyless.Op
	code  keyless.ErrCode
}

// bufPool holds message buffers of poolBufCap bytes: every padded message
// of up to this size (all pings and signatures in practice) reuses one.
const poolBufCap = 2048

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, poolBufCap); return &b }}

func getBuf(n int) *[]byte {
	if n > poolBufCap {
		b := make([]byte, 0, n)
		return &b
	}
	return bufPool.Get().(*[]byte)
}

func putBuf(b *[]byte) {
	if b == nil || cap(*b) != poolBufCap {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// handle runs one accepted connection: the handshake, then the reader
// loop, then an orderly close.
func (s *Server) handle(nc net.Conn, kind string, tc *tls.Config, idle time.Duration) {
	defer s.connWG.Done()
	raw := nc
	nc, peer, err := s.handshake(raw, kind, tc)
	s.mu.Lock()
	delete(s.raw, raw)
	s.mu.Unlock()
	if err != nil {
		raw.Close()
		return
	}
	c := &conn{
		s:          s,
		nc:         nc,
		raw:        raw,
		r:          nc,
		kind:       kind,
		idle:       idle,
		peer:       peer,
		slots:      make(chan struct{}, s.cfg.MaxPendingPerConn),
		out:        make(chan *request, s.cfg.MaxPendingPerConn),
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	if tc == nil {
		// Plain sockets get a read buffer; a tls.Conn already has one.
		c.r = bufio.NewReaderSize(nc, 16<<10)
	}
	c.logger = s.logger.With(attrsAny(peer)...)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		raw.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1) // the writer
	s.mu.Unlock()
	s.m.connections.WithLabelValues(kind).Inc()
	defer s.m.connections.WithLabelValues(kind).Dec()

	go c.writeLoop()
	reason := c.readLoop()
	close(c.readerDone)

	// Let requests already read finish: for an idle connection, as the
	// established server does, and on shutdown. Anything else (EOF, a
	// malformed message) closes at once.
	var wait time.Duration
	switch reason {
	case "idle":
		wait = s.cfg.DrainTimeout
	case "shutdown":
		wait = s.cfg.ShutdownTimeout
	}
	if wait > 0 && c.pending.Load() > 0 {
		t := time.NewTimer(wait)
		select {
		case <-c.writerDone:
		case <-t.C:
		}
		t.Stop()
	}
	nc.Close()
	s.m.closed.WithLabelValues(kind, reason).Inc()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if reason != "eof" && reason != "shutdown" {
		c.logger.Debug("connection closed", slog.String("reason", reason))
	}
}

// handshake runs the TLS handshake, if any, and returns the peer's
// identity for logs. A failure is counted and logged (rate-limited:
// anyone can cause one).
func (s *Server) handshake(nc net.Conn, kind string, tc *tls.Config) (net.Conn, []slog.Attr, error) {
	addr := slog.String("peer_addr", nc.RemoteAddr().String())
	if tc == nil {
		return nc, append(unixPeer(nc), addr), nil
	}
	tlsConn := tls.Server(nc, tc)
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	err := tlsConn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		reason := handshakeReason(err)
		s.m.handshakeFails.WithLabelValues(kind, reason).Inc()
		if s.limit.allow() {
			s.logger.Warn("tls handshake failed", addr, slog.String("listener", kind),
				slog.String("reason", reason), slog.Any("err", err))
		}
		return nil, nil, err
	}
	return tlsConn, tlsPeer(tlsConn.ConnectionState(), addr), nil
}

func handshakeReason(err error) string {
	var cve *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &cve):
		return "bad_certificate"
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return "no_certificate"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "eof"
	}
	return "other"
}

// tlsPeer names the peer by its verified certificate: subject, serial and
// SHA-256 fingerprint prefix.
func tlsPeer(cs tls.ConnectionState, addr slog.Attr) []slog.Attr {
	attrs := []slog.Attr{addr}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		fp := sha256.Sum256(leaf.Raw)
		attrs = append(attrs,
			slog.String("peer_cert", leaf.Subject.String()),
			slog.String("peer_cert_serial", leaf.SerialNumber.Text(16)),
			slog.String("peer_cert_sha256", hex.EncodeToString(fp[:8])))
	}
	return attrs
}

func attrsAny(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// stopReading makes the reader stop at its next message boundary (or
// now, if it is waiting for one): used by Close.
func (c *conn) stopReading() {
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

// readLoop reads and dispatches requests until the connection ends, and
// says why: eof, idle, malformed, read_error or shutdown.
func (c *conn) readLoop() string {
	s := c.s
	hdr := make([]byte, keyless.HeaderLen)
	for {
		// Take a slot before reading: with MaxPendingPerConn requests
		// pending the reader stops, and TCP pushes back on the client.
		select {
		case c.slots <- struct{}{}:
		default:
			s.m.backpressure.Inc()
			select {
			case c.slots <- struct{}{}:
			case <-s.done:
				return "shutdown"
			}
		}
		c.pending.Add(1)

		c.nc.SetReadDeadline(time.Now().Add(c.idle))
		if c.stopping.Load() {
			c.dropSlot()
			return "shutdown"
		}
		if _, err := io.ReadFull(c.r, hdr); err != nil {
			c.dropSlot()
			return c.readErrReason(err, false)
		}
		n, _ := keyless.Frame(hdr)
		buf := getBuf(n)
		*buf = append((*buf)[:0], hdr...)
		*buf = (*buf)[:n]
		if _, err := io.ReadFull(c.r, (*buf)[keyless.HeaderLen:]); err != nil {
			putBuf(buf)
			c.dropSlot()
			return c.readErrReason(err, true)
		}
		s.m.pending.Inc()
		r := &request{c: c, buf: buf, start: time.Now()}
		if err := r.msg.Decode(*buf); err != nil {
			s.m.pending.Dec()
			putBuf(buf)
			c.dropSlot()
			c.malformed(err)
			return "malformed"
		}
		r.op = r.msg.Op
		if code, ok := nonKeyResult(r.op); ok {
			// Ping and the opcodes this server does not offer need no
			// worker: answer them from here.
			r.finish(r.msg.Payload, code)
			continue
		}
		s.jobs <- r
	}
}

// readErrReason classifies a read error. A timeout is idleness, unless
// Close asked the reader to stop; a clean EOF between messages is the
// peer closing; anything else (a truncated message included) is a read
// error.
func (c *conn) readErrReason(err error, midMessage bool) string {
	var ne net.Error
	switch {
	case c.stopping.Load():
		return "shutdown"
	case c.broken.Load():
		return "write_error"
	case errors.As(err, &ne) && ne.Timeout():
		return "idle"
	case !midMessage && errors.Is(err, io.EOF):
		return "eof"
	}
	if midMessage || errors.Is(err, io.ErrUnexpectedEOF) {
		c.s.m.malformed.WithLabelValues("truncated").Inc()
		c.logger.Warn("malformed message; closing connection", slog.String("reason", "truncated"), slog.Any("err", err))
		return "malformed"
	}
	return "read_error"
}

// malformed counts and logs a message that failed to parse. The
// connection is closed right after, as the established server does.
func (c *conn) malformed(err error) {
	reason := "other"
	var pe *keyless.ParseError
	if errors.As(err, &pe) {
		reason = pe.Reason.String()
	}
	c.s.m.malformed.WithLabelValues(reason).Inc()
	c.logger.Warn("malformed message; closing connection", slog.String("reason", reason), slog.Any("err", err))
}

// dropSlot gives back a slot taken for a message that was not read.
func (c *conn) dropSlot() {
	<-c.slots
	c.pending.Add(-1)
}

// worker runs key operations until Close.
func (s *Server) worker() {
	defer s.workersWG.Done()
	for r := range s.jobs {
		s.process(r)
	}
}

func (s *Server) process(r *request) {
	st := s.acquireStore()
	k, code := lookup(st, r.msg.SKI)
	var out []byte
	if code == keyless.ErrNone {
		kind, hash := classify(r.op)
		t := time.Now()
		out, code = perform(k, kind, hash, r.msg.Payload)
		s.m.opDuration.WithLabelValues(opLabel(r.op)).Observe(time.Since(t).Seconds())
	}
	st.release()
	if s.logger.Enabled(context.Background(), slog.LevelDebug) {
		r.c.logger.Debug("request", slog.String("op", r.op.String()), slog.String("ski", r.msg.SKI.String()),
			slog.String("sni", string(r.msg.SNI)), slog.String("result", resultLabel(code)))
	}
	r.finish(out, code)
}

// finish encodes the response to r (result on success, else the error
// code) and hands it to the connection's writer. It never blocks.
func (r *request) finish(result []byte, code keyless.ErrCode) {
	resp := getBuf(keyless.HeaderLen + len(result) + 16)
	switch {
	case code != keyless.ErrNone:
		*resp = keyless.AppendError((*resp)[:0], r.msg.ID, code)
	default:
		op := keyless.OpResponse
		if r.op == keyless.OpPing {
			op = keyless.OpPong
		}
		m := keyless.Message{ID: r.msg.ID, Op: op, Payload: result}
		var err error
		if *resp, err = keyless.AppendMessage((*resp)[:0], &m); err != nil {
			code = keyless.ErrInternal
			*resp = keyless.AppendError((*resp)[:0], r.msg.ID, code)
		}
	}
	r.code = code
	putBuf(r.buf) // the request's bytes (and result, if it aliased them) are no longer needed
	r.buf = nil
	r.msg = keyless.Message{}
	r.resp = resp
	r.c.s.m.requestDuration.WithLabelValues(opLabel(r.op)).Observe(time.Since(r.start).Seconds())
	r.c.out <- r
}

// writeLoop writes responses as they come, coalescing those ready
// together into one write, until the reader is done and every pending
// request has been answered. After a write error it keeps consuming (and
// dropping) responses, so that workers and the reader never block.
func (c *conn) writeLoop() {
	s := c.s
	defer s.connWG.Done()
	defer close(c.writerDone)
	w := bufio.NewWriterSize(c.nc, 32<<10)
	readerDone := c.readerDone
	for {
		if readerDone == nil && c.pending.Load() == 0 {
			return
		}
		var r *request
		select {
		case r = <-c.out:
		case <-readerDone:
			readerDone = nil // from now on, only wait for what is pending
			continue
		}
		if !c.broken.Load() {
			c.nc.SetWriteDeadline(time.Now().Add(c.idle))
			_, err := w.Write(*r.resp)
			if err == nil && len(c.out) == 0 {
				err = w.Flush()
			}
			if err != nil {
				c.writeFailed(err)
			}
		}
		s.m.requests.WithLabelValues(opLabel(r.op), resultLabel(r.code)).Inc()
		putBuf(r.resp)
		r.resp = nil
		<-c.slots
		c.pending.Add(-1)
		s.m.pending.Dec()
	}
}

// writeFailed marks the connection broken and closes it, so the reader
// stops too.
func (c *conn) writeFailed(err error) {
	if c.broken.Swap(true) {
		return
	}
	if !c.stopping.Load() {
		c.logger.Debug("write failed; closing connection", slog.Any("err", err))
	}
	c.nc.Close()
}
