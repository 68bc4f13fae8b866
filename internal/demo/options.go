package demo

import (
	"errors"
	"fmt"
	"time"
)

// Options size the demo. Zero fields take the defaults below.
type Options struct {
	// Profile is the embedded profile name or file whose xdp section
	// configures the filter ("edge-default").
	Profile string
	// Packets each flood sends, spread over Duration.
	SYNFlood   int
	Reflection int
	Blocked    int
	Malformed  int
	// Requests the client makes during the floods, one TCP connection each,
	// spread evenly over Duration; Baseline more are made before.
	Requests int
	Baseline int
	// Duration is the window the floods and the requests share.
	Duration time.Duration
	// Timeout bounds the whole run, set-up and clean-up included.
	Timeout time.Duration
	// Rampart is the rampart binary whose `run` subcommand is the edge's
	// HTTP pipeline. Empty means this process's own executable, which is
	// right for `rampart demo`; tests build one.
	Rampart string
}

// Defaults: about 220,000 attack packets over three seconds, against 200
// requests (67 new connections/s, a third of the profile's per-source SYN
// allowance so that the client never trips it).
const (
	DefaultSYNFlood   = 100_000
	DefaultReflection = 50_000
	DefaultBlocked    = 50_000
	DefaultMalformed  = 20_000
	DefaultRequests   = 200
	DefaultBaseline   = 20
	DefaultDuration   = 3 * time.Second
	DefaultTimeout    = 2 * time.Minute
	maxPackets        = 10_000_000
	maxRequests       = 10_000
)

func (o Options) withDefaults() Options {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if o.Profile == "" {
		o.Profile = "edge-default"
	}
	def(&o.SYNFlood, DefaultSYNFlood)
	def(&o.Reflection, DefaultReflection)
	def(&o.Blocked, DefaultBlocked)
	def(&o.Malformed, DefaultMalformed)
	def(&o.Requests, DefaultRequests)
	def(&o.Baseline, DefaultBaseline)
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// validate returns every problem at once. A negative flood size turns that
// flood off.
func (o Options) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"syn flood", o.SYNFlood}, {"reflection", o.Reflection}, {"blocked", o.Blocked}, {"malformed", o.Malformed}} {
		if f.v > maxPackets {
			errs = append(errs, fmt.Errorf("%s: at most %d packets, got %d", f.name, maxPackets, f.v))
		}
	}
	if o.Requests < 1 || o.Requests > maxRequests {
		errs = append(errs, fmt.Errorf("requests: must be in 1..%d, got %d", maxRequests, o.Requests))
	}
	if o.Baseline < 0 || o.Baseline > maxRequests {
		errs = append(errs, fmt.Errorf("baseline: must be in 0..%d, got %d", maxRequests, o.Baseline))
	}
	if o.Duration < 500*time.Millisecond || o.Duration > time.Minute {
		errs = append(errs, fmt.Errorf("duration: must be in 500ms..1m, got %s", o.Duration))
	}
	if o.Timeout < o.Duration+10*time.Second {
		errs = append(errs, fmt.Errorf("timeout: must leave 10s beyond the duration for set-up and clean-up, got %s", o.Timeout))
	}
	return errors.Join(errs...)
}

// ErrNeedsRoot is returned when the demo cannot create namespaces or load
// BPF programs.
var ErrNeedsRoot = errors.New("the demo needs root: it creates network namespaces and attaches an XDP program (run it with sudo)")
