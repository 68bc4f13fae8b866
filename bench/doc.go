// Package bench measures Rampart against baselines run in the same process
// on the same machine, following shared/BENCH.md: interleaved rounds
// (A B C A B C ...), medians, ratios taken per round, pinned CPUs, and the
// machine described beside every figure. Each benchmark (XDP, flowtable) is a
// function returning a result that prints as a table or as one JSON object
// with stable field names; `rampart bench NAME` is its command line.
//
// A benchmark owns everything it creates (BPF programs and maps, network
// namespaces, nftables tables inside them) and removes it before
// returning, on errors too. Benchmarks run one at a time from one
// goroutine; they pin the calling OS thread while measuring and restore its
// CPU affinity afterwards. They must never touch interfaces, namespaces or
// pinned maps they did not create.
package bench
