package server

import (
	"crypto/rsa"
	"errors"
	"fmt"

	"filippo.io/bigmod"
)

// rawRSA does the raw RSA private-key operation m = c^d mod n that the
// decrypt opcode asks for (KEYLESS.md §5, "RSA decrypt"): the result keeps
// its PKCS#1 padding, which the client removes. The standard library has
// no exported raw operation, so this uses filippo.io/bigmod, the
// constant-time modular arithmetic crypto/rsa itself is built on, with the
// same CRT steps and the same fault check (re-encrypting the result).
//
// A rawRSA is immutable after newRawRSA and safe for concurrent use.
type rawRSA struct {
	n        *bigmod.Modulus
	e        uint
	k        int // modulus length in bytes
	p, q     *bigmod.Modulus
	dp, dq   []byte
	qinv     *bigmod.Nat // modulo p
	d        []byte      // used only for keys with more than two primes
	twoPrime bool
}

var errDecrypt = errors.New("rsa decrypt failed")

func newRawRSA(priv *rsa.PrivateKey) (*rawRSA, error) {
	if priv.E < 3 || priv.N == nil || priv.D == nil {
		return nil, fmt.Errorf("invalid RSA key")
	}
	n, err := bigmod.NewModulus(priv.N.Bytes())
	if err != nil {
		return nil, fmt.Errorf("RSA modulus: %w", err)
	}
	r := &rawRSA{n: n, e: uint(priv.E), k: (priv.N.BitLen() + 7) / 8, d: priv.D.Bytes()}
	if len(priv.Primes) != 2 {
		return r, nil
	}
	if priv.Precomputed.Dp == nil || priv.Precomputed.Qinv == nil {
		priv.Precompute()
	}
	if r.p, err = bigmod.NewModulus(priv.Primes[0].Bytes()); err != nil {
		return nil, fmt.Errorf("RSA prime: %w", err)
	}
	if r.q, err = bigmod.NewModulus(priv.Primes[1].Bytes()); err != nil {
		return nil, fmt.Errorf("RSA prime: %w", err)
	}
	if r.qinv, err = bigmod.NewNat().SetBytes(priv.Precomputed.Qinv.Bytes(), r.p); err != nil {
		return nil, fmt.Errorf("RSA CRT coefficient: %w", err)
	}
	r.dp, r.dq = priv.Precomputed.Dp.Bytes(), priv.Precomputed.Dq.Bytes()
	r.twoPrime = true
	return r, nil
}

// decrypt returns c^d mod n as exactly k bytes, left-padded with zeros.
// It fails for a key shorter than 11 bytes and a ciphertext not below n,
// as the established server does. The ciphertext is public, so stripping
// its leading zeros may take variable time.
func (r *rawRSA) decrypt(ciphertext []byte) ([]byte, error) {
	if r.k < 11 {
		return nil, errDecrypt
	}
	for len(ciphertext) > 0 && ciphertext[0] == 0 {
		ciphertext = ciphertext[1:]
	}
	if len(ciphertext) > r.k {
		return nil, errDecrypt
	}
	c, err := bigmod.NewNat().SetBytes(ciphertext, r.n)
	if err != nil {
		return nil, errDecrypt
	}
	var m *bigmod.Nat
	if r.twoPrime {
		t0 := bigmod.NewNat()
		// m1 = c^dp mod p, m2 = c^dq mod q
		m = bigmod.NewNat().Exp(t0.Mod(c, r.p), r.dp, r.p)
		m2 := bigmod.NewNat().Exp(t0.Mod(c, r.q), r.dq, r.q)
		// h = qinv (m1 - m2) mod p; m = m2 + h q mod n
		m.Sub(t0.Mod(m2, r.p), r.p)
		m.Mul(r.qinv, r.p)
		m.ExpandFor(r.n).Mul(t0.Mod(r.q.Nat(), r.n), r.n)
		m.Add(m2.ExpandFor(r.n), r.n)
	} else {
		m = bigmod.NewNat().Exp(c, r.d, r.n)
	}
	// A fault in the CRT computation would leak a factor of n; check.
	if bigmod.NewNat().ExpShortVarTime(m, r.e, r.n).Equal(c) != 1 {
		return nil, errDecrypt
	}
	return m.Bytes(r.n), nil
}
