/* ARP responder, modelled on cilium bpf/lib/arp.h (arp_respond) as used by bpf_lxc:
 * every ARP request from a pod (for its gateway, the router IP, or anything else) is
 * answered with the lxc's MAC, the endpoint's "nodemac", and sent back out of the lxc. */
#ifndef LK_ARP_H
#define LK_ARP_H

#include "eps.h"

struct arp_eth {
	__u8  ar_sha[ETH_ALEN];
	__u32 ar_sip;
	__u8  ar_tha[ETH_ALEN];
	__u32 ar_tip;
} __lk_packed;

static __always_inline int arp_respond(struct __sk_buff *skb)
{
	struct arphdr arp;
	struct arp_eth ae, reply;
	struct endpoint_info *ep;
	__u16 op = bpf_htons(ARPOP_REPLY);

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &arp, sizeof(arp)) < 0)
		return TC_ACT_OK;
	if (arp.ar_op != bpf_htons(ARPOP_REQUEST) || arp.ar_hln != ETH_ALEN || arp.ar_pln != 4 ||
	    arp.ar_pro != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(arp), &ae, sizeof(ae)) < 0)
		return TC_ACT_OK;
	if (ae.ar_tip == ae.ar_sip)
		return TC_ACT_OK;      /* gratuitous ARP / address probe: let it be */
	ep = lookup_ip4_endpoint(ae.ar_sip);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;
	__builtin_memcpy(reply.ar_sha, &ep->node_mac, ETH_ALEN);
	reply.ar_sip = ae.ar_tip;
	__builtin_memcpy(reply.ar_tha, ae.ar_sha, ETH_ALEN);
	reply.ar_tip = ae.ar_sip;
	if (bpf_skb_store_bytes(skb, 0, ae.ar_sha, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, &ep->node_mac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + 6, &op, sizeof(op), 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + sizeof(arp), &reply, sizeof(reply), 0) < 0)
		return TC_ACT_SHOT;
	/* ctx_redirect(ctx, ctx_get_ifindex(ctx), 0): back out of the lxc, to the pod. */
	return bpf_redirect(skb->ifindex, 0);
}

#endif
