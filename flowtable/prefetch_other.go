//go:build !amd64 && !arm64

package flowtable

// prefetch4 is a hint; without an instruction for it here, it does nothing.
func prefetch4(a, b, c, d uintptr) {}
