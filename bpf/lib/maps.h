/* The maps of one node (one "agent"), named and shaped like Cilium's, pinned under
 * /sys/fs/bpf/labkit/<lab>/<node> so every program of the node, the CLI and the
 * notebooks share them. The three programs of a node (bpf_lxc, bpf_host, bpf_sock) share them.
 * Sizes are much smaller than Cilium's defaults (cilium_lxc 65535, CT 512k/256k, NAT 512k):
 * a lab node has a handful of pods, and ten labs side by side must fit in a classroom
 * machine's memory (hash and LRU maps are preallocated: memory is taken at creation).
 */
#ifndef LK_MAPS_H
#define LK_MAPS_H

#include "common.h"

/* bcc compiles the programs once per feature set into a template (maps unpinned);
 * labkit/embedded/ebpf/loader.py then creates each node's maps from the template's shapes,
 * pins them under /sys/fs/bpf/labkit/<lab>/<node>/ and rebinds the program's map
 * references to them, the way Cilium's loader relocates its ELF per endpoint. */
#define LK_MAP(type, key, value, name, entries, flags) BPF_F_TABLE(type, key, value, name, entries, flags)
#define BPF_F_NO_PREALLOC_ 1

LK_MAP("hash", struct endpoint_key, struct endpoint_info, cilium_lxc, 1024, 0);
/* The endpoint behind each lxc ifindex: Cilium compiles every endpoint's program with its
 * own LXC_ID / SECLABEL; our one program per node looks them up by the ingress device. */
LK_MAP("hash", __u32, struct endpoint_info, labkit_lxc_by_ifindex, 1024, 0);
LK_MAP("lpm_trie", struct ipcache_key, struct remote_endpoint_info, cilium_ipcache, 16384, BPF_F_NO_PREALLOC_);
LK_MAP("hash", struct lb4_key, struct lb4_service, cilium_lb4_services_v2, 4096, 0);
LK_MAP("hash", __u32, struct lb4_backend, cilium_lb4_backends_v3, 4096, 0);
LK_MAP("hash", __u16, struct lb4_reverse_nat, cilium_lb4_reverse_nat, 4096, 0);
LK_MAP("lru_hash", struct ipv4_revnat_tuple, struct ipv4_revnat_entry, cilium_lb4_reverse_sk, 8192, 0);
LK_MAP("lru_hash", struct ipv4_ct_tuple, struct ct_entry, cilium_ct4_global, 32768, 0);
LK_MAP("lru_hash", struct ipv4_ct_tuple, struct ct_entry, cilium_ct_any4_global, 8192, 0);
LK_MAP("lru_hash", struct ipv4_ct_tuple, struct ipv4_nat_entry, cilium_snat_v4_external, 16384, 0);
/* Per-CPU, as Cilium's: no shared counter cache line between the CPUs of a flow. */
LK_MAP("percpu_hash", struct metrics_key, struct metrics_value, cilium_metrics, 1024, 0);
/* Per-node values Cilium writes into node_config.h at compile time; here a one-entry
 * array, so one compiled object serves every node. */
LK_MAP("array", __u32, struct node_config, labkit_node_config, 1, 0);

/* cilium_events: Cilium uses a perf event array read by the agent; we use a ring buffer
 * (one per node) drained by the lab's agent process (labkit/embedded/ebpf/agent.py). */
BPF_RINGBUF_OUTPUT(cilium_events, 256);

static __always_inline __u32 node_ipv4(void)
{
	__u32 zero = 0;
	struct node_config *c = labkit_node_config.lookup(&zero);

	return c ? c->node_ipv4 : 0;
}

#endif
