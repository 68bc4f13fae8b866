//go:build !cgo

package server

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestPKCS11WithoutCgo: a build without cgo says clearly that PKCS#11 is
// unavailable, and keeps the PIN out of the message.
func TestPKCS11WithoutCgo(t *testing.T) {
	if PKCS11Available() {
		t.Fatal("PKCS#11 reported available without cgo")
	}
	l := &storeLoader{logger: slog.New(slog.DiscardHandler), p11: newPKCS11Modules(nil, 1)}
	_, err := l.load([]string{"pkcs11:token=a?module-path=/x.so&pin-value=secret"})
	if !errors.Is(err, errNoPKCS11) || !strings.Contains(err.Error(), "CGO_ENABLED=1") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v", err)
	}
}
