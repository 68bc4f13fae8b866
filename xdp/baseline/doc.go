// Package baseline loads the programs Rampart's XDP filter is measured
// against: a bare XDP_DROP and a bare XDP_PASS program (the floor of any XDP
// program's cost, built here with bpf2go) and xdp-tools' xdp-filter, loaded
// from the object files the xdp-tools package installs.
//
// Loaded programs and maps are owned by the caller, who closes them. The
// functions are safe from any goroutine. Nothing here is ever attached in
// production; benchmarks use it, and the live benchmark attaches the bare
// drop program to a veth of its own namespaces.
package baseline
