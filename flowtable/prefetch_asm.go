//go:build amd64 || arm64

package flowtable

// prefetch4 asks the CPU to start loading the cache lines of four
// addresses and returns at once: one call, because a call costs more here
// than the hints themselves. The addresses are uintptrs, not pointers: a
// hint never faults and keeps nothing alive, and the memory they name is
// outside the Go heap.
//
//go:noescape
func prefetch4(a, b, c, d uintptr)
