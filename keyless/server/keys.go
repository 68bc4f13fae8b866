package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rampart-edge/rampart/keyless"
)

// Key is one private key of the key store.
type Key struct {
	SKI    keyless.SKI
	Public crypto.PublicKey
	// Source says where the key came from: a file path, or a pkcs11: URI
	// with any PIN removed. It goes in logs.
	Source string

	signer crypto.Signer
	// decrypt is the raw RSA private operation (KEYLESS.md §5); nil for
	// keys that are not RSA.
	decrypt func(ciphertext []byte) ([]byte, error)
}

// Type is "rsa", "ecdsa" or "ed25519", for logs and metrics.
func (k *Key) Type() string { return keyType(k.Public) }

func keyType(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return "unknown"
}

// keyStore is one generation of keys, immutable once built. Reload builds
// a new one and swaps it in; the old one is closed (releasing PKCS#11
// sessions) when the last request using it finishes.
type keyStore struct {
	keys map[keyless.SKI]*Key

	closers  []func()
	inflight atomic.Int64
	retired  atomic.Bool
	once     sync.Once
}

func (st *keyStore) get(ski keyless.SKI) *Key { return st.keys[ski] }

// release ends one request's use of the store.
func (st *keyStore) release() {
	if st.inflight.Add(-1) == 0 && st.retired.Load() {
		st.close()
	}
}

// retire marks the store replaced; it closes now if unused, or when the
// last request releases it. No request acquires it after retire.
func (st *keyStore) retire() {
	st.retired.Store(true)
	if st.inflight.Load() == 0 {
		st.close()
	}
}

func (st *keyStore) close() {
	st.once.Do(func() {
		for _, c := range st.closers {
			c()
		}
	})
}

// counts returns the number of keys by type.
func (st *keyStore) counts() map[string]int {
	n := map[string]int{"rsa": 0, "ecdsa": 0, "ed25519": 0}
	for _, k := range st.keys {
		n[k.Type()]++
	}
	return n
}

// storeLoader builds key stores; it holds what outlives one store (the
// loaded PKCS#11 modules).
type storeLoader struct {
	logger *slog.Logger
	p11    *pkcs11Modules
}

// load builds a store from every source. Any error fails the whole load,
// so that a reload never serves a partial store.
func (l *storeLoader) load(sources []string) (*keyStore, error) {
	st := &keyStore{keys: make(map[keyless.SKI]*Key)}
	var errs []error
	for _, src := range sources {
		var keys []*Key
		var err error
		switch {
		case isPKCS11URI(src):
			var closer func()
			keys, closer, err = l.p11.load(src)
			if closer != nil {
				st.closers = append(st.closers, closer)
			}
		default:
			keys, err = l.loadPath(src)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, k := range keys {
			if old, dup := st.keys[k.SKI]; dup {
				l.logger.Warn("duplicate key ignored", slog.String("ski", k.SKI.String()),
					slog.String("source", k.Source), slog.String("kept", old.Source))
				continue
			}
			st.keys[k.SKI] = k
		}
	}
	if len(errs) == 0 && len(st.keys) == 0 {
		errs = append(errs, fmt.Errorf("no keys found in %s", strings.Join(sources, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

// keyFileExts are the file names a key directory is searched for.
var keyFileExts = []string{".key", ".pem", ".der"}

// loadPath loads a directory (its *.key, *.pem and *.der files, not
// recursively, hidden files skipped) or one file.
func (l *storeLoader) loadPath(path string) ([]*Key, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if !fi.IsDir() {
		keys, err := l.loadFile(path)
		if err == nil && len(keys) == 0 {
			err = fmt.Errorf("key file %s: no private key in it", path)
		}
		return keys, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	var keys []*Key
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !hasKeyExt(name) {
			continue
		}
		p := filepath.Join(path, name)
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue // dangling links, sub-directories
		}
		ks, err := l.loadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(ks) == 0 {
			l.logger.Debug("no private key in file", slog.String("file", p))
		}
		keys = append(keys, ks...)
	}
	return keys, errors.Join(errs...)
}

func hasKeyExt(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	for _, e := range keyFileExts {
		if ext == e {
			return true
		}
	}
	return false
}

func (l *storeLoader) loadFile(path string) ([]*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	privs, err := parsePrivateKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 && len(privs) > 0 {
		l.logger.Warn("key file readable by group or others", slog.String("file", path),
			slog.String("mode", fi.Mode().Perm().String()))
	}
	keys := make([]*Key, 0, len(privs))
	for _, priv := range privs {
		k, err := newSoftwareKey(priv, path)
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// parsePrivateKeys returns every private key in data: PEM blocks of type
// PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) and EC PRIVATE KEY
// (SEC1); other blocks (certificates, EC PARAMETERS) are skipped. Data
// with no PEM block at all is tried as one DER key in each format.
func parsePrivateKeys(data []byte) ([]crypto.Signer, error) {
	var out []crypto.Signer
	rest := data
	sawPEM := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		var (
			key any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("encrypted PKCS#8 keys are not supported; decrypt it first")
		default:
			continue
		}
		if err == nil && block.Headers["Proc-Type"] != "" {
			err = fmt.Errorf("encrypted PEM keys are not supported")
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		s, err := asSigner(key)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if sawPEM {
		return out, nil
	}
	if key, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		s, err := asSigner(key)
		if err != nil {
			// An X25519 or other non-signing PKCS#8 key: no keys at all,
			// not a list holding a nil signer beside the error.
			return nil, err
		}
		return []crypto.Signer{s}, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return []crypto.Signer{key}, nil
	}
	if key, err := x509.ParseECPrivateKey(data); err == nil {
		return []crypto.Signer{key}, nil
	}
	return nil, fmt.Errorf("neither PEM nor a DER PKCS#8, PKCS#1 or SEC1 private key")
}

func asSigner(key any) (crypto.Signer, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", key)
}

// newSoftwareKey wraps an in-memory key.
func newSoftwareKey(priv crypto.Signer, source string) (*Key, error) {
	pub := priv.Public()
	ski, err := keyless.SKIOf(pub)
	if err != nil {
		return nil, err
	}
	k := &Key{SKI: ski, Public: pub, Source: source, signer: priv}
	if rk, ok := priv.(*rsa.PrivateKey); ok {
		if err := rk.Validate(); err != nil {
			return nil, fmt.Errorf("RSA key: %w", err)
		}
		raw, err := newRawRSA(rk)
		if err != nil {
			return nil, err
		}
		k.decrypt = raw.decrypt
	}
	return k, nil
}

// sortedKeys lists a store's keys by source then SKI, for logs.
func (st *keyStore) sortedKeys() []*Key {
	out := make([]*Key, 0, len(st.keys))
	for _, k := range st.keys {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Source != out[j].Source {
			return out[i].Source < out[j].Source
		}
		return out[i].SKI.String() < out[j].SKI.String()
	})
	return out
}
