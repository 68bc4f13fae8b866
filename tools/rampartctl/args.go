package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/rampart-edge/rampart/internal/admin"
)

// parseAddr parses one IP address as an operator types it. IPv4-mapped
// IPv6 becomes IPv4, because that is how the filter keys it.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid address %q: want an IPv4 or IPv6 address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid address %q: zones (%%%s) have no meaning to the filter", s, a.Zone())
	}
	return a.Unmap(), nil
}

// parsePrefix parses a list argument: a prefix, or a bare address meaning
// /32 or /128, with host bits clear (admin.ParsePrefix: the same rules as
// the daemon's ?src= filter).
func parsePrefix(s string) (netip.Prefix, error) {
	return admin.ParsePrefix(strings.TrimSpace(s))
}
