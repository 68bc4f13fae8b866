package zone

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

type hostKind uint8

const (
	hostInvalid  hostKind = iota
	hostExact             // www.example.com
	hostWildcard          // *.example.com
	hostIP                // 192.0.2.1, 2001:db8::1
)

const (
	maxNameLen  = 253 // DNS name without the trailing dot
	maxLabelLen = 63
)

// parseHost classifies one configured host. key is what a host is unique
// by: the name, "*." and the suffix for a wildcard, or the canonical
// address. msg says what is wrong when kind is hostInvalid.
func parseHost(h string) (kind hostKind, key, msg string) {
	invalid := func(format string, args ...string) (hostKind, string, string) {
		for _, a := range args {
			format = strings.Replace(format, "%q", strconv.Quote(a), 1)
		}
		return hostInvalid, "", format
	}
	switch {
	case h == "":
		return invalid("must not be empty")
	case strings.HasPrefix(h, "["):
		return invalid("write IPv6 addresses without brackets, got %q", h)
	case strings.Contains(h, ":"):
		a, err := netip.ParseAddr(h)
		switch {
		case err != nil || !a.Is6():
			return invalid("is neither a host name nor an IP address, got %q", h)
		case a.Zone() != "":
			return invalid("must not have an IPv6 zone, got %q", h)
		case a.String() != h:
			return invalid("write the address in canonical form %q, got %q", a.String(), h)
		}
		return hostIP, h, ""
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Is4() {
		return hostIP, h, ""
	}
	name, wild := strings.CutPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return invalid("a wildcard must be the whole leftmost label, like *.example.com, got %q", h)
	}
	if msg := checkName(name); msg != "" {
		return invalid("%q: "+msg, h)
	}
	if wild {
		if !strings.Contains(name, ".") {
			return invalid("a wildcard needs at least two labels after \"*.\", like *.example.com, got %q", h)
		}
		return hostWildcard, "*." + name, ""
	}
	return hostExact, name, ""
}

// checkName returns why name is not a lowercase DNS host name made of
// LDH labels and IDNA A-labels, or "".
func checkName(name string) string {
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			return "must be ASCII: write internationalized names as IDNA A-labels (xn--…)"
		}
	}
	if strings.ToLower(name) != name {
		return "must be lowercase"
	}
	if strings.HasSuffix(name, ".") {
		return "must not end with a dot"
	}
	if len(name) > maxNameLen {
		return "must be at most " + strconv.Itoa(maxNameLen) + " bytes"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "has an empty label"
		case len(l) > maxLabelLen:
			return "label " + strconv.Quote(l) + " is longer than 63 bytes"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "label " + strconv.Quote(l) + " must not start or end with a dash"
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return "label " + strconv.Quote(l) + " may hold only letters, digits and dashes"
			}
		}
		if strings.HasPrefix(l, "xn--") && !isALabel(l[4:]) {
			return "label " + strconv.Quote(l) + " is not a valid IDNA A-label (punycode)"
		}
	}
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "the last label must not be all digits (IP addresses are written as addresses)"
	}
	return ""
}

// isALabel reports whether s (an A-label without "xn--") is valid
// punycode (RFC 3492) for a string with at least one non-ASCII code
// point. It does not check IDNA2008's code point tables.
func isALabel(s string) bool {
	const (
		base, tmin, tmax = 36, 1, 26
		skew, damp       = 38, 700
		maxCode          = utf8.MaxRune
	)
	adapt := func(delta, points int, first bool) int {
		if first {
			delta /= damp
		} else {
			delta /= 2
		}
		delta += delta / points
		k := 0
		for delta > ((base-tmin)*tmax)/2 {
			delta /= base - tmin
			k += base
		}
		return k + (base-tmin+1)*delta/(delta+skew)
	}
	out := 0 // code points decoded so far; only the count matters
	pos := 0
	if b := strings.LastIndexByte(s, '-'); b >= 0 {
		out, pos = b, b+1
	}
	if pos >= len(s) {
		return false // nothing encoded: the label would be plain ASCII
	}
	n, bias, i := 128, 72, 0
	nonASCII := false
	for pos < len(s) {
		oldi, w := i, 1
		for k := base; ; k += base {
			if pos == len(s) {
				return false
			}
			c := s[pos]
			pos++
			var digit int
			switch {
			case 'a' <= c && c <= 'z':
				digit = int(c - 'a')
			case '0' <= c && c <= '9':
				digit = int(c-'0') + 26
			default:
				return false
			}
			if digit > (maxCode*64-i)/w {
				return false
			}
			i += digit * w
			t := min(max(k-bias, tmin), tmax)
			if digit < t {
				break
			}
			w *= base - t
			if w > maxCode*64 {
				return false
			}
		}
		out++
		bias = adapt(i-oldi, out, oldi == 0)
		n += i / out
		i %= out
		if n > maxCode || 0xd800 <= n && n <= 0xdfff {
			return false
		}
		if n >= 0x80 {
			nonASCII = true
		}
		i++
	}
	return nonASCII
}
