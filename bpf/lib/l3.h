/* Delivery to a local endpoint and native routing out of the node, modelled on cilium
 * bpf/lib/l3.h (ipv4_local_delivery), bpf/lib/common.h (redirect_ep) and bpf/lib/fib.h
 * (fib_redirect_v4).
 *
 * Cilium tail-calls the destination endpoint's policy program here; we have no policy,
 * so the ingress half (CT_INGRESS, rev-NAT of replies, the "-> endpoint" trace) runs
 * inline, on behalf of the destination endpoint (the event's source is its id, as in
 * Cilium where the trace comes from the destination's program).
 */
#ifndef LK_L3_H
#define LK_L3_H

#include "maps.h"
#include "pkt.h"
#include "conntrack.h"
#include "lb.h"
#include "trace.h"

/* bcc 0.26 declares bpf_redirect_neigh with its pre-5.10 three-argument signature. */
#define lk_redirect_neigh(ifindex, params, plen, flags) \
	((long (*)(__u32, struct bpf_redir_neigh *, int, __u64))BPF_FUNC_redirect_neigh)(ifindex, params, plen, flags)

static __always_inline int ipv4_local_delivery(struct __sk_buff *skb, struct lk_pkt *p,
					       struct endpoint_info *ep, __u32 src_label)
{
	__u16 rev_nat = 0;
	__u32 orig_ip = p->saddr;
	__u32 ifindex = ep->ifindex;
	__u16 lxc_id = ep->lxc_id;
	__u32 sec_id = ep->sec_id;
	int state, ret, monitor = 0;

	state = ct_ingress4(p, src_label, &rev_nat, &monitor);
	if (state == CT_REPLY && rev_nat) {
		ret = lb4_rev_nat(skb, p, rev_nat);
		if (ret < 0)
			return send_drop_notify(skb, lxc_id, src_label, sec_id, lxc_id, -ret, METRIC_INGRESS);
	}
	ret = ipv4_l3(skb, p, &ep->node_mac, &ep->mac);
	if (ret < 0)
		return send_drop_notify(skb, lxc_id, src_label, sec_id, lxc_id, -ret, METRIC_INGRESS);
	send_trace_to_lxc(skb, lxc_id, src_label, sec_id, lxc_id, state, ifindex, orig_ip, monitor);
	/* redirect_ep() with BPF host routing: straight into the pod's netns, skipping the
	 * lxc's transmit path (so tcpdump on the destination lxc never sees this packet). */
	return bpf_redirect_peer(ifindex, 0);
}

/* fib_redirect_v4(): route with the kernel FIB, then redirect to the egress of the
 * native device; without a resolved neighbour, let bpf_redirect_neigh resolve it. */
static __always_inline int fib_redirect_v4(struct __sk_buff *skb, struct lk_pkt *p, __u32 *oif)
{
	struct bpf_fib_lookup fib = {};
	int ret;

	fib.family = 2;                /* AF_INET */
	fib.l4_protocol = p->proto;
	fib.tot_len = bpf_ntohs(0);
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;
	fib.ifindex = skb->ingress_ifindex;
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		*oif = fib.ifindex;
		ret = ipv4_l3(skb, p, fib.smac, fib.dmac);
		if (ret < 0)
			return ret;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (ret == BPF_FIB_LKUP_RET_NO_NEIGH) {
		struct bpf_redir_neigh nh = {};
		__u16 old, new;

		*oif = fib.ifindex;
		nh.nh_family = 2;
		nh.ipv4_nh = fib.ipv4_dst;
		if (p->ttl <= 1)
			return -DROP_TTL_EXCEEDED;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, &old, sizeof(old)) < 0)
			return -DROP_INVALID;
		new = old - 1;
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, sizeof(__u16)) < 0)
			return -DROP_CSUM_L3;
		if (bpf_skb_store_bytes(skb, ETH_HLEN + 8, &new, sizeof(new), 0) < 0)
			return -DROP_WRITE_ERROR;
		return lk_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	return -DROP_NO_FIB;
}

#endif
