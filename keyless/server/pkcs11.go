//go:build cgo

package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"

	"github.com/rampart-edge/rampart/keyless"
)

// PKCS#11 3.0 values that github.com/miekg/pkcs11 v1.1.2 does not name.
const (
	ckkECEdwards = 0x40   // CKK_EC_EDWARDS
	ckmEdDSA     = 0x1057 // CKM_EDDSA
)

// PKCS11Available reports whether this build can serve keys from PKCS#11
// tokens. It needs cgo (the module is loaded with dlopen).
func PKCS11Available() bool { return true }

// A PKCS#11 module is initialised once per process (C_Initialize), so
// loaded modules are shared by every Server in the process and counted;
// the last user finalises it. This is the package's only global state.
var p11Registry = struct {
	sync.Mutex
	mods map[string]*p11Module
}{mods: make(map[string]*p11Module)}

type p11Module struct {
	ctx  *pkcs11.Ctx
	refs int
}

// pkcs11Modules is one Server's use of PKCS#11: the modules it acquired
// and how many sessions each token source opens (one per worker, since a
// session runs one operation at a time).
type pkcs11Modules struct {
	logger   *slog.Logger
	sessions int

	mu   sync.Mutex
	held map[string]bool
}

func newPKCS11Modules(logger *slog.Logger, sessions int) *pkcs11Modules {
	return &pkcs11Modules{logger: logger, sessions: max(sessions, 1), held: make(map[string]bool)}
}

// module returns the initialised module at path, loading it on first use.
func (p *pkcs11Modules) module(path string) (*pkcs11.Ctx, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p11Registry.Lock()
	defer p11Registry.Unlock()
	if m := p11Registry.mods[path]; m != nil {
		if !p.held[path] {
			m.refs++
			p.held[path] = true
		}
		return m.ctx, nil
	}
	ctx := pkcs11.New(path)
	if ctx == nil {
		return nil, fmt.Errorf("cannot load PKCS#11 module %s", path)
	}
	if err := ctx.Initialize(); err != nil && !isP11Error(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("initialise PKCS#11 module %s: %w", path, err)
	}
	p11Registry.mods[path] = &p11Module{ctx: ctx, refs: 1}
	p.held[path] = true
	return ctx, nil
}

// close releases this server's modules, finalising those nobody else uses.
func (p *pkcs11Modules) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p11Registry.Lock()
	defer p11Registry.Unlock()
	for path := range p.held {
		m := p11Registry.mods[path]
		delete(p.held, path)
		if m == nil {
			continue
		}
		if m.refs--; m.refs == 0 {
			m.ctx.Finalize()
			m.ctx.Destroy()
			delete(p11Registry.mods, path)
		}
	}
}

func isP11Error(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// load opens sessions on the token src names, logs in, and returns its
// private keys; the closer closes the sessions.
func (p *pkcs11Modules) load(src string) ([]*Key, func(), error) {
	u, err := parsePKCS11URI(src)
	if err != nil {
		return nil, nil, fmt.Errorf("key store %s: %w", redactPKCS11(src), err)
	}
	fail := func(err error) ([]*Key, func(), error) {
		return nil, nil, fmt.Errorf("pkcs11 key store %s: %w", u.redacted, err)
	}
	ctx, err := p.module(u.modulePath)
	if err != nil {
		return fail(err)
	}
	slot, err := findSlot(ctx, u)
	if err != nil {
		return fail(err)
	}
	pool, err := openSessions(ctx, slot, p.sessions, u)
	if err != nil {
		return fail(err)
	}
	keys, err := p.findKeys(pool, u)
	if err != nil {
		pool.close()
		return fail(err)
	}
	return keys, pool.close, nil
}

func findSlot(ctx *pkcs11.Ctx, u *pkcs11URI) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w", err)
	}
	trim := func(s string) string { return strings.TrimRight(s, " \x00") }
	for _, s := range slots {
		if u.slotID != nil && *u.slotID != s {
			continue
		}
		ti, err := ctx.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if (u.token == "" || trim(ti.Label) == u.token) &&
			(u.manufacturer == "" || trim(ti.ManufacturerID) == u.manufacturer) &&
			(u.serial == "" || trim(ti.SerialNumber) == u.serial) &&
			(u.model == "" || trim(ti.Model) == u.model) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no token matches (%d slots with a token)", len(slots))
}

// sessionPool holds a token's open sessions. A session runs one operation
// at a time, so each key operation takes one and gives it back.
type sessionPool struct {
	ctx  *pkcs11.Ctx
	ch   chan pkcs11.SessionHandle
	all  []pkcs11.SessionHandle
	once sync.Once
}

func openSessions(ctx *pkcs11.Ctx, slot uint, n int, u *pkcs11URI) (*sessionPool, error) {
	sp := &sessionPool{ctx: ctx, ch: make(chan pkcs11.SessionHandle, n)}
	for range n {
		s, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			sp.close()
			return nil, fmt.Errorf("open session: %w", err)
		}
		sp.all = append(sp.all, s)
		sp.ch <- s
	}
	if u.hasPIN {
		// Login state belongs to the application, not the session: one
		// login serves every session, and a reload finds it logged in.
		if err := ctx.Login(sp.all[0], pkcs11.CKU_USER, u.pin); err != nil && !isP11Error(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
			sp.close()
			return nil, fmt.Errorf("login: %w", err)
		}
	}
	return sp, nil
}

func (sp *sessionPool) get() pkcs11.SessionHandle  { return <-sp.ch }
func (sp *sessionPool) put(s pkcs11.SessionHandle) { sp.ch <- s }

// close closes every session; the key store calls it once no request
// uses the keys any more.
func (sp *sessionPool) close() {
	sp.once.Do(func() {
		for _, s := range sp.all {
			sp.ctx.CloseSession(s)
		}
	})
}

func findObjects(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := ctx.FindObjectsInit(s, tmpl); err != nil {
		return nil, err
	}
	var out []pkcs11.ObjectHandle
	for {
		hs, _, err := ctx.FindObjects(s, 64)
		if err != nil {
			ctx.FindObjectsFinal(s)
			return nil, err
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	return out, ctx.FindObjectsFinal(s)
}

func (p *pkcs11Modules) findKeys(pool *sessionPool, u *pkcs11URI) ([]*Key, error) {
	ctx := pool.ctx
	s := pool.get()
	defer pool.put(s)
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if u.object != "" {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, u.object))
	}
	if u.id != nil {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, u.id))
	}
	handles, err := findObjects(ctx, s, tmpl)
	if err != nil {
		return nil, fmt.Errorf("find keys: %w", err)
	}
	var keys []*Key
	for _, h := range handles {
		attrs, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("key attributes: %w", err)
		}
		keyType := bytesToUint(attrs[0].Value)
		id, label := attrs[1].Value, string(attrs[2].Value)
		source := fmt.Sprintf("%s (object %q, id %x)", u.redacted, label, id)
		pub, err := publicKeyOf(ctx, s, h, keyType, id)
		if err != nil {
			p.logger.Warn("pkcs11 key skipped", slog.String("source", source), slog.Any("err", err))
			continue
		}
		ski, err := keyless.SKIOf(pub)
		if err != nil {
			p.logger.Warn("pkcs11 key skipped", slog.String("source", source), slog.Any("err", err))
			continue
		}
		pk := &p11Key{pool: pool, handle: h, pub: pub}
		k := &Key{SKI: ski, Public: pub, Source: source, signer: pk}
		if _, ok := pub.(*rsa.PublicKey); ok {
			k.decrypt = pk.decrypt
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		hint := ""
		if !u.hasPIN {
			hint = " (no pin-value or pin-source: private keys are usually visible only after login)"
		}
		return nil, fmt.Errorf("no usable private key matches%s", hint)
	}
	return keys, nil
}

func bytesToUint(b []byte) uint {
	// CK_ULONG in host byte order, as the module wrote it.
	var v uint
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint(b[i])
	}
	return v
}

var curves = map[string]func() elliptic.Curve{
	"P-224": elliptic.P224, "P-256": elliptic.P256, "P-384": elliptic.P384, "P-521": elliptic.P521,
}

var curveOIDs = map[string]string{
	"1.3.132.0.33":        "P-224",
	"1.2.840.10045.3.1.7": "P-256",
	"1.3.132.0.34":        "P-384",
	"1.3.132.0.35":        "P-521",
}

// publicKeyOf reads the public half of private key h: from the private
// key object (RSA), from the public key object with the same CKA_ID (EC,
// Ed25519), or from a certificate with that ID.
func publicKeyOf(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle, keyType uint, id []byte) (crypto.PublicKey, error) {
	switch keyType {
	case pkcs11.CKK_RSA:
		a, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil),
		})
		if err == nil {
			e := new(big.Int).SetBytes(a[1].Value)
			if !e.IsInt64() || e.Int64() > 1<<31-1 {
				return nil, errors.New("RSA public exponent too large")
			}
			return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0].Value), E: int(e.Int64())}, nil
		}
	case pkcs11.CKK_EC, ckkECEdwards:
		pubs, err := findObjects(ctx, s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		})
		if err == nil && len(pubs) > 0 {
			a, err := ctx.GetAttributeValue(s, pubs[0], []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
				pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
			})
			if err != nil {
				return nil, fmt.Errorf("public key attributes: %w", err)
			}
			return ecPublicKey(keyType, a[0].Value, a[1].Value)
		}
	default:
		return nil, fmt.Errorf("key type %#x is not RSA, EC or EdDSA", keyType)
	}
	// No readable public key: a certificate with the same ID will do.
	certs, err := findObjects(ctx, s, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
	})
	if err != nil || len(certs) == 0 {
		return nil, errors.New("no public key or certificate with the same CKA_ID")
	}
	a, err := ctx.GetAttributeValue(s, certs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(a[0].Value)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return cert.PublicKey, nil
}

// ecPublicKey decodes CKA_EC_PARAMS (a curve OID, or for Ed25519 the OID
// 1.3.101.112 or the printable string "edwards25519") and CKA_EC_POINT
// (a DER OCTET STRING holding the point, or the raw point).
func ecPublicKey(keyType uint, params, point []byte) (crypto.PublicKey, error) {
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 {
		raw = point
	}
	if keyType == ckkECEdwards {
		if len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("EdDSA point of %d bytes: only Ed25519 is supported", len(raw))
		}
		return ed25519.PublicKey(raw), nil
	}
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return nil, fmt.Errorf("EC parameters: %w", err)
	}
	name, ok := curveOIDs[oid.String()]
	if !ok {
		return nil, fmt.Errorf("curve %s is not supported", oid)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curves[name](), raw)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

// p11Key signs and decrypts with a private key on a token. Sign takes the
// same options as the standard library's keys, so perform treats both
// alike.
type p11Key struct {
	pool   *sessionPool
	handle pkcs11.ObjectHandle
	pub    crypto.PublicKey
}

func (k *p11Key) Public() crypto.PublicKey { return k.pub }

// Sign signs digest (the whole message for Ed25519): PKCS#1 v1.5 with the
// DigestInfo added here (none for MD5-SHA1), PSS when opts is
// *rsa.PSSOptions, ECDSA returning DER, or pure EdDSA.
func (k *p11Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	var mech *pkcs11.Mechanism
	data := digest
	switch k.pub.(type) {
	case *rsa.PublicKey:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			hashMech, mgf, ok := pssMechanisms(pss.Hash)
			if !ok {
				return nil, fmt.Errorf("PSS with %v is not supported", pss.Hash)
			}
			salt := pss.SaltLength
			if salt == rsa.PSSSaltLengthEqualsHash {
				salt = pss.Hash.Size()
			}
			if salt <= 0 {
				return nil, errors.New("PSS salt length must be explicit")
			}
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(hashMech, mgf, uint(salt)))
		} else {
			prefix, ok := digestInfoPrefixes[opts.HashFunc()]
			if !ok {
				return nil, fmt.Errorf("PKCS#1 v1.5 with %v is not supported", opts.HashFunc())
			}
			if len(digest) != opts.HashFunc().Size() {
				return nil, errors.New("digest length does not match the hash")
			}
			data = append(append(make([]byte, 0, len(prefix)+len(digest)), prefix...), digest...)
			mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		}
	case *ecdsa.PublicKey:
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	case ed25519.PublicKey:
		mech = pkcs11.NewMechanism(ckmEdDSA, nil)
	default:
		return nil, fmt.Errorf("unsupported key type %T", k.pub)
	}
	sig, err := k.run(func(s pkcs11.SessionHandle) ([]byte, error) {
		if err := k.pool.ctx.SignInit(s, []*pkcs11.Mechanism{mech}, k.handle); err != nil {
			return nil, err
		}
		return k.pool.ctx.Sign(s, data)
	})
	if err != nil {
		return nil, err
	}
	if _, ok := k.pub.(*ecdsa.PublicKey); ok {
		// The token returns r || s; TLS and the protocol want DER.
		if len(sig)%2 != 0 || len(sig) == 0 {
			return nil, errors.New("ECDSA signature of odd length")
		}
		n := len(sig) / 2
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])})
	}
	return sig, nil
}

// decrypt is the raw RSA private operation (CKM_RSA_X_509), with the
// result left-padded to the modulus length as for software keys.
func (k *p11Key) decrypt(ciphertext []byte) ([]byte, error) {
	size := k.pub.(*rsa.PublicKey).Size()
	for len(ciphertext) > 0 && ciphertext[0] == 0 {
		ciphertext = ciphertext[1:]
	}
	if len(ciphertext) > size {
		return nil, errDecrypt
	}
	in := make([]byte, size)
	copy(in[size-len(ciphertext):], ciphertext)
	out, err := k.run(func(s pkcs11.SessionHandle) ([]byte, error) {
		if err := k.pool.ctx.DecryptInit(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}, k.handle); err != nil {
			return nil, err
		}
		return k.pool.ctx.Decrypt(s, in)
	})
	if err != nil || len(out) > size {
		return nil, errDecrypt
	}
	padded := make([]byte, size)
	copy(padded[size-len(out):], out)
	return padded, nil
}

func (k *p11Key) run(op func(pkcs11.SessionHandle) ([]byte, error)) ([]byte, error) {
	s := k.pool.get()
	defer k.pool.put(s)
	return op(s)
}

func pssMechanisms(h crypto.Hash) (hashMech, mgf uint, ok bool) {
	switch h {
	case crypto.SHA256:
		return pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, true
	case crypto.SHA384:
		return pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, true
	case crypto.SHA512:
		return pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, true
	}
	return 0, 0, false
}

// digestInfoPrefixes are the DER DigestInfo headers PKCS#1 v1.5 puts
// before a digest (RFC 8017 §9.2, note 1). CKM_RSA_PKCS signs what it is
// given, so the header is added here; MD5-SHA1 (TLS 1.0/1.1) has none.
var digestInfoPrefixes = map[crypto.Hash][]byte{
	crypto.MD5SHA1: {},
	crypto.SHA1:    {0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14},
	crypto.SHA224:  {0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c},
	crypto.SHA256:  {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384:  {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512:  {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}
