package zone

import (
	"bytes"
	"net/netip"
	"strings"
)

// Table maps host names to zones. It is immutable after NewTable, except
// for the origins' health, and safe for any number of goroutines.
type Table struct {
	zones  []*Zone
	byName map[string]*Zone
	// exact holds exact names; wild holds a wildcard's suffix
	// ("example.com" for "*.example.com"); ips holds literal addresses.
	exact map[string]*Zone
	wild  map[string]*Zone
	ips   map[netip.Addr]*Zone
	// wildLabels has bit n set when some wildcard suffix has n labels,
	// so that Lookup probes only suffixes of those lengths: a long
	// name costs a few map probes, not one per label.
	wildLabels [2]uint64
	hosts      int
	unknown    UnknownHost
}

// NewTable validates c and builds its Table.
func NewTable(c Config) (*Table, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return build(c), nil
}

// build makes the table of a valid configuration. Tests call it directly
// to use settings below the profile's minimums (millisecond intervals).
func build(c Config) *Table {
	c = c.WithDefaults()
	t := &Table{
		zones:   make([]*Zone, len(c.Zones)),
		byName:  make(map[string]*Zone, len(c.Zones)),
		exact:   make(map[string]*Zone),
		wild:    make(map[string]*Zone),
		ips:     make(map[netip.Addr]*Zone),
		unknown: c.UnknownHost,
	}
	for i, s := range c.Zones {
		z := &Zone{
			Name:     s.Name,
			Index:    i,
			Hosts:    append([]string(nil), s.Hosts...),
			Settings: s.Settings,
			Origins:  make([]*Origin, 0, len(s.Origins)),
		}
		for _, h := range s.Hosts {
			kind, _, _ := parseHost(h)
			switch kind {
			case hostExact:
				t.exact[h] = z
				if z.healthHost == "" {
					z.healthHost = h
				}
			case hostWildcard:
				suffix := strings.TrimPrefix(h, "*.")
				t.wild[suffix] = z
				n := strings.Count(suffix, ".") + 1 // at most 127 in 253 bytes
				t.wildLabels[n/64] |= 1 << (n % 64)
			case hostIP:
				t.ips[netip.MustParseAddr(h)] = z
			}
		}
		for _, o := range s.Origins {
			ap, _ := parseOrigin(o)
			z.Origins = append(z.Origins, &Origin{
				Addr: ap,
				Zone: z,
				name: ap.String(),
				fall: uint32(s.Health.Fall),
				rise: uint32(s.Health.Rise),
			})
		}
		t.hosts += len(s.Hosts)
		t.zones[i] = z
		t.byName[z.Name] = z
	}
	return t
}

// Zones returns the zones in profile order; Zone.Index is the position.
// The slice is shared: do not modify it.
func (t *Table) Zones() []*Zone { return t.zones }

// ByName returns the zone called name, or nil.
func (t *Table) ByName(name string) *Zone { return t.byName[name] }

// Hosts is the number of host entries (exact, wildcard and address).
func (t *Table) Hosts() int { return t.hosts }

// UnknownHost is the response for a host no zone serves, defaults filled in.
func (t *Table) UnknownHost() UnknownHost { return t.unknown }

// CopyHealth carries origin health over from the table a reload replaces:
// every origin of t whose zone name and address also exist in prev takes
// prev's state and counters. Call it before t is published and before
// its Checker starts.
func (t *Table) CopyHealth(prev *Table) {
	if prev == nil {
		return
	}
	for _, z := range t.zones {
		pz := prev.byName[z.Name]
		if pz == nil {
			continue
		}
		for _, o := range z.Origins {
			for _, po := range pz.Origins {
				if po.Addr == o.Addr {
					o.copyFrom(po)
					break
				}
			}
		}
	}
}

// hostBufLen holds the longest host a Lookup accepts: a 253-byte name,
// its trailing dot and ":65535", or a bracketed IPv6 address and port.
const hostBufLen = maxNameLen + len(".:65535")

// Lookup returns the zone serving host, a Host header or :authority
// value, or nil when no zone does: the caller then answers with
// UnknownHost, never with another zone's origin.
//
// It is case-insensitive and strips an optional ":port" (at most five
// digits) and one trailing dot. An exact host wins over a wildcard, and a
// longer wildcard suffix over a shorter one. IP literals ("192.0.2.1",
// "[2001:db8::1]:443", or bare "2001:db8::1") match only a host entry for
// the same address, never a wildcard. A name must be ASCII letters,
// digits, dashes, underscores and dots with labels of 1..63 bytes, up to
// 253 bytes; anything else is nil.
//
// Lookup allocates nothing and never blocks.
func (t *Table) Lookup(host []byte) *Zone {
	if len(host) > hostBufLen {
		return nil
	}
	var buf [hostBufLen]byte
	return t.lookup(buf[:copy(buf[:], host)])
}

// LookupString is Lookup for a string (a TLS server name, say).
func (t *Table) LookupString(host string) *Zone {
	if len(host) > hostBufLen {
		return nil
	}
	var buf [hostBufLen]byte
	return t.lookup(buf[:copy(buf[:], host)])
}

// lookup works on its own copy of the host, which it lowercases in place.
func (t *Table) lookup(b []byte) *Zone {
	if len(b) == 0 {
		return nil
	}
	if b[0] == '[' {
		end := bytes.IndexByte(b, ']')
		if end < 0 || !portOK(b[end+1:]) {
			return nil
		}
		a, ok := parseIPv6(b[1:end])
		if !ok {
			return nil
		}
		return t.ips[a]
	}
	if c := bytes.IndexByte(b, ':'); c >= 0 {
		if bytes.IndexByte(b[c+1:], ':') >= 0 {
			// Two colons: an unbracketed IPv6 address, which cannot
			// carry a port.
			a, ok := parseIPv6(b)
			if !ok {
				return nil
			}
			return t.ips[a]
		}
		if !portOK(b[c:]) {
			return nil
		}
		b = b[:c]
	}
	if n := len(b); n > 0 && b[n-1] == '.' {
		b = b[:n-1]
	}
	if len(b) == 0 || len(b) > maxNameLen {
		return nil
	}
	if c := b[len(b)-1]; '0' <= c && c <= '9' {
		if a, ok := parseIPv4(b); ok {
			return t.ips[a]
		}
	}
	label, labels := 0, 1
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case c == '.':
			if label == 0 {
				return nil
			}
			label = 0
			labels++
			continue
		default:
			return nil
		}
		if label++; label > maxLabelLen {
			return nil
		}
	}
	if label == 0 {
		return nil
	}
	// m[string(b)] converts without allocating.
	if z := t.exact[string(b)]; z != nil {
		return z
	}
	// The longest suffix first: the one after the first dot.
	for i, c := range b {
		if c != '.' {
			continue
		}
		labels--
		if t.wildLabels[labels/64]&(1<<(labels%64)) == 0 {
			continue
		}
		if z := t.wild[string(b[i+1:])]; z != nil {
			return z
		}
	}
	return nil
}

// portOK reports whether s is empty or ":" and at most five digits.
func portOK(s []byte) bool {
	if len(s) == 0 {
		return true
	}
	if s[0] != ':' || len(s) > len(":65535") {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseIPv4 parses dotted-quad IPv4 as netip.ParseAddr does (no leading
// zeros, four fields), without allocating.
func parseIPv4(s []byte) (netip.Addr, bool) {
	var ip [4]byte
	if !parseIPv4Fields(s, ip[:]) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(ip), true
}

func parseIPv4Fields(s []byte, fields []byte) bool {
	val, pos, digits := 0, 0, 0
	for i, c := range s {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return false // leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return false
			}
		case c == '.':
			if i == 0 || i == len(s)-1 || s[i-1] == '.' || pos == 3 {
				return false
			}
			fields[pos] = byte(val)
			pos++
			val, digits = 0, 0
		default:
			return false
		}
	}
	if pos < 3 || digits == 0 {
		return false
	}
	fields[3] = byte(val)
	return true
}

// parseIPv6 parses an IPv6 address without zone as netip.ParseAddr does,
// including an embedded IPv4 tail, without allocating.
func parseIPv6(s []byte) (netip.Addr, bool) {
	var ip [16]byte
	ellipsis := -1
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return netip.IPv6Unspecified(), true
		}
	}
	i := 0
	for i < 16 {
		off, acc := 0, uint32(0)
	digits:
		for ; off < len(s); off++ {
			c := s[off]
			switch {
			case '0' <= c && c <= '9':
				acc = acc<<4 + uint32(c-'0')
			case 'a' <= c && c <= 'f':
				acc = acc<<4 + uint32(c-'a'+10)
			case 'A' <= c && c <= 'F':
				acc = acc<<4 + uint32(c-'A'+10)
			default:
				break digits
			}
			if off > 3 {
				return netip.Addr{}, false
			}
		}
		if off == 0 {
			return netip.Addr{}, false
		}
		if off < len(s) && s[off] == '.' {
			if ellipsis < 0 && i != 12 || i+4 > 16 || !parseIPv4Fields(s, ip[i:i+4]) {
				return netip.Addr{}, false
			}
			s = nil
			i += 4
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		s = s[off:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return netip.Addr{}, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		for j := i - 1; j >= ellipsis; j-- {
			ip[j+n] = ip[j]
		}
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16(ip), true
}
