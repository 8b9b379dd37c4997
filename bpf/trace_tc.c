/* labkit trace, tc side: tc ingress and egress of every interface of the lab (tcx, put
 * first in line, before the datapath's own program), modelled on pwru's pcap-filter
 * injection plus --filter-track-skb (pwru bpf/kprobe_pwru.c: filter_pcap_ebpf_l2,
 * handle_everything -> set_skb_btf / track_skb).
 *
 * These programs never change a packet or its fate: they read its bytes, decide whether
 * it is one to follow, record its skb address in lkt_skbs, emit an event and hand the
 * skb on (TCX_NEXT) to the next program, the datapath's.
 *
 * A packet is followed when
 *   - its skb is already tracked (it passed an earlier hook), or
 *   - it is the same packet in a new skb (lkt_fps: a clone or a copy), or
 *   - it matches the filter (LKT_FILTER) here; with points given (LKT_F_FLOWS) only at
 *     those points (lkt_pickup), and then every packet of its flow, both directions, is
 *     followed from wherever it is first seen (lkt_flows).
 */
#include "lib/skbtrace.h"
#include "lib/pktfilter.h"

#define LKT_TCX_NEXT -1                /* TC_ACT_UNSPEC: run the next program */

static __always_inline void lkt_flow_key(const struct lkt_pkt *p, struct lkt_flow *k)
{
	k->proto = p->proto;
	if (p->saddr < p->daddr || (p->saddr == p->daddr && p->sport <= p->dport)) {
		k->a = p->saddr;
		k->b = p->daddr;
		k->aport = p->sport;
		k->bport = p->dport;
	} else {
		k->a = p->daddr;
		k->b = p->saddr;
		k->aport = p->dport;
		k->bport = p->sport;
	}
}

static __always_inline __u64 lkt_new_packet(void)
{
	__u32 zero = 0;
	__u64 *n = lkt_counter.lookup(&zero);

	if (!n)
		return 0;
	*n += 1;                       /* this CPU's counter: no atomics */
	return ((__u64)bpf_get_smp_processor_id() << 32) | *n;
}

/* Should an untracked packet be picked up here? */
static __always_inline int lkt_pick(struct lkt_config *cfg, struct __sk_buff *skb, struct lkt_pkt *p,
				    __u64 here)
{
	struct lkt_flow k = {};
	struct lkt_where w = {};
	__u8 one = 1;

	if (!(cfg->flags & LKT_F_FLOWS))
		return lkt_match(p);
	lkt_flow_key(p, &k);
	if (p->ethertype == ETH_P_IP && lkt_flows.lookup(&k))
		return 1;              /* a packet of a flow picked up earlier */
	w.netns = here;
	w.ifindex = skb->ifindex;
	if (!lkt_pickup.lookup(&w) || !lkt_match(p))
		return 0;
	if (p->ethertype == ETH_P_IP)
		lkt_flows.update(&k, &one);
	return 1;
}

/* Which namespace of the lab this copy of the program is attached in: tracer.py loads one
 * copy per namespace with this placeholder replaced by the namespace's number, as Cilium's
 * loader patches per-endpoint constants into its object. (bpf_get_netns_cookie would name
 * the namespace of skb->sk, which veths keep: the client pod's, all the way.) */
#define LKT_NETNS_PLACEHOLDER 0x6c6b746e65746e73ULL   /* "lktnetns" */

static __always_inline int lkt_same_packet(const struct lkt_fp *a, const struct lkt_fp *b)
{
	return a->seq == b->seq && a->ack == b->ack && a->ip_id == b->ip_id && a->tot_len == b->tot_len &&
	       a->proto == b->proto && a->tcp_flags == b->tcp_flags;
}

static __always_inline int lkt_hook(struct __sk_buff *skb, __u16 kind)
{
	__u32 zero = 0;
	__u64 addr = (__u64)skb;       /* the kernel's struct sk_buff *: what tracepoints report */
	__u64 here = LKT_NETNS_PLACEHOLDER;
	struct lkt_config *cfg = lkt_config.lookup(&zero);
	struct lkt_skb fresh = {}, *t;
	struct lkt_pkt p = {};
	struct lkt_fp fp = {};
	struct lkt_flow k = {};
	struct lkt_event *e;
	__u64 dev;
	__u8 one = 1;

	asm volatile("" : "+r"(here));  /* one patchable constant, never folded */
	if (!cfg || lkt_parse(skb, &p) < 0)
		return LKT_TCX_NEXT;
	dev = lkt_skb_dev(addr);
	if (!lkt_devs.lookup(&dev))
		lkt_devs.update(&dev, &one);
	fp.seq = p.seq;
	fp.ack = p.ack;
	fp.ip_id = p.ip_id;
	fp.tot_len = p.tot_len;
	fp.proto = p.proto;
	fp.tcp_flags = p.tcp_flags;
	t = lkt_skbs.lookup(&addr);
	if (t && !lkt_same_packet(&t->fp, &fp))
		t = 0;                 /* the address came back for another packet */
	if (!t) {
		__u64 *same = 0;

		if (p.ethertype == ETH_P_IP)
			same = lkt_fps.lookup(&fp);
		if (same) {
			fresh.packet = *same;
		} else if (lkt_pick(cfg, skb, &p, here)) {
			fresh.packet = lkt_new_packet();
			if (p.ethertype == ETH_P_IP)
				lkt_fps.update(&fp, &fresh.packet);
		} else {
			lkt_skbs.delete(&addr);
			lkt_cur_set(addr, 0, 0);
			return LKT_TCX_NEXT;
		}
		fresh.fp = fp;
		lkt_skbs.update(&addr, &fresh);
		t = lkt_skbs.lookup(&addr);
		if (!t)
			return LKT_TCX_NEXT;
	}
	t->saddr = p.saddr;            /* NAT may have rewritten them since the last hook */
	t->daddr = p.daddr;
	lkt_seen(t, kind, dev);
	if ((cfg->flags & LKT_F_FLOWS) && p.ethertype == ETH_P_IP && p.has_ports) {
		lkt_flow_key(&p, &k);  /* the flow as it looks here (after NAT) is followed too */
		lkt_flows.update(&k, &one);
	}
	lkt_cur_set(addr, t, dev);
	e = lkt_reserve(kind);
	if (!e)
		return LKT_TCX_NEXT;
	e->skb = addr;
	e->packet = t->packet;
	e->dev = dev;
	e->netns = here;
	e->ifindex = skb->ifindex;
	e->len = skb->len;
	e->addr1 = p.saddr;
	e->addr2 = p.daddr;
	e->seq = p.seq;
	e->ack = p.ack;
	e->sport = p.sport;
	e->dport = p.dport;
	e->ethertype = p.ethertype;
	e->ip_id = p.ip_id;
	e->proto = p.proto;
	e->tcp_flags = p.tcp_flags;
	lkt_submit(e);
	return LKT_TCX_NEXT;
}

int lkt_tc_ingress(struct __sk_buff *skb)
{
	return lkt_hook(skb, LKT_TC_INGRESS);
}

int lkt_tc_egress(struct __sk_buff *skb)
{
	return lkt_hook(skb, LKT_TC_EGRESS);
}
