package flowtable

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// mapMemory returns zeroed memory outside the Go heap, advised to use
// transparent huge pages: the tables are large and randomly accessed, so
// 4 KiB pages would add a TLB miss to most operations.
func mapMemory(size int) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("map %d bytes: %w", size, err)
	}
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE) // best effort: THP may be off
	return b, nil
}

func unmapMemory(b []byte) error {
	if b == nil {
		return nil
	}
	return unix.Munmap(b)
}
