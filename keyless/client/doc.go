// Package client is the edge side of the keyless protocol: private keys
// whose operations run on remote key servers (KEYLESS.md), for the TLS
// stage to use as certificates' private keys. Client.PrivateKey gives a
// crypto.Signer (*Signer) for ECDSA and Ed25519 keys and a crypto.Signer
// and crypto.Decrypter (*RSAKey) for RSA keys; SignAsync signs without
// blocking, for event loops.
//
// # What it does
//
// A Client keeps a pool of mutually authenticated TLS connections (TLS
// 1.3, or TLS 1.2 with ECDHE-AES256-GCM) to each configured key server.
// Each connection carries up to MaxInFlightPerConn requests at once,
// matched to their answers by message ID in whatever order they come.
// A request goes to the usable server with the lowest score, its moving
// average round trip (pings and requests) times its load, so the fastest
// server takes the traffic and the others take the overflow and the
// failover. A request whose connection fails is sent once more, on
// another connection; a request that is not answered within
// RequestTimeout fails with ErrTimeout and its late answer is dropped.
//
// Each connection pings on a doubling schedule (PingInterval up to
// PingIntervalMax); a failed ping closes it. Each server has a circuit
// breaker: consecutive failures open it, requests then avoid that server
// (or fail fast with ErrUnavailable when no server is left, instead of
// piling up), and after a cooldown a probe (ping or dial) lets traffic
// back in. A failure to connect is a *DialError; a key server that
// refuses the client certificate gives one that matches ErrRefused.
//
// Signing maps crypto.SignerOpts to the spec's opcodes: the hash (and
// *rsa.PSSOptions for RSA-PSS, salt length equal to the hash) picks the
// opcode of the key's type, and the digest must be that hash's length.
// Decryption returns the raw RSA block from the server and removes the
// PKCS #1 v1.5 padding here, in constant time.
//
// Everything is bounded: ConnsPerServer connections per server,
// MaxInFlightPerConn requests per connection, QueueLen waiting requests
// per server (then ErrOverloaded). Requests are pooled: a SignAsync
// allocates nothing in steady state, a Sign only its result.
//
// # State and goroutines
//
// A Client owns its connections (three goroutines each: writer, reader,
// pinger), one maintainer goroutine per server (dials, probes, drains the
// queue of a server that went down) and a pool of request records. All
// methods of Client, Signer and RSAKey may be called from any goroutine. Sign,
// Decrypt and Do block until the answer or the timeout; SignAsync and
// DoAsync never block: they return at once, and their done function runs
// later on a client goroutine, never the caller's, so a caller that owns
// an event loop must hand the result back to its loop itself (gnet:
// Execute). A done function must return quickly: it runs on the reader
// of a connection and holds up that connection's other answers.
//
// It must never log key material, digests, signatures or payloads, never
// send a request more than twice, and never wait without a bound.
package client
