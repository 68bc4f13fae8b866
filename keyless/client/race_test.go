//go:build race

package client

// raceEnabled: sync.Pool drops a random share of what it is given under
// the race detector, so allocation counts are not meaningful there.
const raceEnabled = true
