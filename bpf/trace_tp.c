/* labkit trace, kernel side: one program per tracepoint, modelled on pwru's
 * kprobe_skb_* programs (pwru bpf/kprobe_pwru.c) with --filter-track-skb: an event
 * only for skbs our tc programs tracked (lkt_skbs), so no other traffic leaves the kernel.
 *
 * Field offsets come from the tracepoints' formats in tracefs (OFF_<tp>_<field>, -D
 * flags from labkit/embedded/ebpf/tracefs.py); __data_loc strings are located at run time
 * from their u32 (offset | length << 16), as the kernel's __get_str does.
 *
 * Tracepoints without an skb (fib:fib_table_lookup, neigh:*) belong to the tracked skb
 * this CPU is working on (lkt_cur, set by every tracked event), and only when the
 * addresses agree: a route lookup for that packet's source and destination while no
 * other skb came in between; a neighbour for its next hop (the ARP request sent for it
 * may come in between).
 */
#include "lib/skbtrace.h"

#define TP_U64(ctx, tp, f) (*(__u64 *)((char *)(ctx) + OFF_##tp##_##f))
#define TP_U32(ctx, tp, f) (*(__u32 *)((char *)(ctx) + OFF_##tp##_##f))

static __always_inline void tp_read(void *ctx, __u32 off, void *dst, __u32 size)
{
	bpf_probe_read_kernel(dst, size, (char *)ctx + off);
}

/* A __data_loc char[] field (the device name) into name[16]. */
static __always_inline void tp_str(void *ctx, __u32 off, char *name)
{
	__u32 loc = 0;

	bpf_probe_read_kernel(&loc, sizeof(loc), (char *)ctx + off);
	bpf_probe_read_kernel_str(name, 16, (char *)ctx + (loc & 0xffff));
}

/* Is this event still the tracked packet's? Its device must be one of the lab's, or the
 * peer a lab veth just handed it to, or (at the end of its way, where skb->dev may be
 * gone) the one it was last seen on, soon after. Otherwise the address is another skb's. */
static __always_inline int tp_ours(struct lkt_skb *t, __u16 kind, __u64 dev)
{
	__u64 now = bpf_ktime_get_ns();
	__u8 one = 1;

	if (dev && lkt_devs.lookup(&dev))
		return 1;
	if ((kind == LKT_NETIF_RX || kind == LKT_NETIF_RECEIVE) && dev && t->last_kind == LKT_NET_DEV_XMIT &&
	    now - t->last_ts < LKT_CROSS_NS) {
		lkt_devs.update(&dev, &one);  /* the other end of a lab veth is the lab's too */
		return 1;
	}
	if (kind == LKT_KFREE_SKB || kind == LKT_CONSUME_SKB || kind == LKT_TCP_SEND_RESET ||
	    kind == LKT_COPY_DATAGRAM)
		return (!dev || dev == t->last_dev) && now - t->last_ts < LKT_FRESH_NS;
	return 0;
}

/* An skb tracepoint: an event if the skb is tracked; frees (and delivery to the
 * application) end the tracking. */
static __always_inline int tp_skb(void *ctx, __u64 skb, __u16 kind, __u32 len, int name_off, __s32 arg,
				  __u32 arg2, __u64 location)
{
	struct lkt_skb *t = lkt_skbs.lookup(&skb);
	struct lkt_event *e;
	__u64 dev;
	int last = kind == LKT_KFREE_SKB || kind == LKT_CONSUME_SKB || kind == LKT_COPY_DATAGRAM;

	if (!t) {
		lkt_cur_set(skb, 0, 0);
		return 0;
	}
	dev = lkt_skb_dev(skb);
	if (!tp_ours(t, kind, dev)) {
		lkt_skbs.delete(&skb);
		lkt_cur_set(skb, 0, 0);
		return 0;
	}
	if (last) {
		lkt_cur_set(skb, 0, 0);
	} else {
		lkt_seen(t, kind, dev);
		lkt_cur_set(skb, t, dev);
	}
	e = lkt_reserve(kind);
	if (e) {
		e->skb = skb;
		e->packet = t->packet;
		e->dev = dev;
		e->ifindex = lkt_dev_ifindex(dev);
		e->len = len;
		e->arg = arg;
		e->arg2 = arg2;
		e->location = location;
		e->addr1 = t->saddr;
		e->addr2 = t->daddr;
		if (name_off >= 0)
			tp_str(ctx, name_off, e->name);
		lkt_submit(e);
	}
	if (last)
		lkt_skbs.delete(&skb);
	return 0;
}

int lkt_tp_net_dev_queue(void *ctx)
{
	return tp_skb(ctx, TP_U64(ctx, net_dev_queue, skbaddr), LKT_NET_DEV_QUEUE, TP_U32(ctx, net_dev_queue, len),
		      OFF_net_dev_queue_name, 0, 0, 0);
}

int lkt_tp_net_dev_start_xmit(void *ctx)
{
	__u16 proto = 0;

	tp_read(ctx, OFF_net_dev_start_xmit_protocol, &proto, sizeof(proto));
	return tp_skb(ctx, TP_U64(ctx, net_dev_start_xmit, skbaddr), LKT_NET_DEV_XMIT,
		      TP_U32(ctx, net_dev_start_xmit, len), OFF_net_dev_start_xmit_name, 0, proto, 0);
}

int lkt_tp_netif_rx(void *ctx)
{
	return tp_skb(ctx, TP_U64(ctx, netif_rx, skbaddr), LKT_NETIF_RX, TP_U32(ctx, netif_rx, len),
		      OFF_netif_rx_name, 0, 0, 0);
}

int lkt_tp_netif_receive_skb(void *ctx)
{
	return tp_skb(ctx, TP_U64(ctx, netif_receive_skb, skbaddr), LKT_NETIF_RECEIVE,
		      TP_U32(ctx, netif_receive_skb, len), OFF_netif_receive_skb_name, 0, 0, 0);
}

int lkt_tp_kfree_skb(void *ctx)
{
	__u32 reason = 0;

	tp_read(ctx, OFF_kfree_skb_reason, &reason, sizeof(reason));
	return tp_skb(ctx, TP_U64(ctx, kfree_skb, skbaddr), LKT_KFREE_SKB, 0, -1, reason, 0,
		      TP_U64(ctx, kfree_skb, location));
}

int lkt_tp_consume_skb(void *ctx)
{
	return tp_skb(ctx, TP_U64(ctx, consume_skb, skbaddr), LKT_CONSUME_SKB, 0, -1, 0, 0,
		      TP_U64(ctx, consume_skb, location));
}

int lkt_tp_tcp_send_reset(void *ctx)
{
	__u32 reason = 0;

	tp_read(ctx, OFF_tcp_send_reset_reason, &reason, sizeof(reason));
	return tp_skb(ctx, TP_U64(ctx, tcp_send_reset, skbaddr), LKT_TCP_SEND_RESET, 0, -1, reason, 0, 0);
}

int lkt_tp_skb_copy_datagram_iovec(void *ctx)
{
	return tp_skb(ctx, TP_U64(ctx, skb_copy_datagram_iovec, skbaddr), LKT_COPY_DATAGRAM,
		      TP_U32(ctx, skb_copy_datagram_iovec, len), -1, 0, 0, 0);
}

/* fib:fib_table_lookup: a route lookup for the packet at hand (the stack's, or the
 * datapath's bpf_fib_lookup, which runs fib_table_lookup too). */
int lkt_tp_fib_table_lookup(void *ctx)
{
	struct lkt_cur *c = lkt_cur_live(1);
	struct lkt_event *e;
	__u32 src = 0, dst = 0, gw = 0, tb = 0, oif = 0;
	__u64 gw6[2] = {};
	__s32 err = 0;

	if (!c)
		return 0;
	tp_read(ctx, OFF_fib_table_lookup_src, &src, sizeof(src));
	tp_read(ctx, OFF_fib_table_lookup_dst, &dst, sizeof(dst));
	/* the packet's own lookup, or the reverse-path check of its source */
	if (!((src == c->saddr && dst == c->daddr) || (src == c->daddr && dst == c->saddr)))
		return 0;
	tp_read(ctx, OFF_fib_table_lookup_gw4, &gw, sizeof(gw));
	tp_read(ctx, OFF_fib_table_lookup_gw6, gw6, sizeof(gw6));
	if (gw6[0] | gw6[1])
		gw = 0;                /* no gateway: the kernel left gw4 and gw6 unwritten */
	tp_read(ctx, OFF_fib_table_lookup_tb_id, &tb, sizeof(tb));
	tp_read(ctx, OFF_fib_table_lookup_err, &err, sizeof(err));
	tp_read(ctx, OFF_fib_table_lookup_oif, &oif, sizeof(oif));
	if (err == 0 && dst == c->daddr)
		c->nexthop = gw ? gw : dst;
	e = lkt_reserve(LKT_FIB_LOOKUP);
	if (!e)
		return 0;
	e->skb = c->skb;
	e->packet = c->packet;
	e->dev = c->dev;
	e->ifindex = lkt_dev_ifindex(c->dev);
	e->arg = err;
	e->arg2 = tb;
	e->addr1 = src;
	e->addr2 = dst;
	e->addr3 = gw;
	e->arg3 = oif;
	tp_read(ctx, OFF_fib_table_lookup_name, e->name, sizeof(e->name));
	lkt_submit(e);
	return 0;
}

/* neigh:* for the tracked packet's next hop: the neighbour layer resolving it. */
static __always_inline int tp_neigh(void *ctx, __u16 kind, __u32 key_off, __u32 dev_off, __s32 arg, __u32 arg2)
{
	struct lkt_cur *c = lkt_cur_live(0);
	struct lkt_event *e;
	__u32 key = 0;

	if (!c || !c->nexthop)
		return 0;
	tp_read(ctx, key_off, &key, sizeof(key));
	if (key != c->nexthop)
		return 0;
	e = lkt_reserve(kind);
	if (!e)
		return 0;
	e->skb = c->last_skb;
	e->packet = c->packet;
	e->dev = c->dev;
	e->ifindex = lkt_dev_ifindex(c->dev);
	e->arg = arg;
	e->arg2 = arg2;
	e->addr1 = key;
	tp_str(ctx, dev_off, e->name);
	lkt_submit(e);
	return 0;
}

int lkt_tp_neigh_create(void *ctx)
{
	__u8 created = 0;

	tp_read(ctx, OFF_neigh_create_created, &created, sizeof(created));
	return tp_neigh(ctx, LKT_NEIGH_CREATE, OFF_neigh_create_primary_key4, OFF_neigh_create_dev, created, 0);
}

int lkt_tp_neigh_event_send_done(void *ctx)
{
	__u8 state = 0;
	__u32 err = 0;

	tp_read(ctx, OFF_neigh_event_send_done_nud_state, &state, sizeof(state));
	tp_read(ctx, OFF_neigh_event_send_done_err, &err, sizeof(err));
	return tp_neigh(ctx, LKT_NEIGH_SEND_DONE, OFF_neigh_event_send_done_primary_key4,
			OFF_neigh_event_send_done_dev, err, state);
}
