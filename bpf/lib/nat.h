/* BPF masquerade (SNAT to the node IP), modelled on cilium bpf/lib/nat.h.
 *
 * cilium_snat_v4_external holds two entries per masqueraded flow, keyed by plain packet
 * tuples (not reversed):
 *   OUT pod:p -> peer:q       XLATE_SRC node:n  (snat_v4_nat on to-netdev)
 *   IN  peer:q -> node:n      XLATE_DST pod:p   (snat_v4_rev_nat on from-netdev)
 * The original port is kept when free (__snat_try_keep_port), else a random one in
 * 32768-60999 (NODEPORT_PORT_MIN_NAT..MAX_NAT) is tried a few times.
 */
#ifndef LK_NAT_H
#define LK_NAT_H

#include "maps.h"
#include "pkt.h"
#include "conntrack.h"

#define SNAT_COLLISION_RETRIES 8
#define NAT_PORT_MIN 32768
#define NAT_PORT_SPAN (61000 - 32768)

/* snat_v4_needs_masquerade(): a local pod talking to a destination outside the native
 * routing CIDR that is not a cluster node. */
static __always_inline int snat_v4_needs_masquerade(struct lk_pkt *p, struct endpoint_info *src_ep)
{
	struct remote_endpoint_info *info;

	if (!src_ep || (src_ep->flags & ENDPOINT_F_HOST))
		return 0;
	if (in_subnet(p->daddr, NATIVE_CIDR_NET, NATIVE_CIDR_MASK))
		return 0;              /* IPV4_SNAT_EXCLUSION_DST_CIDR */
	info = lookup_ip4_remote_endpoint(p->daddr);
	if (info && (info->sec_identity == REMOTE_NODE_ID || info->sec_identity == HOST_ID))
		return 0;
	return 1;
}

/* snat_v4_init_tuple(): NAT keys are plain packet tuples (not reversed like CT keys). */
static __always_inline void snat_v4_init_tuple(struct ipv4_ct_tuple *t, const struct lk_pkt *p, __u8 dir)
{
	t->saddr = p->saddr;
	t->daddr = p->daddr;
	t->sport = p->sport;
	t->dport = p->dport;
	t->nexthdr = p->proto;
	t->flags = dir;
}

static __always_inline int snat_v4_nat(struct __sk_buff *skb, struct lk_pkt *p)
{
	struct ipv4_ct_tuple ok = {}, rk = {};
	struct ipv4_nat_entry *e, ostate = {}, rstate = {};
	__u16 port;
	int ret, i;

	if (!p->has_ports)
		return -DROP_NAT_NO_MAPPING;
	snat_v4_init_tuple(&ok, p, TUPLE_F_OUT);
	e = cilium_snat_v4_external.lookup(&ok);
	if (e) {
		port = e->port;
	} else {
		/* snat_v4_new_mapping() */
		rk.saddr = p->daddr;
		rk.sport = p->dport;
		rk.daddr = node_ipv4();
		rk.nexthdr = p->proto;
		rk.flags = TUPLE_F_IN;
		port = p->sport;
#pragma unroll
		for (i = 0; i < SNAT_COLLISION_RETRIES; i++) {
			rk.dport = port;
			if (!cilium_snat_v4_external.lookup(&rk))
				break;
			port = bpf_htons(NAT_PORT_MIN + bpf_get_prandom_u32() % NAT_PORT_SPAN);
		}
		if (i == SNAT_COLLISION_RETRIES)
			return -DROP_NAT_NO_MAPPING;
		rstate.created = bpf_mono_now();
		rstate.addr = p->saddr;
		rstate.port = p->sport;
		ostate.created = rstate.created;
		ostate.addr = node_ipv4();
		ostate.port = port;
		cilium_snat_v4_external.update(&rk, &rstate);
		cilium_snat_v4_external.update(&ok, &ostate);
	}
	ret = rewrite_addr(skb, p, 1, node_ipv4());
	if (ret < 0)
		return ret;
	return rewrite_port(skb, p, 1, port);
}

/* snat_v4_rev_nat(): returns 1 if the packet was translated back, 0 if no entry. */
static __always_inline int snat_v4_rev_nat(struct __sk_buff *skb, struct lk_pkt *p)
{
	struct ipv4_ct_tuple rk = {};
	struct ipv4_nat_entry *e;
	__u32 addr;
	__u16 port;
	int ret;

	if (!p->has_ports)
		return 0;
	snat_v4_init_tuple(&rk, p, TUPLE_F_IN);
	e = cilium_snat_v4_external.lookup(&rk);
	if (!e)
		return 0;
	addr = e->addr;
	port = e->port;
	ret = rewrite_addr(skb, p, 0, addr);
	if (ret < 0)
		return ret;
	ret = rewrite_port(skb, p, 0, port);
	return ret < 0 ? ret : 1;
}

#endif
