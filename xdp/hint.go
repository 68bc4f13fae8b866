package xdp

import (
	"encoding/binary"
	"net/netip"
)

// The source hint array has one slot per IPv4 /16 and one per folded IPv6
// /32. A slot's flags say whether any allow or block prefix touches
// addresses mapping to it; the filter walks the LPM tries only when they
// do. Clear slots are exact ("nothing here"); set slots may be false
// positives, which cost only a trie lookup.
const hintSlotsPerFamily = 1 << 16

// HintSlot is the slot an address maps to. It mirrors hint_slot() in
// filter.c.
func HintSlot(a netip.Addr) uint32 {
	a = a.Unmap()
	b := a.AsSlice()
	if a.Is4() {
		return uint32(b[0])<<8 | uint32(b[1])
	}
	return hintSlotsPerFamily + ((uint32(b[0])<<8 | uint32(b[1])) ^ (uint32(b[2])<<8 | uint32(b[3])))
}

// hintSlotsOf calls fn for every slot that an address inside p can map to.
func hintSlotsOf(p netip.Prefix, fn func(slot uint32)) {
	p = p.Masked()
	b := p.Addr().AsSlice()
	if p.Addr().Is4() {
		base := uint32(b[0])<<8 | uint32(b[1])
		if p.Bits() >= 16 {
			fn(base)
			return
		}
		for i := range uint32(1) << (16 - p.Bits()) {
			fn(base + i)
		}
		return
	}
	if p.Bits() >= 32 {
		fn(HintSlot(p.Addr()))
		return
	}
	if p.Bits() <= 16 {
		// Covers 2^16 or more /32s: every folded slot.
		for i := range uint32(hintSlotsPerFamily) {
			fn(hintSlotsPerFamily + i)
		}
		return
	}
	hi := uint32(b[0])<<8 | uint32(b[1])
	lo := uint32(b[2])<<8 | uint32(b[3])
	for i := range uint32(1) << (32 - p.Bits()) {
		fn(hintSlotsPerFamily + (hi ^ (lo + i)))
	}
}

// addrHash mirrors addr_hash() in filter.c: the four native-endian words
// of the 16-byte address XORed, times a golden-ratio constant.
func addrHash(a [16]byte) uint32 {
	w := func(i int) uint32 { return binary.NativeEndian.Uint32(a[i : i+4]) }
	return (w(0) ^ w(4) ^ w(8) ^ w(12)) * 0x9E3779B1
}
