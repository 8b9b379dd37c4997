/* Trace and drop notifications and metrics, modelled on cilium bpf/lib/trace.h,
 * bpf/lib/drop.h and bpf/lib/metrics.h.
 *
 * Every event is one fixed-size ring buffer record: the 48-byte struct trace_notify of
 * Cilium (version 1, with orig_ip4) followed by up to TRACE_PAYLOAD_LEN bytes of the
 * packet. Drops use the same header with type CILIUM_NOTIFY_DROP, subtype = drop reason,
 * and the source line and file id of the drop in orig_pad1 / orig_pad2 (Cilium's
 * struct drop_notify carries line and file too, in its own layout).
 * Traces are aggregated as with Cilium's default monitorAggregation=medium (conntrack.h
 * decides); drops are always reported.
 */
#ifndef LK_TRACE_H
#define LK_TRACE_H

#include "maps.h"

#define CILIUM_NOTIFY_DROP  1
#define CILIUM_NOTIFY_TRACE 4
#define TRACE_PAYLOAD_LEN   128

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
	__u32 orig_pad3;
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
	n->orig_pad3 = 0;
	cap = skb->len;
	if (cap > TRACE_PAYLOAD_LEN)
		cap = TRACE_PAYLOAD_LEN;
	if (cap < 1 || bpf_skb_load_bytes(skb, 0, n->data, cap) < 0)
		cap = 0;
	n->len_cap = cap;
	cilium_events.ringbuf_submit(n, 0);
}

/* send_trace_notify4(): a trace at observation point ``obs``. */
#define send_trace_notify4(skb, obs, source, src_label, dst_label, dst_id, reason, ifindex, orig_ip4) \
	emit_notify(skb, CILIUM_NOTIFY_TRACE, obs, source, src_label, dst_label, dst_id, reason, \
		    ifindex, orig_ip4, 0, 0)

/* send_drop_notify(): count, report and drop (returns TC_ACT_SHOT). */
#define send_drop_notify(skb, source, src_label, dst_label, dst_id, reason, dir) \
	({ update_metrics((skb)->len, dir, reason, __LINE__, __MAGIC_FILE__); \
	   emit_notify(skb, CILIUM_NOTIFY_DROP, reason, source, src_label, dst_label, dst_id, 0, \
		       (skb)->ifindex, 0, __LINE__, __MAGIC_FILE__); \
	   TC_ACT_SHOT; })

#define count_forward(skb, dir) update_metrics((skb)->len, dir, REASON_FORWARDED, __LINE__, __MAGIC_FILE__)

#endif
