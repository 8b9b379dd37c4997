/* from-netdev / to-netdev: tc ingress and egress of each node's eth0, modelled on cilium
 * bpf/bpf_host.c (cil_from_netdev -> do_netdev -> handle_ipv4 -> ipv4_local_delivery;
 * cil_to_netdev -> handle_nat_fwd -> snat_v4_nat for BPF masquerade).
 *
 * Both count every packet (from-network: INGRESS "Interface"; to-network: EGRESS
 * Success), as Cilium's trace points do. from-network is never emitted to the monitor
 * (monitorAggregation=medium); to-network is, when the NAT's connection tracking of the
 * node's own traffic asks for a report. Cilium's to-netdev knows no identities here
 * without the host firewall: its traces say identity unknown->unknown.
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
	int ret, state = 0, monitor = 0;

	send_trace_notify4(skb, TRACE_FROM_NETWORK, HOST_EP_ID, 0, 0, 0, 0, skb->ingress_ifindex, 0, 0);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (parse_ipv4(skb, &p) < 0)
		return TC_ACT_OK;      /* let the stack judge what we cannot parse */
#ifdef ENABLE_MASQUERADE_IPV4
	if (p.daddr == node_ipv4()) {
		/* A reply to a masqueraded flow: back to the pod, or to the node itself
		 * (snat_v4_rev_nat); no entry: for the node (DROP_NAT_NO_MAPPING is let through). */
		ret = snat_v4_rev_nat(skb, &p, &state, &monitor);
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
	struct lk_pkt p = {};
	int state = 0, monitor = 0;
#ifdef ENABLE_MASQUERADE_IPV4
	struct ipv4_nat_target target = {};
	struct endpoint_info *src_ep;
	int ret;
#endif

	if (skb->protocol != bpf_htons(ETH_P_IP) || parse_ipv4(skb, &p) < 0)
		goto out;
#ifdef ENABLE_MASQUERADE_IPV4
	src_ep = lookup_ip4_endpoint(p.saddr);
	if (snat_v4_needs_masquerade(&p, src_ep, &target)) {
		ret = snat_v4_nat(skb, &p, &target, &state, &monitor);
		if (ret < 0)
			return send_drop_notify(skb, HOST_EP_ID, 0, 0, 0, -ret, METRIC_EGRESS);
	}
#endif
out:
	send_trace_notify4(skb, TRACE_TO_NETWORK, HOST_EP_ID, 0, 0, 0, state, skb->ifindex, 0, monitor);
	return TC_ACT_OK;
}
