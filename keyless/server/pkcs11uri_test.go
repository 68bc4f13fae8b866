package server

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePKCS11URI(t *testing.T) {
	pin := filepath.Join(t.TempDir(), "pin")
	os.WriteFile(pin, []byte("4321\n"), 0o600)
	for _, tc := range []struct {
		name, uri    string
		check        func(*pkcs11URI) bool
		wantRedacted string
		wantErr      string
	}{
		{name: "full", uri: "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc;model=SoftHSM%20v2;object=k1;id=%01%02;type=private;slot-id=7?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234",
			check: func(u *pkcs11URI) bool {
				return u.token == "My Token" && u.manufacturer == "SoftHSM project" && u.serial == "abc" && u.model == "SoftHSM v2" &&
					u.object == "k1" && bytes.Equal(u.id, []byte{1, 2}) && *u.slotID == 7 && u.pin == "1234" && u.hasPIN &&
					u.modulePath == "/usr/lib/softhsm/libsofthsm2.so"
			},
			wantRedacted: "pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=abc;model=SoftHSM%20v2;object=k1;id=%01%02;type=private;slot-id=7?module-path=/usr/lib/softhsm/libsofthsm2.so"},
		{name: "pin source", uri: "pkcs11:token=t?module-path=/m.so&pin-source=file:" + pin,
			check: func(u *pkcs11URI) bool { return u.pin == "4321" && u.hasPIN }},
		{name: "vendor attribute ignored", uri: "pkcs11:token=t;x-foo=1?module-path=/m.so&x-bar=2",
			check: func(u *pkcs11URI) bool { return u.token == "t" }},
		{name: "no pin", uri: "PKCS11:token=t?module-path=/m.so", check: func(u *pkcs11URI) bool { return !u.hasPIN }},
		{name: "no module", uri: "pkcs11:token=t", wantErr: "module-path is required"},
		{name: "module-name", uri: "pkcs11:token=t?module-name=softhsm2", wantErr: "module-name is not supported"},
		{name: "unknown attribute", uri: "pkcs11:tokn=t?module-path=/m.so", wantErr: `unknown path attribute "tokn"`},
		{name: "repeated", uri: "pkcs11:token=a;token=b?module-path=/m.so", wantErr: "repeated"},
		{name: "bad escape", uri: "pkcs11:token=%zz?module-path=/m.so", wantErr: "invalid URL escape"},
		{name: "no value", uri: "pkcs11:token?module-path=/m.so", wantErr: "has no value"},
		{name: "bad slot", uri: "pkcs11:slot-id=x?module-path=/m.so", wantErr: "not a number"},
		{name: "both pins", uri: "pkcs11:token=t?module-path=/m.so&pin-value=1&pin-source=" + pin, wantErr: "both"},
		{name: "missing pin file", uri: "pkcs11:token=t?module-path=/m.so&pin-source=/nonexistent", wantErr: "pin-source"},
		{name: "certificates asked for", uri: "pkcs11:type=cert?module-path=/m.so", wantErr: "only private keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parsePKCS11URI(tc.uri)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "1234") {
					t.Fatalf("error shows the PIN: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(u) {
				t.Fatalf("parsed %+v", u)
			}
			if strings.Contains(u.redacted, "pin-value") {
				t.Fatalf("redacted URI shows the PIN: %s", u.redacted)
			}
			if tc.wantRedacted != "" && u.redacted != tc.wantRedacted {
				t.Fatalf("redacted %s\nwant     %s", u.redacted, tc.wantRedacted)
			}
		})
	}
	if got := redactPKCS11("pkcs11:token=a?pin-value=1234&module-name=x"); got != "pkcs11:token=a?module-name=x" {
		t.Fatalf("redactPKCS11 = %s", got)
	}
}
