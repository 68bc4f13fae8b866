package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"

	"github.com/rampart-edge/rampart/keyless"
)

// opKind is what a key opcode does.
type opKind uint8

const (
	kindNone opKind = iota // not a key operation
	kindRSADecrypt
	kindRSAPKCS1
	kindRSAPSS
	kindECDSA
	kindEd25519
)

// classify says what op does and with which hash (KEYLESS.md §3).
func classify(op keyless.Op) (opKind, crypto.Hash) {
	switch op {
	case keyless.OpRSADecrypt:
		return kindRSADecrypt, 0
	case keyless.OpRSASignMD5SHA1:
		return kindRSAPKCS1, crypto.MD5SHA1
	case keyless.OpRSASignSHA1:
		return kindRSAPKCS1, crypto.SHA1
	case keyless.OpRSASignSHA224:
		return kindRSAPKCS1, crypto.SHA224
	case keyless.OpRSASignSHA256:
		return kindRSAPKCS1, crypto.SHA256
	case keyless.OpRSASignSHA384:
		return kindRSAPKCS1, crypto.SHA384
	case keyless.OpRSASignSHA512:
		return kindRSAPKCS1, crypto.SHA512
	case keyless.OpRSAPSSSignSHA256:
		return kindRSAPSS, crypto.SHA256
	case keyless.OpRSAPSSSignSHA384:
		return kindRSAPSS, crypto.SHA384
	case keyless.OpRSAPSSSignSHA512:
		return kindRSAPSS, crypto.SHA512
	case keyless.OpECDSASignMD5SHA1:
		return kindECDSA, crypto.MD5SHA1
	case keyless.OpECDSASignSHA1:
		return kindECDSA, crypto.SHA1
	case keyless.OpECDSASignSHA224:
		return kindECDSA, crypto.SHA224
	case keyless.OpECDSASignSHA256:
		return kindECDSA, crypto.SHA256
	case keyless.OpECDSASignSHA384:
		return kindECDSA, crypto.SHA384
	case keyless.OpECDSASignSHA512:
		return kindECDSA, crypto.SHA512
	case keyless.OpEd25519Sign:
		return kindEd25519, 0
	}
	return kindNone, 0
}

// nonKeyResult is the answer to a request that needs no key: the pong,
// or the error code for opcodes this server does not offer. ok is false
// for key operations.
func nonKeyResult(op keyless.Op) (code keyless.ErrCode, ok bool) {
	if err := op.CheckRequest(); err != nil {
		return err.(keyless.ErrCode), true
	}
	switch op {
	case keyless.OpPing:
		return keyless.ErrNone, true
	case keyless.OpSeal, keyless.OpUnseal:
		// The established server with no sealer configured.
		return keyless.ErrInternal, true
	case keyless.OpRPC:
		// No RPC methods are registered: a dispatch failure.
		return keyless.ErrInternal, true
	case keyless.OpCustom:
		// No custom function is configured.
		return keyless.ErrBadOpcode, true
	}
	return keyless.ErrNone, false
}

// lookup finds the key a request names (KEYLESS.md §5, "Key selection"):
// a missing SKI is an internal lookup error, an unknown one "not found".
func lookup(st *keyStore, ski keyless.SKI) (*Key, keyless.ErrCode) {
	if ski.IsZero() {
		return nil, keyless.ErrInternal
	}
	k := st.get(ski)
	if k == nil {
		return nil, keyless.ErrKeyNotFound
	}
	return k, keyless.ErrNone
}

// perform runs key operation op with k on payload. Every failure,
// including a key of the wrong type and an RSA digest of the wrong length,
// is ErrCrypto.
func perform(k *Key, kind opKind, hash crypto.Hash, payload []byte) ([]byte, keyless.ErrCode) {
	var (
		out []byte
		err error
	)
	switch kind {
	case kindRSADecrypt:
		if _, ok := k.Public.(*rsa.PublicKey); !ok || k.decrypt == nil {
			return nil, keyless.ErrCrypto
		}
		out, err = k.decrypt(payload)
	case kindRSAPKCS1, kindRSAPSS:
		if _, ok := k.Public.(*rsa.PublicKey); !ok {
			return nil, keyless.ErrCrypto
		}
		if len(payload) != hash.Size() {
			return nil, keyless.ErrCrypto
		}
		var opts crypto.SignerOpts = hash
		if kind == kindRSAPSS {
			opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hash}
		}
		out, err = k.signer.Sign(rand.Reader, payload, opts)
	case kindECDSA:
		// The digest length is not enforced: ECDSA truncates a long one
		// (FIPS 186), as the established server lets it.
		if _, ok := k.Public.(*ecdsa.PublicKey); !ok {
			return nil, keyless.ErrCrypto
		}
		out, err = k.signer.Sign(rand.Reader, payload, hash)
	case kindEd25519:
		if _, ok := k.Public.(ed25519.PublicKey); !ok {
			return nil, keyless.ErrCrypto
		}
		out, err = k.signer.Sign(rand.Reader, payload, crypto.Hash(0))
	default:
		return nil, keyless.ErrBadOpcode
	}
	if err != nil || len(out) == 0 {
		return nil, keyless.ErrCrypto
	}
	return out, keyless.ErrNone
}
