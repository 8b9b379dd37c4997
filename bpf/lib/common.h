/* Shared types and constants of labkit's datapath, modelled on cilium bpf/lib/common.h.
 *
 * Struct layouts are byte-for-byte the ones Cilium 1.17 uses (Cilium's bpf/lib/common.h,
 * bpf/lib/nat.h, bpf/lib/lb.h), so our map dumps decode like Cilium's and the CLI prints the
 * same fields; labkit/embedded/ebpf/layouts.py mirrors them (a test compares the two).
 * Lab-wide values (NATIVE_CIDR_*, SERVICE_CIDR_*, ENABLE_* features) come from -D flags
 * set by labkit/embedded/ebpf/build.py, as Cilium writes them into its config headers;
 * per-node values are in the labkit_node_config map (maps.h).
 * Addresses in these macros are __be32 values read as host u32 (memory order).
 */
#ifndef LK_COMMON_H
#define LK_COMMON_H

#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/if_arp.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
#include <uapi/linux/tcp.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/icmp.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif
#define __lk_packed __attribute__((packed))

/* Reserved identities (cilium pkg/identity/numericidentity.go). */
#define WORLD_ID        2
#define HOST_ID         1
#define REMOTE_NODE_ID  6
#define KUBE_APISERVER_ID 7          /* a remote node that runs the API server */

/* Source file ids for drop notifications and metrics (cilium bpf/source_names_to_ids.h). */
#define FILE_BPF_HOST 1
#define FILE_BPF_LXC  2
#define FILE_BPF_SOCK 5

/* Tuple flags (cilium bpf/lib/common.h). */
#define TUPLE_F_OUT      0
#define TUPLE_F_IN       1
#define TUPLE_F_RELATED  2
#define TUPLE_F_SERVICE  4

/* Metric directions (cilium METRIC_INGRESS/EGRESS/SERVICE). */
#define METRIC_INGRESS 1
#define METRIC_EGRESS  2
#define METRIC_SERVICE 3

/* Drop reasons: the positive value of Cilium's DROP_* codes (pkg/monitor/api/drop.go). */
#define REASON_FORWARDED        0
#define DROP_INVALID_SIP        132
#define DROP_INVALID            134
#define DROP_CT_INVALID_HDR     135
#define DROP_UNKNOWN_L3         139
#define DROP_WRITE_ERROR        141
#define DROP_UNKNOWN_L4         142
#define DROP_CSUM_L3            153
#define DROP_CSUM_L4            154
#define DROP_NO_SERVICE         158
#define DROP_NAT_NO_MAPPING     167
#define DROP_NO_FIB             169
#define DROP_IS_CLUSTER_IP      174
#define DROP_TTL_EXCEEDED       196

/* CT lookup results, which are also the trace reasons (TRACE_REASON_CT_*). */
#define CT_NEW          0
#define CT_ESTABLISHED  1
#define CT_REPLY        2
#define CT_RELATED      3

/* Endpoint map (cilium_lxc), cilium bpf/lib/common.h. */
#define ENDPOINT_KEY_IPV4 1
#define ENDPOINT_F_HOST   1

struct endpoint_key {
	__u32 ip4;
	__u32 pad1;
	__u32 pad2;
	__u32 pad3;
	__u8  family;
	__u8  key;
	__u16 cluster_id;
} __lk_packed;                         /* 20 bytes */

struct endpoint_info {
	__u32 ifindex;                 /* host-side lxc ifindex */
	__u16 unused;
	__u16 lxc_id;                  /* endpoint id */
	__u32 flags;                   /* ENDPOINT_F_HOST for (localhost) rows */
	__u64 mac;                     /* pod eth0 MAC (6 bytes used) */
	__u64 node_mac;                /* lxc MAC: the router MAC seen by the pod */
	__u32 sec_id;                  /* security identity */
	__u32 parent_ifindex;
	__u32 pad[2];
};                                     /* 48 bytes */

/* ipcache (LPM trie): 32 static prefix bits (cluster_id, pad1, family) + the address. */
struct ipcache_key {
	__u32 prefixlen;               /* struct bpf_lpm_trie_key */
	__u16 cluster_id;
	__u8  pad1;
	__u8  family;
	__u32 ip4;
	__u32 pad4;
	__u32 pad5;
	__u32 pad6;
} __lk_packed;                         /* 24 bytes */

struct remote_endpoint_info {
	__u32 sec_identity;
	__u32 tunnel_endpoint;
	__u16 pad;
	__u8  key;
	__u8  flags;                   /* Cilium 1.17 leaves these 0 (pkg/maps/ipcache) */
};

/* Conntrack and NAT tuple (cilium struct ipv4_ct_tuple). Addresses are stored "reversed"
 * for CT keys: see conntrack.h for the two orientations. */
struct ipv4_ct_tuple {
	__u32 daddr;
	__u32 saddr;
	__u16 dport;
	__u16 sport;
	__u8  nexthdr;
	__u8  flags;
} __lk_packed;                         /* 14 bytes */

/* CT entry flag bits (the bitfield of struct ct_entry). */
#define CT_F_RX_CLOSING   (1 << 0)
#define CT_F_TX_CLOSING   (1 << 1)
#define CT_F_SEEN_NON_SYN (1 << 4)
#define CT_F_NODE_PORT    (1 << 5)

struct ct_entry {
	__u64 reserved0;
	__u64 backend_id;
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;
	__u16 flags;
	__u16 rev_nat_index;           /* network byte order */
	__u16 ifindex;
	__u8  tx_flags_seen;
	__u8  rx_flags_seen;
	__u32 src_sec_id;
	__u32 last_tx_report;
	__u32 last_rx_report;
};                                     /* 56 bytes */

/* Services (cilium bpf/lib/common.h lb4_*). */
struct lb4_key {
	__u32 address;
	__u16 dport;
	__u16 backend_slot;
	__u8  proto;
	__u8  scope;
	__u8  pad[2];
};

struct lb4_service {
	__u32 backend_id;              /* slot > 0: backend id; slot 0: LB algorithm/affinity */
	__u16 count;
	__u16 rev_nat_index;           /* network byte order */
	__u8  flags;
	__u8  flags2;
	__u16 qcount;
};

struct lb4_backend {
	__u32 address;
	__u16 port;
	__u8  proto;
	__u8  flags;
	__u16 cluster_id;
	__u8  zone;
	__u8  pad;
};

struct lb4_reverse_nat {
	__u32 address;
	__u16 port;
} __lk_packed;

/* Socket LB reverse translation (cilium bpf/bpf_sock.c). */
struct ipv4_revnat_tuple {
	__u64 cookie;
	__u32 address;
	__u16 port;
	__u16 pad;
};

struct ipv4_revnat_entry {
	__u32 address;
	__u16 port;
	__u16 rev_nat_index;
};

/* NAT (cilium bpf/lib/nat.h). */
struct ipv4_nat_entry {
	__u64 created;
	__u64 needs_ct;
	__u64 pad1;
	__u64 pad2;
	__u32 addr;                    /* to_saddr (OUT) or to_daddr (IN) */
	__u16 port;
	__u16 pad3;
};                                     /* 40 bytes */

/* Metrics (cilium struct metrics_key / metrics_value). */
struct metrics_key {
	__u8  reason;
	__u8  dir;
	__u16 line;
	__u8  file;
	__u8  reserved[3];
};

struct metrics_value {
	__u64 count;
	__u64 bytes;
};

struct node_config {
	__u32 node_ipv4;               /* this node's eth0 address (IPV4_MASQUERADE) */
	__u32 router_ipv4;             /* cilium_host address */
	__u32 native_ifindex;          /* eth0 */
	__u32 pad;
};

/* What the programs know about the packet at hand (host byte order ports are NOT used:
 * every address and port here is in network order, as on the wire). */
struct lk_pkt {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;                   /* ICMP echo: id for requests, 0 for replies */
	__u16 dport;                   /* ICMP echo: 0 for requests, id for replies */
	__u8  proto;
	__u8  tcp_flags;
	__u8  ttl;
	__u8  has_ports;               /* TCP, UDP or ICMP echo */
	__u32 l4_off;
	__u32 len;
};

static __always_inline int in_subnet(__u32 addr, __u32 net, __u32 mask)
{
	return (addr & mask) == net;
}

#endif
