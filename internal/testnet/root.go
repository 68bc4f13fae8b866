package testnet

import (
	"os"
	"testing"
)

// RequireRoot skips the test unless it runs as root, saying why root is
// needed. CI runs as root, so there these tests run.
func RequireRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("needs root to %s; run as root (CI does)", why)
	}
}
