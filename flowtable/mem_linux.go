package flowtable

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mapMemory returns zeroed memory outside the Go heap, advised to use
// transparent huge pages (the tables are large and randomly accessed, so
// 4 KiB pages would add a TLB miss to most operations) and populated at
// once: a table's capacity is memory the operator has granted it, and a
// page first touched by an event loop would be zeroed there, a 2 MiB huge
// page taking a hundred microseconds or more in the middle of requests.
func mapMemory(size int) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", size, err)
	}
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // best effort: THP may be off
	// Best effort too: kernels before 5.14 fault the pages in on use.
	_ = unix.Madvise(b, unix.MADV_POPULATE_WRITE)
	return b, nil
}

func unmapMemory(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}
