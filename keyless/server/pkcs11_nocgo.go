//go:build !cgo

package server

import (
	"errors"
	"fmt"
	"log/slog"
)

// errNoPKCS11 is what a pkcs11: key source gives in a build without cgo.
var errNoPKCS11 = errors.New("PKCS#11 is unavailable in this build: it was built without cgo (CGO_ENABLED=0); rebuild with CGO_ENABLED=1 to use pkcs11: key stores")

// PKCS11Available reports whether this build can serve keys from PKCS#11
// tokens. It needs cgo (the module is loaded with dlopen).
func PKCS11Available() bool { return false }

type pkcs11Modules struct{}

func newPKCS11Modules(*slog.Logger, int) *pkcs11Modules { return &pkcs11Modules{} }

func (p *pkcs11Modules) close() {}

func (p *pkcs11Modules) load(src string) ([]*Key, func(), error) {
	return nil, nil, fmt.Errorf("key store %s: %w", redactPKCS11(src), errNoPKCS11)
}
