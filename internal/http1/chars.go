package http1

// Byte classes, one table lookup each.
const (
	classToken  = 1 << iota // tchar (RFC 9110 section 5.6.2)
	classValue              // field-vchar, SP, HTAB (obs-text allowed)
	classTarget             // visible ASCII allowed in a request target
	classHost               // reg-name without pct-encoding: unreserved and sub-delims
	classHex
)

var classes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum || b != 0 && contains("!#$%&'*+-.^_`|~", b) {
			t[c] |= classToken
		}
		if b == '\t' || b >= 0x20 && b != 0x7f {
			t[c] |= classValue
		}
		if b > 0x20 && b < 0x7f && b != '#' {
			t[c] |= classTarget
		}
		if alnum || b != 0 && contains("-._~!$&'()*+,;=", b) {
			t[c] |= classHost
		}
		if '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' {
			t[c] |= classHex
		}
	}
	return t
}()

func contains(s string, b byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return true
		}
	}
	return false
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if classes[c]&classToken == 0 {
			return false
		}
	}
	return true
}

// equalFold compares b with lower, which must be lowercase ASCII.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func unhex(c byte) int64 {
	switch {
	case c <= '9':
		return int64(c - '0')
	case c >= 'a':
		return int64(c-'a') + 10
	default:
		return int64(c-'A') + 10
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
