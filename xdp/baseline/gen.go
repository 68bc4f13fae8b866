package baseline

//go:generate go tool bpf2go -tags linux -target bpfel dropprog drop.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel passprog pass.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
