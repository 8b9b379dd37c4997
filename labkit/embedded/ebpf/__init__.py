"""labkit's embedded eBPF datapath: build (bcc templates), load and attach per node,
map readers and writers, the event agent, monitor and flows. See bpf/ for the C side."""
