/* from-netdev / to-netdev: tc ingress and egress of each node's eth0, modelled on cilium
 * bpf/bpf_host.c (cil_from_netdev -> handle_ipv4 -> ipv4_local_delivery; cil_to_netdev
 * -> handle_nat_fwd -> snat_v4_nat for BPF masquerade).
 */
#define __MAGIC_FILE__ FILE_BPF_HOST

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/eps.h"
#include "lib/pkt.h"
#include "lib/trace.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/l3.h"
#include "lib/nat.h"

#define HOST_EP_ID 0

int cil_from_netdev(struct __sk_buff *skb)
{
	struct lk_pkt p = {};
	struct endpoint_info *ep;
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (parse_ipv4(skb, &p) < 0)
		return TC_ACT_OK;      /* let the stack judge what we cannot parse */
#ifdef ENABLE_MASQUERADE_IPV4
	if (p.daddr == node_ipv4()) {
		/* A reply to a masqueraded flow: back to the pod (snat_v4_rev_nat). */
		ret = snat_v4_rev_nat(skb, &p);
		if (ret < 0)
			return send_drop_notify(skb, HOST_EP_ID, identity_of(p.saddr), 0, 0, -ret, METRIC_INGRESS);
	}
#endif
	ep = lookup_ip4_endpoint(p.daddr);
	if (!ep || (ep->flags & ENDPOINT_F_HOST))
		return TC_ACT_OK;      /* for the node itself */
	return ipv4_local_delivery(skb, &p, ep, identity_of(p.saddr));
}

int cil_to_netdev(struct __sk_buff *skb)
{
#ifdef ENABLE_MASQUERADE_IPV4
	struct lk_pkt p = {};
	struct endpoint_info *src_ep;
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (parse_ipv4(skb, &p) < 0)
		return TC_ACT_OK;
	src_ep = lookup_ip4_endpoint(p.saddr);
	if (!snat_v4_needs_masquerade(&p, src_ep))
		return TC_ACT_OK;
	ret = snat_v4_nat(skb, &p);
	if (ret < 0)
		return send_drop_notify(skb, HOST_EP_ID, identity_of(p.saddr), WORLD_ID, 0, -ret, METRIC_EGRESS);
	count_forward(skb, METRIC_EGRESS);
#endif
	return TC_ACT_OK;
}
