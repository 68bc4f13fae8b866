//go:build !boringcrypto

package server

// CryptoBackend names the implementation behind the signatures: "go"
// (the standard library), or "boringcrypto" in a GOEXPERIMENT=boringcrypto
// build. docs/keyserver.md compares their speed.
func CryptoBackend() string { return "go" }
