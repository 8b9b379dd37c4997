/* from-container: tc ingress of every lxc (packets leaving a pod), modelled on cilium
 * bpf/bpf_lxc.c: cil_from_container -> tail_handle_ipv4 (per-packet LB, CT egress) ->
 * handle_ipv4_from_lxc (ipcache, local delivery or native routing).
 *
 * One object per node, shared by all the node's lxcs: Cilium compiles one per endpoint
 * with LXC_ID/SECLABEL baked in; we look the endpoint up by the lxc it came in on
 * (labkit_lxc_by_ifindex), and the packet's source address must be that endpoint's:
 * Cilium's is_valid_lxc_src_ipv4() check ("Invalid source ip").
 */
#define __MAGIC_FILE__ FILE_BPF_LXC

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/eps.h"
#include "lib/pkt.h"
#include "lib/trace.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/l3.h"
#include "lib/arp.h"

static __always_inline int handle_ipv4_from_lxc(struct __sk_buff *skb)
{
	struct lk_pkt p = {};
	struct endpoint_info *src_ep, *ep;
	__u32 src_label, dst_label, oif = 0;
	__u16 src_id, rev_nat = 0, ct_rev_nat = 0;
	int ret, state, monitor = 0;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return send_drop_notify(skb, 0, 0, 0, 0, -ret, METRIC_EGRESS);
	{
		__u32 ifindex = skb->ingress_ifindex;

		src_ep = labkit_lxc_by_ifindex.lookup(&ifindex);
	}
	src_label = src_ep ? src_ep->sec_id : 0;
	src_id = src_ep ? src_ep->lxc_id : 0;
	/* is_valid_lxc_src_ipv4(): the endpoint's own address only (SECLABEL -> unknown) */
	ep = lookup_ip4_endpoint(p.saddr);
	if (!src_ep || !ep || ep->lxc_id != src_id)
		return send_drop_notify(skb, src_id, src_label, 0, 0, DROP_INVALID_SIP, METRIC_EGRESS);

#ifdef ENABLE_PER_PACKET_LB
	/* __per_packet_lb_svc_xlate_4(): socket LB is off, so services are DNATed here. */
	ret = lb4_local(skb, &p, &rev_nat);
	if (ret < 0)
		return send_drop_notify(skb, src_id, src_label, 0, 0, -ret, METRIC_EGRESS);
#endif
	/* With socket LB, connect()/sendmsg() already carried the backend. A packet to a
	 * service address that no service serves (a ping, another port) is not special
	 * here, as in Cilium's bpf_lxc: it is world traffic, leaves by the FIB (and is
	 * masqueraded), and nothing answers it. */

	state = ct_egress4(&p, src_label, rev_nat, &ct_rev_nat, &monitor);

	ep = lookup_ip4_endpoint(p.daddr);
	if (ep && !(ep->flags & ENDPOINT_F_HOST)) {
		count_forward(skb, METRIC_EGRESS);  /* LOCAL_DELIVERY_METRICS */
		return ipv4_local_delivery(skb, &p, ep, src_label);
	}
	if (ep) {
		/* The router IP or the node IP: to the node's own stack. */
		send_trace_notify4(skb, TRACE_TO_STACK, src_id, src_label, HOST_ID, 0, state, 0, 0, monitor);
		return TC_ACT_OK;
	}
	/* Native routing with BPF host routing: FIB lookup + redirect to eth0. The ipcache
	 * gives the destination's identity (for policy in Cilium; for the trace here). */
	dst_label = identity_of(p.daddr);
	ret = fib_redirect_v4(skb, &p, &oif);
	if (ret < 0)
		return send_drop_notify(skb, src_id, src_label, dst_label, 0, -ret, METRIC_EGRESS);
	send_trace_notify4(skb, TRACE_TO_NETWORK, src_id, src_label, dst_label, 0, state, oif, 0, monitor);
	return ret;
}

int cil_from_container(struct __sk_buff *skb)
{
	if (skb->protocol == bpf_htons(ETH_P_IP))
		return handle_ipv4_from_lxc(skb);
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return arp_respond(skb);
	return send_drop_notify(skb, 0, 0, 0, 0, DROP_UNKNOWN_L3, METRIC_EGRESS);
}
