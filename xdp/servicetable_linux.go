package xdp

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"golang.org/x/sys/unix"
)

const (
	serviceProbes = 4 // SERVICE_PROBES in consts.h
	slotTCPPorts  = 6 // SLOT_TCP_PORTS
	slotUDPPorts  = 2 // SLOT_UDP_PORTS
)

// rebuildServiceTableLocked writes the served addresses, their ports and
// attack flags into the inactive half of service_table, then switches the
// filter to it in one settings write. The filter reads either the old or
// the new table, never a half-written one. Callers hold the lock.
func (m *Maps) rebuildServiceTableLocked() error {
	entries, err := m.Services()
	if err != nil {
		return err
	}
	attacked, err := m.AttackAddrs()
	if err != nil {
		return err
	}
	type ports struct{ tcp, udp []uint16 }
	byAddr := map[[16]byte]*ports{}
	var order [][16]byte
	for _, e := range entries {
		k := addrKey(e.Addr).Addr
		p := byAddr[k]
		if p == nil {
			p = &ports{}
			byAddr[k] = p
			order = append(order, k)
		}
		if e.Proto == unix.IPPROTO_TCP {
			p.tcp = append(p.tcp, e.Port)
		} else if e.Proto == unix.IPPROTO_UDP {
			p.udp = append(p.udp, e.Port)
		}
	}

	half := m.serviceTable.MaxEntries() / 2
	bitsN := uint32(bits.TrailingZeros32(half))
	if half == 0 || 1<<bitsN != half {
		return errors.New("service table: size is not twice a power of two")
	}
	table := make([]filterServiceSlot, half)
	spill := uint32(0)
	for _, k := range order {
		p := byAddr[k]
		slot := filterServiceSlot{Addr: k, Flags: filterServedFlagSERVED_USED}
		if len(p.tcp) > 0 {
			slot.Flags |= filterServedFlagSERVED_TCP
		}
		if len(p.udp) > 0 {
			slot.Flags |= filterServedFlagSERVED_UDP
		}
		if len(p.tcp) > slotTCPPorts || len(p.udp) > slotUDPPorts {
			slot.Flags |= filterServedFlagSERVED_OVERFLOW
		}
		if slices.Contains(attacked, addrFromKey(k)) {
			slot.Flags |= filterServedFlagSERVED_ATTACK
		}
		for i, port := range p.tcp[:min(len(p.tcp), slotTCPPorts)] {
			slot.Tcp[i] = htons(port)
		}
		for i, port := range p.udp[:min(len(p.udp), slotUDPPorts)] {
			slot.Udp[i] = htons(port)
		}
		h := addrHash(k) >> (32 - bitsN)
		placed := false
		for i := range uint32(serviceProbes) {
			idx := (h + i) & (half - 1)
			if table[idx].Flags&filterServedFlagSERVED_USED == 0 {
				table[idx] = slot
				placed = true
				break
			}
		}
		if !placed {
			spill = 1 // the filter falls back to the hash maps on a table miss
		}
	}

	cur, err := m.readSettings()
	if err != nil {
		return err
	}
	next := 1 - cur.ServiceHalf
	idx := make([]uint32, half)
	for i := range idx {
		idx[i] = next*half + uint32(i)
	}
	if _, err := m.serviceTable.BatchUpdate(idx, table, nil); err != nil {
		return fmt.Errorf("write service table: %w", err)
	}
	// One settings write switches the half and the spill flag, but the
	// filter reads the fields apart: a packet caught between them may see
	// the new half without the new spill flag and count as not_served.
	return m.updateSettings(func(s *filterSettings) {
		s.ServiceBits = bitsN
		s.ServiceHalf = next
		s.ServiceSpill = spill
	})
}

// nextPow2 is the smallest power of two >= n (n >= 1).
func nextPow2(n uint32) uint32 {
	p := uint32(1)
	for p < n {
		p <<= 1
	}
	return p
}
