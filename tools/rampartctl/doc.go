// Command rampartctl is the operator's tool for a running (or stopped)
// Rampart edge. Most commands work on the XDP filter's maps pinned under
// /sys/fs/bpf/rampart/<iface>/, so they need no connection to the daemon
// and keep working when the daemon is down:
//
//	rampartctl xdp stats [--watch]            counters and rates per reason
//	rampartctl block add|del|list [PREFIX]    the blocklist (allow: allowlist)
//	rampartctl attack on|off|list [ADDR]      stricter limits per destination
//	rampartctl services                       what the filter lets through
//	rampartctl drops --pcap out.pcap          sampled drops to a capture file
//	rampartctl replay in.pcap                 verdict and reason per packet
//	rampartctl flows --bpf                    per-source rate state and blocklist
//
// The flow and visitor tables live in the daemon's memory, so these read
// its admin listener (--admin, default 127.0.0.1:9180):
//
//	rampartctl flows [--src P] [--top N --by bytes|requests|score]
//	rampartctl visitors [--src P] [--top N --by rate|errors|blocks|score]
//
// State: rampartctl owns nothing; every command opens the pins, does its
// work and closes them. Writers serialise with the daemon through the pin
// folder's flock (xdp.Maps). replay loads a private copy of the program
// (BPF_PROG_TEST_RUN) that shares the live lists and settings but has its
// own counters and rate buckets, so replaying never disturbs live traffic.
//
// It must never attach or detach a program, resize a pinned map, or touch
// the live counters and rate state: those belong to the daemon.
package main
