package client

import (
	"errors"
	"net"
	"strings"
)

// Sentinels a caller branches on: a TLS stage maps each to an alert and a
// metric, tests assert them with errors.Is.
var (
	// ErrTimeout: no answer within Config.RequestTimeout.
	ErrTimeout = errors.New("keyless client: request timed out")
	// ErrUnavailable: no key server is up (all down or their breakers
	// open). The error also wraps each server's last failure, such as a
	// *DialError.
	ErrUnavailable = errors.New("keyless client: no key server available")
	// ErrOverloaded: the pending queues of every usable server are full.
	ErrOverloaded = errors.New("keyless client: request queue full")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("keyless client: closed")
	// ErrRefused: the key server sent a TLS alert while the connection was
	// set up, which in practice means it refused the client certificate.
	ErrRefused = errors.New("keyless client: key server refused the TLS connection")
)

// DialError is a failure to open a connection to a key server.
type DialError struct {
	Server string // Server.Name
	Addr   string
	// Stage is where it failed: "connect", "tls handshake", or "first
	// ping" (where TLS 1.3 learns that the server refused the client
	// certificate, since the client finishes its handshake first).
	Stage string
	Err   error
}

func (e *DialError) Error() string {
	var b strings.Builder
	b.WriteString("keyless client: server ")
	b.WriteString(e.Server)
	b.WriteString(" (")
	b.WriteString(e.Addr)
	b.WriteString("): ")
	b.WriteString(e.Stage)
	b.WriteString(": ")
	if e.Refused() {
		b.WriteString("key server refused the TLS connection (is the client certificate issued by the CA it trusts?): ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Refused reports whether the server sent a TLS alert: it does not accept
// this client (certificate missing, expired, or from another CA) or its
// TLS settings.
func (e *DialError) Refused() bool {
	var op *net.OpError
	return errors.As(e.Err, &op) && op.Op == "remote error"
}

// Unwrap gives the cause, and ErrRefused when the server refused.
func (e *DialError) Unwrap() []error {
	if e.Refused() {
		return []error{ErrRefused, e.Err}
	}
	return []error{e.Err}
}

// unavailableError is ErrUnavailable with each server's last failure.
// It is built when a failure is recorded, not per request, so that
// failing fast during an outage allocates nothing.
type unavailableError struct {
	msg    string
	causes []error
}

func newUnavailable(causes []error) *unavailableError {
	var b strings.Builder
	b.WriteString(ErrUnavailable.Error())
	for _, c := range causes {
		b.WriteString("; ")
		b.WriteString(c.Error())
	}
	return &unavailableError{msg: b.String(), causes: append([]error{ErrUnavailable}, causes...)}
}

func (e *unavailableError) Error() string   { return e.msg }
func (e *unavailableError) Unwrap() []error { return e.causes }

// connError is a connection lost under a request that had no retry left.
type connError struct {
	server string
	err    error
}

func (e *connError) Error() string {
	return "keyless client: connection to server " + e.server + " lost: " + e.err.Error()
}
func (e *connError) Unwrap() error { return e.err }
