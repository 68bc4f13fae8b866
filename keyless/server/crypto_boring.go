//go:build boringcrypto

package server

import "crypto/boring"

// CryptoBackend names the implementation behind the signatures: "go"
// (the standard library), or "boringcrypto" in a GOEXPERIMENT=boringcrypto
// build. docs/keyserver.md compares their speed.
func CryptoBackend() string {
	if boring.Enabled() {
		return "boringcrypto"
	}
	return "go"
}
