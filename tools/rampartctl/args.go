package main

import (
	"fmt"
	"net/netip"
	"strings"
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
// /32 or /128. Host bits must be clear: "10.1.2.3/8" is more likely a typo
// for /24 or /32 than a wish to block all of 10.0.0.0/8, so it is refused
// with the masked form as a hint rather than widened silently.
func parsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := parseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q: want ADDR or ADDR/BITS", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: want ADDR or ADDR/BITS", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("invalid prefix %q: mixes IPv4-mapped and other IPv6 addresses", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("invalid prefix %q: host bits set; did you mean %s or %s?",
			s, m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return p, nil
}
