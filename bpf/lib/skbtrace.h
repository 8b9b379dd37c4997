/* labkit trace: following packets through the kernel, modelled on pwru
 * (github.com/cilium/pwru: bpf/kprobe_pwru.c, --filter-track-skb, --output-tuple).
 *
 * pwru attaches kprobes to every kernel function that takes an skb and keeps the skbs
 * whose packet matched its pcap filter once (filter_track_skb). This kernel has neither
 * kprobes nor BTF, so the same idea is built from what it has:
 *
 *   - our own tc programs (bpf/trace_tc.c) on every interface of the lab, before the
 *     datapath's: they see the packet bytes, match the filter and record the skb's
 *     address in lkt_skbs (a root-loaded program may keep a pointer in a map);
 *   - tracepoints (bpf/trace_tp.c): the ones that carry an skb address emit an event
 *     only for tracked skbs; the ones that do not (fib, neigh) only while the CPU is
 *     working on a tracked skb (lkt_cur) and the addresses match.
 *
 * So the host's own traffic, and other labs', never leave the kernel: their skbs never
 * pass our tc programs and are never in lkt_skbs.
 *
 * Tracepoint field offsets (OFF_<tracepoint>_<field>) and the two struct offsets read
 * from kernel memory (SKB_DEV_OFF: sk_buff.dev, DEV_IFINDEX_OFF: net_device.ifindex)
 * come from -D flags computed at run time from tracefs formats and from the verifier's
 * own rewrite of skb->ifindex (labkit/embedded/ebpf/tracefs.py, tracer.py), never from
 * kernel headers.
 */
#ifndef LK_SKBTRACE_H
#define LK_SKBTRACE_H

#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Event kinds; labkit/embedded/ebpf/tracer.py names them. */
#define LKT_TC_INGRESS       1
#define LKT_TC_EGRESS        2
#define LKT_NET_DEV_QUEUE    10
#define LKT_NET_DEV_XMIT     11           /* net:net_dev_start_xmit */
#define LKT_NETIF_RX         12
#define LKT_NETIF_RECEIVE    13
#define LKT_KFREE_SKB        20
#define LKT_CONSUME_SKB      21
#define LKT_TCP_SEND_RESET   22
#define LKT_COPY_DATAGRAM    23           /* skb:skb_copy_datagram_iovec: data to the application */
#define LKT_FIB_LOOKUP       30
#define LKT_NEIGH_CREATE     31
#define LKT_NEIGH_SEND_DONE  32

#define LKT_CUR_NS           500000       /* a CPU's tracked skb context lasts 500 us */
#define LKT_CROSS_NS         1000000      /* a veth hands an skb to its peer within 1 ms */
#define LKT_FRESH_NS         100000000    /* an skb freed within 100 ms of its last event */
#define LKT_F_FLOWS          1            /* pick up only at lkt_pickup points, then follow flows */

struct lkt_config {
	__u32 flags;                   /* LKT_F_* */
	__u32 pad;
	__u64 max_events;              /* stop emitting after this many */
	__u64 emitted;                 /* events handed to the ring buffer */
	__u64 lost;                    /* ring buffer full */
	__u64 over;                    /* suppressed past max_events */
};

/* What a hook parsed from the packet bytes (addresses, ports in network order). */
struct lkt_pkt {
	__u32 saddr;
	__u32 daddr;
	__u32 seq;
	__u32 ack;
	__u16 sport;
	__u16 dport;
	__u16 ethertype;               /* host order */
	__u16 ip_id;
	__u16 tot_len;
	__u8  proto;
	__u8  tcp_flags;
	__u8  has_ports;
	__u8  pad[3];
};

/* The same packet in another skb (a clone in a bridge flood, a copy): addresses and
 * ports are left out so it still matches after NAT (as labkit/plots/ladder.py does). */
struct lkt_fp {
	__u32 seq;
	__u32 ack;
	__u16 ip_id;
	__u16 tot_len;
	__u8  proto;
	__u8  tcp_flags;
	__u16 pad;
};

/* A flow followed with -p (both directions map to one key). */
struct lkt_flow {
	__u32 a;
	__u32 b;
	__u16 aport;
	__u16 bport;
	__u8  proto;
	__u8  pad[3];
};

struct lkt_where {
	__u64 netns;                   /* the namespace's number in the trace (tracer.py) */
	__u32 ifindex;
	__u32 pad;
};

/* A tracked skb. Its address is only ours while the kernel has not freed it: many frees
 * pass no tracepoint (TCP's receive path, coalescing), and the address comes back for
 * another packet. So an entry also says what it was last seen as, and an event that
 * does not fit (another packet at a hook, a device outside the lab) ends it instead. */
struct lkt_skb {
	__u64 packet;                  /* cpu << 32 | per-CPU counter, renumbered in Python */
	__u64 last_dev;                /* the device of its last event */
	__u64 last_ts;
	struct lkt_fp fp;              /* the packet it carries */
	__u32 saddr;                   /* its addresses at the last hook (fib matching) */
	__u32 daddr;
	__u16 last_kind;
	__u16 pad[3];
};

struct lkt_cur {
	__u64 skb;                     /* the tracked skb this CPU works on; 0: another skb since */
	__u64 last_skb;                /* the last tracked skb, and what follows is about it */
	__u64 packet;
	__u64 dev;
	__u64 ts;
	__u32 saddr;
	__u32 daddr;
	__u32 nexthop;                 /* the last FIB lookup's gateway (or destination) */
	__u32 pad;
};

struct lkt_event {
	__u64 ts;                      /* bpf_ktime_get_ns */
	__u64 skb;
	__u64 packet;
	__u64 dev;                     /* struct net_device *, 0 if none */
	__u64 netns;                   /* hooks: netns cookie */
	__u64 location;                /* frees: the caller's address */
	__u32 pid;
	__u32 ifindex;
	__u32 len;
	__s32 arg;                     /* kfree: reason; fib: err; neigh: err/created; reset: reason */
	__u32 arg2;                    /* fib: table; neigh: nud_state; xmit: protocol */
	__u32 addr1;                   /* hook: saddr; fib: src; neigh: key */
	__u32 addr2;                   /* hook: daddr; fib: dst */
	__u32 addr3;                   /* fib: gateway; fib/neigh oif */
	__u32 seq;
	__u32 ack;
	__u16 sport;
	__u16 dport;
	__u16 kind;
	__u16 cpu;
	__u16 ethertype;
	__u16 ip_id;
	__u8  proto;
	__u8  tcp_flags;
	__u8  pad[2];
	__u32 arg3;                    /* fib: oif */
	char  comm[16];
	char  name[16];                /* device name from the tracepoint (fib: nexthop device) */
};                                     /* 144 bytes */

BPF_TABLE("array", __u32, struct lkt_config, lkt_config, 1);
BPF_TABLE("lru_hash", __u64, struct lkt_skb, lkt_skbs, 8192);
/* Devices of the lab (struct net_device *), learnt by the tc programs: only the lab's
 * devices have them, so a device here is in one of the lab's namespaces. */
BPF_TABLE("hash", __u64, __u8, lkt_devs, 4096);
BPF_TABLE("lru_hash", struct lkt_fp, __u64, lkt_fps, 8192);
BPF_TABLE("lru_hash", struct lkt_flow, __u8, lkt_flows, 1024);
BPF_TABLE("hash", struct lkt_where, __u8, lkt_pickup, 256);
BPF_TABLE("percpu_array", __u32, struct lkt_cur, lkt_cur, 1);
BPF_TABLE("percpu_array", __u32, __u64, lkt_counter, 1);
BPF_RINGBUF_OUTPUT(lkt_events, 1024);   /* 4 MiB: about 27k events in flight */

/* A new event, or NULL past max_events or with the ring buffer full (both counted). */
static __always_inline struct lkt_event *lkt_reserve(__u16 kind)
{
	__u32 zero = 0;
	struct lkt_config *cfg = lkt_config.lookup(&zero);
	struct lkt_event *e;

	if (!cfg)
		return 0;
	if (cfg->emitted >= cfg->max_events) {
		__sync_fetch_and_add(&cfg->over, 1);
		return 0;
	}
	e = lkt_events.ringbuf_reserve(sizeof(struct lkt_event));
	if (!e) {
		__sync_fetch_and_add(&cfg->lost, 1);
		return 0;
	}
	__sync_fetch_and_add(&cfg->emitted, 1);
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->kind = kind;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline void lkt_submit(struct lkt_event *e)
{
	lkt_events.ringbuf_submit(e, 0);
}

/* skb->dev and dev->ifindex, read at the offsets the verifier itself uses (SKB_DEV_OFF,
 * DEV_IFINDEX_OFF: labkit/embedded/ebpf/kernel.py finds them at run time). */
static __always_inline __u64 lkt_skb_dev(__u64 skb)
{
	__u64 dev = 0;

	bpf_probe_read_kernel(&dev, sizeof(dev), (void *)(skb + SKB_DEV_OFF));
	return dev;
}

static __always_inline __u32 lkt_dev_ifindex(__u64 dev)
{
	__u32 ifindex = 0;

	if (dev)
		bpf_probe_read_kernel(&ifindex, sizeof(ifindex), (void *)(dev + DEV_IFINDEX_OFF));
	return ifindex;
}

static __always_inline struct lkt_cur *lkt_cur_get(void)
{
	__u32 zero = 0;

	return lkt_cur.lookup(&zero);
}

/* This CPU now works on ``skb`` (tracked: ``t``; untracked: NULL ends the context). */
static __always_inline void lkt_cur_set(__u64 skb, struct lkt_skb *t, __u64 dev)
{
	struct lkt_cur *c = lkt_cur_get();

	if (!c)
		return;
	if (!t) {
		c->skb = 0;
		return;
	}
	c->skb = skb;
	c->last_skb = skb;
	c->packet = t->packet;
	c->dev = dev;
	c->ts = bpf_ktime_get_ns();
	c->saddr = t->saddr;
	c->daddr = t->daddr;
}

static __always_inline void lkt_seen(struct lkt_skb *t, __u16 kind, __u64 dev)
{
	t->last_kind = kind;
	t->last_dev = dev;
	t->last_ts = bpf_ktime_get_ns();
}

/* The tracked skb this CPU is working on right now (``strict``), or that it worked on
 * last, even if another skb came in between (an ARP request the neighbour layer sent
 * for it), within LKT_CUR_NS; else NULL. */
static __always_inline struct lkt_cur *lkt_cur_live(int strict)
{
	struct lkt_cur *c = lkt_cur_get();

	if (!c || !c->last_skb || (strict && !c->skb) || bpf_ktime_get_ns() - c->ts > LKT_CUR_NS)
		return 0;
	return c;
}

#endif
