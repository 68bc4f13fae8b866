// Package server is Rampart's keyless key server: it holds private keys and
// answers the signing and decryption requests of edge clients over the
// Keyless SSL protocol (KEYLESS.md, codec in package keyless).
//
// # What it does
//
// Serve accepts mutually authenticated TLS connections (TLS 1.2 with the
// ECDHE AES-256-GCM suites the established server offers, and TLS 1.3);
// a client must present a certificate that chains to the configured CA,
// and nothing is read from it before the handshake has verified one.
// ServeUnix accepts a local unix socket, plain by default (the peer is
// trusted by file permissions) or TLS when Config.UnixTLS is set.
//
// On each connection one reader goroutine reads frames, one writer
// goroutine writes responses, and requests run on a pool of Workers
// goroutines shared by all connections, so that many requests are in
// flight on one connection and answered in whatever order they finish. A
// connection has at most MaxPendingPerConn requests read but not yet
// answered; when it is full the reader stops reading and TCP pushes back on
// the client. A connection idle for IdleTimeout (UnixIdleTimeout on a unix
// socket) is closed after its outstanding requests finish, for up to
// DrainTimeout. A malformed message closes that connection at once, as the
// established server does; it is counted and logged with the peer's
// certificate identity.
//
// Keys are selected by SKI (keyless.SKIOf) in a key store built from
// directories and files of PEM or DER keys (PKCS#1, PKCS#8, SEC1) and from
// PKCS#11 tokens named by pkcs11: URIs (cgo builds only). Reload builds a
// new store beside the old one and swaps it atomically; connections and
// in-flight requests are not disturbed, and on error the old store keeps
// serving.
//
// # State and goroutines
//
// A Server owns its listeners' connections, its worker pool, its key store
// (swapped whole through an atomic pointer) and its metrics. All exported
// methods may be called from any goroutine. Serve and ServeUnix block until
// Close; Close stops accepting, lets in-flight requests finish for up to
// ShutdownTimeout and then closes every connection.
//
// It must never log key material, payloads or request contexts, never send
// anything but a response to a request the peer sent, and never let one
// connection's bad input disturb another connection.
package server
