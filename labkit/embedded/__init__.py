"""The embedded backend: a kind-like cluster of network namespaces on this machine, with
labkit's own Cilium-like eBPF datapath (``ebpf/``, the programs in ``bpf/``).

Modules, one job each: ``names`` (every kernel object and file a lab makes, derived from
its name), ``state`` (the small state file, the per-lab lock), ``topology`` and ``exthost``
(namespaces and veths), ``hosts`` (name resolution in pods), ``processes`` (workloads and
cgroups), ``datapath`` (the ebpf / kernel variants), ``ebpf/`` (compile, load, maps,
events), ``bpffs``, ``teardown``, ``doctor``, and ``backend`` (``EmbeddedBackend``).
"""
