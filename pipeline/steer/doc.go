// Package steer hands each new TCP connection to the event loop running on the CPU that
// received its SYN, so that the packets, the socket, the loop and the flow entry share one
// CPU's caches.
//
// Rampart's gnet engine opens one SO_REUSEPORT listener per event loop, in loop order, and
// pins loop i's thread to a CPU. The kernel numbers the members of a reuseport group in the
// order they called listen(), so loop i owns group index i. A classic BPF program attached
// to the group returns the index of the socket that gets the connection; the programs built
// here load the CPU number of the softirq that is processing the SYN (the ancillary load
// SKF_AD_OFF+SKF_AD_CPU) and return it unchanged ([Identity]), reduced modulo the loop count
// ([Modulo]) or looked up in a CPU→loop table ([Program]).
//
// # Why classic BPF
//
// SO_ATTACH_REUSEPORT_CBPF needs one descriptor: the program belongs to the whole group
// and may be attached through any member, including the dup of loop 0's listener that
// gnet v2.9.4 hands out (Engine.Dup). An eBPF sk_reuseport program with a
// REUSEPORT_SOCKARRAY map would also need every listener's descriptor to fill the map, and
// gnet v2.9.4 does not expose them. The map would have one advantage: a loop could be
// drained by deleting its slot, which the cBPF index cannot express.
//
// # Fallback
//
// When the program returns an index at or above the number of sockets in the group, the
// kernel ignores it and picks a socket by the usual hash of the 4-tuple. [Identity] relies
// on that on a CPU without a loop; [Program] returns an out-of-range index for a CPU it
// does not map. The kernel also falls back to the hash if it cannot run the program.
//
// # Kernel behaviour the engine must respect
//
//   - The index is the position in the group, which is listen() order, not bind() order.
//   - Closing a member moves the last member into its slot, so after a listener closes
//     the last loop receives the closed loop's CPU and the last CPU falls back to the
//     hash; reattach a program built for the new layout, or close listeners from the
//     last one backwards.
//   - The program lives in the group, not in the socket it was attached through: it
//     survives closing that descriptor (or the dup it came from), stays when later
//     members join, and is replaced by the next attach through any member.
//   - Attach once loop 0 (or every loop) is listening. Attaching through a bound socket
//     that is not listening gives that socket a group of its own: harmless for the
//     first member, but a socket treated so while another member already listens then
//     fails its own listen() with EADDRINUSE.
//   - Listeners of another process bound to the same address by the same user (a hot
//     restart) join the same group and shift the indexes.
//
// # Concurrency
//
// Package steer owns no state. The program builders are pure. [Attach] and [Detach] may be
// called from any goroutine, typically once at start-up or reload. [PinThread] changes
// the calling OS thread and must run on a goroutine that has called runtime.LockOSThread
// and never unlocks (let the goroutine exit locked so the pinned thread dies with it).
// [CurrentCPU] is a system call: fine at start-up and in tests, not per packet.
package steer
