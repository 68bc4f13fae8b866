package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	cryptorand "crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/rampart-edge/rampart/keyless"
)

// Signer is the private half of one key that lives on the key servers:
// a crypto.Signer for RSA, ECDSA and Ed25519 keys, which selects the key
// by SKI. It is safe for concurrent use. For a certificate's PrivateKey
// in crypto/tls use Client.PrivateKey, which adds decryption for RSA.
type Signer struct {
	cl   *Client
	pub  crypto.PublicKey
	ski  keyless.SKI
	kind keyKind
	size int // RSA modulus length in bytes
}

// RSAKey is the Signer of an RSA key that is also a crypto.Decrypter,
// for TLS 1.2's RSA key exchange. Only RSA keys may be Decrypters:
// crypto/tls refuses a certificate key that implements crypto.Decrypter
// with any other public key type.
type RSAKey struct {
	*Signer
}

type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindECDSA
	kindEd25519
)

// Signer returns the signer of the key whose public half is pub, usually
// a certificate's PublicKey. Whether a key server has the key shows on
// the first request (a *keyless.RemoteError with ErrKeyNotFound).
func (cl *Client) Signer(pub crypto.PublicKey) (*Signer, error) {
	ski, err := keyless.SKIOf(pub)
	if err != nil {
		return nil, err
	}
	s := &Signer{cl: cl, pub: pub, ski: ski}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		s.kind, s.size = kindRSA, k.Size()
	case *ecdsa.PublicKey:
		s.kind = kindECDSA
	case ed25519.PublicKey:
		s.kind = kindEd25519
	}
	return s, nil
}

// PrivateKey returns what to put in tls.Certificate.PrivateKey for the
// certificate whose public key is pub: an *RSAKey (signer and decrypter)
// for RSA, a *Signer for ECDSA and Ed25519.
func (cl *Client) PrivateKey(pub crypto.PublicKey) (crypto.Signer, error) {
	s, err := cl.Signer(pub)
	if err != nil {
		return nil, err
	}
	if s.kind == kindRSA {
		return &RSAKey{s}, nil
	}
	return s, nil
}

// Public returns the public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// SKI returns the key selector sent with each request.
func (s *Signer) SKI() keyless.SKI { return s.ski }

// Sign signs digest on a key server, blocking until the answer or
// Config.RequestTimeout. rand is not used: the key server has its own.
//
// opts maps to an opcode: for RSA, *rsa.PSSOptions (salt length
// PSSSaltLengthEqualsHash or the hash size, SHA-256/384/512) gives
// RSA-PSS, any other opts PKCS #1 v1.5 with its hash (MD5SHA1, SHA-1,
// SHA-224/256/384/512); for ECDSA the same hashes; for Ed25519 the hash
// must be zero (pure Ed25519, no context) and digest is the whole
// message. Except for Ed25519, len(digest) must be the hash's size.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	op, err := s.opFor(len(digest), opts)
	if err != nil {
		return nil, err
	}
	c, err := s.cl.submit(op, s.ski, digest, nil, nil, s.cl.cfg.RequestTimeout)
	if err != nil {
		return nil, err
	}
	return s.cl.wait(c, true)
}

// SignAsync is Sign without blocking: for an event loop, which must
// never wait. If it returns an error, nothing was sent and done is never
// called. Otherwise done is called exactly once with the signature or the
// error, on a client goroutine and never the caller's: a loop hands the
// result back to itself (gnet: Execute). sig is valid only until done
// returns, so copy it to keep it; done must be quick, as it holds up
// other answers on its connection. digest is copied before SignAsync
// returns.
func (s *Signer) SignAsync(digest []byte, opts crypto.SignerOpts, done func(sig []byte, err error)) error {
	if done == nil {
		return errors.New("keyless client: SignAsync needs a done function")
	}
	op, err := s.opFor(len(digest), opts)
	if err != nil {
		return err
	}
	_, err = s.cl.submit(op, s.ski, digest, done, nil, s.cl.cfg.RequestTimeout)
	return err
}

// hashOps are the opcodes by hash, for PKCS #1 v1.5 RSA, ECDSA and
// RSA-PSS; 0 is "not offered".
var hashOps = [...][3]keyless.Op{
	crypto.MD5SHA1: {keyless.OpRSASignMD5SHA1, keyless.OpECDSASignMD5SHA1, 0},
	crypto.SHA1:    {keyless.OpRSASignSHA1, keyless.OpECDSASignSHA1, 0},
	crypto.SHA224:  {keyless.OpRSASignSHA224, keyless.OpECDSASignSHA224, 0},
	crypto.SHA256:  {keyless.OpRSASignSHA256, keyless.OpECDSASignSHA256, keyless.OpRSAPSSSignSHA256},
	crypto.SHA384:  {keyless.OpRSASignSHA384, keyless.OpECDSASignSHA384, keyless.OpRSAPSSSignSHA384},
	crypto.SHA512:  {keyless.OpRSASignSHA512, keyless.OpECDSASignSHA512, keyless.OpRSAPSSSignSHA512},
}

// OpFor returns the opcode that signs a digest of n bytes with opts for
// the key kind of s; see Sign.
func (s *Signer) OpFor(n int, opts crypto.SignerOpts) (keyless.Op, error) { return s.opFor(n, opts) }

func (s *Signer) opFor(n int, opts crypto.SignerOpts) (keyless.Op, error) {
	if opts == nil {
		return 0, errors.New("keyless client: sign needs SignerOpts")
	}
	h := opts.HashFunc()
	if s.kind == kindEd25519 {
		if h != 0 {
			return 0, fmt.Errorf("keyless client: Ed25519 signs whole messages (hash 0), got %v (Ed25519ph is not offered)", h)
		}
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return 0, errors.New("keyless client: Ed25519 with a context is not offered")
		}
		return keyless.OpEd25519Sign, nil
	}
	var ops [3]keyless.Op
	if int(h) < len(hashOps) {
		ops = hashOps[h]
	}
	if ops[0] == 0 {
		return 0, fmt.Errorf("keyless client: no opcode signs with hash %v", h)
	}
	var op keyless.Op
	switch {
	case s.kind == kindECDSA:
		op = ops[1]
	case s.kind != kindRSA:
		return 0, errors.New("keyless client: unsupported key type")
	default:
		op = ops[0]
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			if op = ops[2]; op == 0 {
				return 0, fmt.Errorf("keyless client: no RSA-PSS opcode for hash %v", h)
			}
			// The key server always uses a salt as long as the hash.
			if pss.SaltLength != rsa.PSSSaltLengthEqualsHash && pss.SaltLength != h.Size() {
				return 0, fmt.Errorf("keyless client: RSA-PSS salt length %d: key servers use the hash length (%d)", pss.SaltLength, h.Size())
			}
		}
	}
	if n != h.Size() {
		return 0, fmt.Errorf("keyless client: digest of %d bytes for %v, want %d", n, h, h.Size())
	}
	return op, nil
}

// Decrypt decrypts an RSA ciphertext on a key server. The key server
// returns the raw RSA block, and Decrypt removes the padding as
// opts asks:
//   - nil: the raw block of the modulus size, padding and all;
//   - *rsa.PKCS1v15DecryptOptions: PKCS #1 v1.5 padding is checked in
//     constant time; with SessionKeyLen > 0 an invalid block yields a
//     random key of that length instead of an error (the TLS
//     countermeasure to Bleichenbacher's attack), drawn from rand, or
//     crypto/rand if rand is nil.
//
// OAEP is not offered.
func (k *RSAKey) Decrypt(rand io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	s := k.Signer
	if s.kind != kindRSA {
		return nil, errors.New("keyless client: decrypt needs an RSA key")
	}
	var pkcs *rsa.PKCS1v15DecryptOptions
	switch o := opts.(type) {
	case nil:
	case *rsa.PKCS1v15DecryptOptions:
		pkcs = o
	default:
		return nil, fmt.Errorf("keyless client: decrypt options %T are not offered", opts)
	}
	var key []byte
	if pkcs != nil && pkcs.SessionKeyLen > 0 {
		// Drawn before the request, as the answer must not change what
		// happens next.
		if rand == nil {
			rand = cryptorand.Reader
		}
		key = make([]byte, pkcs.SessionKeyLen)
		if _, err := io.ReadFull(rand, key); err != nil {
			return nil, err
		}
	}
	em, err := s.cl.Do(keyless.OpRSADecrypt, s.ski, msg)
	if err != nil {
		return nil, err
	}
	if len(em) != s.size {
		return nil, fmt.Errorf("keyless client: decrypt answer of %d bytes, want the modulus size %d", len(em), s.size)
	}
	if pkcs == nil {
		return em, nil
	}
	valid, index := unpadPKCS1v15(em)
	if key != nil {
		if len(key) <= len(em) {
			valid &= subtle.ConstantTimeEq(int32(len(em)-index), int32(len(key)))
			subtle.ConstantTimeCopy(valid, key, em[len(em)-len(key):])
		}
		return key, nil
	}
	if valid == 0 {
		return nil, rsa.ErrDecryption
	}
	return em[index:], nil
}

// unpadPKCS1v15 checks em = 00 02 PS 00 M, PS at least 8 non-zero bytes,
// in time independent of the content; valid is 1 or 0, and index is where
// M starts when valid.
func unpadPKCS1v15(em []byte) (valid, index int) {
	if len(em) < 11 {
		return 0, 0
	}
	first := subtle.ConstantTimeByteEq(em[0], 0)
	second := subtle.ConstantTimeByteEq(em[1], 2)
	looking := 1
	for i := 2; i < len(em); i++ {
		zero := subtle.ConstantTimeByteEq(em[i], 0)
		index = subtle.ConstantTimeSelect(looking&zero, i, index)
		looking = subtle.ConstantTimeSelect(zero, 0, looking)
	}
	psOK := subtle.ConstantTimeLessOrEq(2+8, index)
	valid = first & second & (looking ^ 1) & psOK
	index = subtle.ConstantTimeSelect(valid, index+1, 0)
	return valid, index
}
