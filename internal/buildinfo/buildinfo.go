// Package buildinfo reports the version and commit a binary was built
// from: set by the Makefile's -ldflags, else read from the Go build info.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/rampart-edge/rampart/internal/buildinfo.Version=... -X ...Commit=...".
var (
	Version = ""
	Commit  = ""
)

// String is the one-line description `version` subcommands print.
func String(binary string) string {
	v, c := Version, Commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("%s %s (commit %s, %s, %s/%s)", binary, v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
