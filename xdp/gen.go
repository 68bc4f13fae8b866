package xdp

//go:generate go tool bpf2go -tags linux -target bpfel -type reason -type config_flag -type hint_flag -type served_flag -type list_verdict -type prefix_flag -type settings -type limits -type counter -type lpm_v4_key -type lpm_v6_key -type prefix_entry -type service_key -type service_value -type service_slot -type addr_key -type served_addr -type attack_entry -type rate_state -type source_slot -type sample filter filter.c -- -I./include -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
//go:generate go tool bpf2go -tags linux -target bpfel clock clock.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall -Werror
