package server

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// isPKCS11URI reports whether a key source is a PKCS#11 URI (RFC 7512).
func isPKCS11URI(src string) bool {
	return strings.HasPrefix(strings.ToLower(src), "pkcs11:")
}

// pkcs11URI is the part of an RFC 7512 URI the key store uses: which
// module, which token, which private keys, and the PIN.
type pkcs11URI struct {
	// Token selection; empty matches any.
	token, manufacturer, serial, model string
	slotID                             *uint
	// Key selection: label and/or CKA_ID; both empty means every private
	// key on the token.
	object string
	id     []byte

	modulePath string
	pin        string
	hasPIN     bool
	redacted   string // the URI without pin-value, for logs and errors
}

// parsePKCS11URI parses "pkcs11:path?query". Path attributes: token,
// manufacturer, serial, model, slot-id, object, id, type (which must be
// "private" when present); library-* attributes are accepted and ignored.
// Query attributes: module-path (required), pin-value or pin-source (a
// file holding the PIN). Values are percent-decoded.
func parsePKCS11URI(s string) (*pkcs11URI, error) {
	if !isPKCS11URI(s) {
		return nil, fmt.Errorf("not a pkcs11: URI")
	}
	rest := s[len("pkcs11:"):]
	path, query, _ := strings.Cut(rest, "?")
	u := &pkcs11URI{}
	seen := map[string]bool{}
	var redacted []string
	attr := func(kv string) (string, string, error) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", "", fmt.Errorf("attribute %q has no value", k)
		}
		if seen[k] {
			return "", "", fmt.Errorf("attribute %q repeated", k)
		}
		seen[k] = true
		dv, err := url.PathUnescape(v)
		if err != nil {
			return "", "", fmt.Errorf("attribute %q: %w", k, err)
		}
		return k, dv, nil
	}
	for _, kv := range strings.Split(path, ";") {
		if kv == "" {
			continue
		}
		k, v, err := attr(kv)
		if err != nil {
			return nil, pkcs11URIError(err)
		}
		switch k {
		case "token":
			u.token = v
		case "manufacturer":
			u.manufacturer = v
		case "serial":
			u.serial = v
		case "model":
			u.model = v
		case "object":
			u.object = v
		case "id":
			u.id = []byte(v)
		case "slot-id":
			n, err := strconv.ParseUint(v, 10, 0)
			if err != nil {
				return nil, pkcs11URIError(fmt.Errorf("slot-id %q: not a number", v))
			}
			id := uint(n)
			u.slotID = &id
		case "type":
			if v != "private" {
				return nil, pkcs11URIError(fmt.Errorf("type=%s: only private keys can be served", v))
			}
		case "library-manufacturer", "library-description", "library-version", "slot-description", "slot-manufacturer":
		default:
			if !strings.HasPrefix(k, "x-") {
				return nil, pkcs11URIError(fmt.Errorf("unknown path attribute %q", k))
			}
		}
		redacted = append(redacted, kv)
	}
	var q []string
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, err := attr(kv)
		if err != nil {
			return nil, pkcs11URIError(err)
		}
		switch k {
		case "module-path":
			u.modulePath = v
		case "pin-value":
			u.pin, u.hasPIN = v, true
			continue // never in logs
		case "pin-source":
			p := strings.TrimPrefix(v, "file:")
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, pkcs11URIError(fmt.Errorf("pin-source: %w", err))
			}
			u.pin, u.hasPIN = strings.TrimRight(string(data), "\r\n"), true
		case "module-name":
			return nil, pkcs11URIError(fmt.Errorf("module-name is not supported; give module-path"))
		default:
			if !strings.HasPrefix(k, "x-") {
				return nil, pkcs11URIError(fmt.Errorf("unknown query attribute %q", k))
			}
		}
		q = append(q, kv)
	}
	if seen["pin-value"] && seen["pin-source"] {
		return nil, pkcs11URIError(fmt.Errorf("both pin-value and pin-source"))
	}
	if u.modulePath == "" {
		return nil, pkcs11URIError(fmt.Errorf("module-path is required (the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so)"))
	}
	u.redacted = "pkcs11:" + strings.Join(redacted, ";")
	if len(q) > 0 {
		u.redacted += "?" + strings.Join(q, "&")
	}
	return u, nil
}

func pkcs11URIError(err error) error { return fmt.Errorf("pkcs11 URI: %w", err) }

// redactPKCS11 is src without its PIN, for messages about a URI that may
// not parse.
func redactPKCS11(src string) string {
	if u, err := parsePKCS11URI(src); err == nil {
		return u.redacted
	}
	path, query, _ := strings.Cut(src, "?")
	var keep []string
	for _, kv := range strings.Split(query, "&") {
		if !strings.HasPrefix(kv, "pin-value=") && kv != "" {
			keep = append(keep, kv)
		}
	}
	if len(keep) == 0 {
		return path
	}
	return path + "?" + strings.Join(keep, "&")
}
