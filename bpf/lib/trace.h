/* Trace and drop notifications and metrics, modelled on cilium bpf/lib/trace.h,
 * bpf/lib/drop.h, bpf/lib/metrics.h and bpf/lib/trace_sock.h.
 *
 * Every packet event is one fixed-size ring buffer record: the 48-byte struct trace_notify
 * of Cilium (version 1, with orig_ip4) followed by up to TRACE_PAYLOAD_LEN bytes of the
 * packet. Drops use the same header with type CILIUM_NOTIFY_DROP, subtype = drop reason,
 * and the source line and file id of the drop in orig_pad1 / orig_pad2 (Cilium's
 * struct drop_notify carries line and file too, in its own layout); orig_pad3 holds the
 * CPU (Cilium's perf ring tells the reader which CPU wrote a sample).
 *
 * Metrics follow _update_trace_metrics() in Cilium's bpf/lib/trace.h: every trace point
 * counts the packet whether or not the event is emitted (to-endpoint: INGRESS Success;
 * to-stack/to-host/to-network: EGRESS Success; from-network: INGRESS "Interface", the
 * REASON_PLAINTEXT of unencrypted traffic), and ipv4_local_delivery() in bpf_lxc counts
 * an EGRESS Success of its own (LOCAL_DELIVERY_METRICS). Drops count their reason.
 *
 * Emission follows emit_trace_notify() with Cilium's default monitorAggregation=medium:
 * from-* points are never emitted, others only when conntrack says so (conntrack.h).
 * Drops are always reported.
 */
#ifndef LK_TRACE_H
#define LK_TRACE_H

#include "maps.h"

#define CILIUM_NOTIFY_DROP       1
#define CILIUM_NOTIFY_TRACE      4
#define CILIUM_NOTIFY_TRACE_SOCK 7
#define TRACE_PAYLOAD_LEN        128

/* Metric reasons that are not drops (cilium bpf/lib/common.h REASON_*). */
#define REASON_PLAINTEXT 3

/* enum trace_point (observation points). */
#define TRACE_TO_LXC       0
#define TRACE_TO_HOST      2
#define TRACE_TO_STACK     3
#define TRACE_FROM_LXC     5
#define TRACE_FROM_NETWORK 10
#define TRACE_TO_NETWORK   11

struct trace_notify {
	__u8  type;
	__u8  subtype;
	__u16 source;
	__u32 hash;
	__u32 len_orig;
	__u16 len_cap;
	__u16 version;
	__u32 src_label;
	__u32 dst_label;
	__u16 dst_id;
	__u8  reason;
	__u8  flags;
	__u32 ifindex;
	__u32 orig_ip4;
	__u32 orig_pad1;               /* drops: source line */
	__u32 orig_pad2;               /* drops: file id */
	__u32 orig_pad3;               /* the CPU that wrote the event */
	__u8  data[TRACE_PAYLOAD_LEN];
};

static __always_inline void update_metrics(__u32 bytes, __u8 dir, __u8 reason, __u16 line, __u8 file)
{
	struct metrics_key key = {};
	struct metrics_value zero = {}, *val;

	key.reason = reason;
	key.dir = dir;
	key.line = line;
	key.file = file;
	val = cilium_metrics.lookup(&key);
	if (!val) {
		cilium_metrics.update(&key, &zero);
		val = cilium_metrics.lookup(&key);
		if (!val)
			return;
	}
	val->count += 1;               /* this CPU's copy: no atomics needed */
	val->bytes += bytes;
}

static __always_inline void emit_notify(struct __sk_buff *skb, __u8 type, __u8 subtype, __u16 source,
					__u32 src_label, __u32 dst_label, __u16 dst_id, __u8 reason,
					__u32 ifindex, __u32 orig_ip4, __u32 line, __u32 file)
{
	struct trace_notify *n = cilium_events.ringbuf_reserve(sizeof(struct trace_notify));
	__u32 cap;

	if (!n)
		return;
	n->type = type;
	n->subtype = subtype;
	n->source = source;
	n->hash = bpf_get_hash_recalc(skb);
	n->len_orig = skb->len;
	n->version = 1;
	n->src_label = src_label;
	n->dst_label = dst_label;
	n->dst_id = dst_id;
	n->reason = reason;
	n->flags = 0;
	n->ifindex = ifindex;
	n->orig_ip4 = orig_ip4;
	n->orig_pad1 = line;
	n->orig_pad2 = file;
	n->orig_pad3 = bpf_get_smp_processor_id();
	cap = skb->len;
	if (cap > TRACE_PAYLOAD_LEN)
		cap = TRACE_PAYLOAD_LEN;
	if (cap < 1 || bpf_skb_load_bytes(skb, 0, n->data, cap) < 0)
		cap = 0;
	n->len_cap = cap;
	cilium_events.ringbuf_submit(n, 0);
}

/* _update_trace_metrics(): what a trace point counts, emitted or not. */
static __always_inline void update_trace_metrics(struct __sk_buff *skb, __u8 obs, __u16 line, __u8 file)
{
	switch (obs) {
	case TRACE_TO_LXC:
		update_metrics(skb->len, METRIC_INGRESS, REASON_FORWARDED, line, file);
		break;
	case TRACE_TO_HOST:
	case TRACE_TO_STACK:
	case TRACE_TO_NETWORK:
		update_metrics(skb->len, METRIC_EGRESS, REASON_FORWARDED, line, file);
		break;
	case TRACE_FROM_NETWORK:
		update_metrics(skb->len, METRIC_INGRESS, REASON_PLAINTEXT, line, file);
		break;
	default:
		break;
	}
}

/* _send_trace_notify(): count, then emit when emit_trace_notify() says so (medium
 * aggregation: never for from-* points, and only if conntrack asked for a report). */
static __always_inline void trace_notify(struct __sk_buff *skb, __u8 obs, __u16 source, __u32 src_label,
					 __u32 dst_label, __u16 dst_id, __u8 reason, __u32 ifindex,
					 __u32 orig_ip4, int monitor, __u16 line, __u8 file)
{
	update_trace_metrics(skb, obs, line, file);
	if (!monitor || obs == TRACE_FROM_LXC || obs == TRACE_FROM_NETWORK)
		return;
	emit_notify(skb, CILIUM_NOTIFY_TRACE, obs, source, src_label, dst_label, dst_id, reason, ifindex,
		    orig_ip4, 0, 0);
}

/* send_trace_notify(): a trace at observation point ``obs``, counted at this line. */
#define send_trace_notify4(skb, obs, source, src_label, dst_label, dst_id, reason, ifindex, orig_ip4, monitor) \
	trace_notify(skb, obs, source, src_label, dst_label, dst_id, reason, ifindex, orig_ip4, monitor, \
		     __LINE__, __MAGIC_FILE__)

/* The to-endpoint trace of a delivery: in Cilium it comes from the destination
 * endpoint's own program (bpf_lxc.c, after its ingress policy), so it counts there
 * whichever of our programs inlined the delivery. */
#define send_trace_to_lxc(skb, source, src_label, dst_label, dst_id, reason, ifindex, orig_ip4, monitor) \
	trace_notify(skb, TRACE_TO_LXC, source, src_label, dst_label, dst_id, reason, ifindex, orig_ip4, \
		     monitor, __LINE__, FILE_BPF_LXC)

/* send_drop_notify(): count, report and drop (returns TC_ACT_SHOT). */
#define send_drop_notify(skb, source, src_label, dst_label, dst_id, reason, dir) \
	({ update_metrics((skb)->len, dir, reason, __LINE__, __MAGIC_FILE__); \
	   emit_notify(skb, CILIUM_NOTIFY_DROP, reason, source, src_label, dst_label, dst_id, 0, \
		       (skb)->ifindex, 0, __LINE__, __MAGIC_FILE__); \
	   TC_ACT_SHOT; })

/* ipv4_local_delivery() of bpf_lxc (LOCAL_DELIVERY_METRICS): the sender's egress forward. */
#define count_forward(skb, dir) update_metrics((skb)->len, dir, REASON_FORWARDED, __LINE__, __MAGIC_FILE__)

/* Socket LB trace events, cilium bpf/lib/trace_sock.h (trace-sock is on by default). */
#define XLATE_PRE_DIRECTION_FWD  1
#define XLATE_POST_DIRECTION_FWD 2
#define XLATE_PRE_DIRECTION_REV  3
#define XLATE_POST_DIRECTION_REV 4
#define L4_PROTOCOL_TCP 1
#define L4_PROTOCOL_UDP 2

/* struct trace_sock_notify of Cilium 1.17 (38 bytes, what pkg/monitor decodes), then
 * what labkit's reader needs to name the pod: the CPU and the socket's netns cookie
 * (Cilium resolves the pod from cgroup_id; our pods share their node's cgroup). */
struct trace_sock_notify {
	__u8  type;
	__u8  xlate_point;
	__u32 dst_ip[4];               /* union v6addr; IPv4 in the first word */
	__u16 dst_port;                /* host byte order */
	__u64 sock_cookie;
	__u64 cgroup_id;
	__u8  l4_proto;
	__u8  flags;                   /* bit 0: IPv6 */
	__u32 cpu;
	__u64 netns_cookie;
} __lk_packed;

#endif
