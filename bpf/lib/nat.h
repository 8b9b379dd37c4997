/* BPF masquerade (SNAT to the node IP), modelled on cilium bpf/lib/nat.h.
 *
 * cilium_snat_v4_external holds two entries per masqueraded flow, keyed by plain packet
 * tuples (not reversed):
 *   OUT pod:p -> peer:q       XLATE_SRC node:n  (snat_v4_nat on to-netdev)
 *   IN  peer:q -> node:n      XLATE_DST pod:p   (snat_v4_rev_nat on from-netdev)
 * What is masqueraded (snat_v4_needs_masquerade):
 *   - the node's own traffic (source = IPV4_MASQUERADE, the node IP): an entry that keeps
 *     address and port, with NeedsCT=1, which also tracks the connection in the CT map
 *     (snat_v4_nat_handle_mapping); kubelet's and the agent's connections to the API
 *     server are the `bpf nat list` entries of a real node. Server replies (a source
 *     port below NAT_MIN_EGRESS) are left alone (snat_v4_nat_can_skip);
 *   - a local pod's traffic to outside ipv4NativeRoutingCIDR that is not a node.
 * The new source port: the original one when it is in NODEPORT_PORT_MIN_NAT..MAX_NAT
 * (32768-65535) and free, else a random one in that range, tried SNAT_COLLISION_RETRIES
 * times (__snat_try_keep_port, __snat_clamp_port_range): so a ping's echo id, usually
 * below 32768, is remapped.
 */
#ifndef LK_NAT_H
#define LK_NAT_H

#include "maps.h"
#include "pkt.h"
#include "conntrack.h"
#include "trace.h"

#define SNAT_COLLISION_RETRIES 32
#define NODEPORT_PORT_MIN_NAT  32768
#define NODEPORT_PORT_MAX_NAT  65535
#define NAT_MIN_EGRESS         NODEPORT_PORT_MIN_NAT

struct ipv4_nat_target {
	__u32 addr;
	__u8  needs_ct;                /* the node's own traffic */
	__u8  from_local_endpoint;     /* a pod's traffic */
};

/* snat_v4_needs_masquerade(): 1 (with *target filled) if this packet leaving by the native
 * device must be SNATed. */
static __always_inline int snat_v4_needs_masquerade(struct lk_pkt *p, struct endpoint_info *src_ep,
						    struct ipv4_nat_target *target)
{
	struct remote_endpoint_info *info;

	if (p->saddr == node_ipv4()) {
		target->addr = p->saddr;
		target->needs_ct = 1;
		return 1;
	}
	if (in_subnet(p->daddr, NATIVE_CIDR_NET, NATIVE_CIDR_MASK))
		return 0;              /* IPV4_SNAT_EXCLUSION_DST_CIDR */
	if (!src_ep || (src_ep->flags & ENDPOINT_F_HOST))
		return 0;
	info = lookup_ip4_remote_endpoint(p->daddr);
	if (info && (info->sec_identity == REMOTE_NODE_ID || info->sec_identity == HOST_ID ||
		     info->sec_identity == KUBE_APISERVER_ID))
		return 0;              /* another node: not masqueraded */
	target->addr = node_ipv4();
	target->from_local_endpoint = 1;
	return 1;
}

/* snat_v4_nat_can_skip(): the node answering as a server keeps its port. */
static __always_inline int snat_v4_nat_can_skip(const struct ipv4_nat_target *target, const struct lk_pkt *p)
{
	return !target->from_local_endpoint && bpf_ntohs(p->sport) < NAT_MIN_EGRESS;
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

/* __snat_clamp_port_range() */
static __always_inline __u16 snat_clamp_port_range(__u32 val)
{
	return NODEPORT_PORT_MIN_NAT + val % (NODEPORT_PORT_MAX_NAT - NODEPORT_PORT_MIN_NAT + 1);
}

/* snat_v4_new_mapping(): the reverse (IN) entry first, on a free port, then the OUT one. */
static __always_inline int snat_v4_new_mapping(struct ipv4_ct_tuple *ok, struct lk_pkt *p,
					       const struct ipv4_nat_target *target, __u16 *port_out)
{
	struct ipv4_ct_tuple rk = {};
	struct ipv4_nat_entry ostate = {}, rstate = {};
	__u16 port = bpf_ntohs(p->sport);
	int i;

	/* __snat_try_keep_port() */
	if (port < NODEPORT_PORT_MIN_NAT)
		port = snat_clamp_port_range(bpf_get_prandom_u32());
	rk.saddr = p->daddr;
	rk.sport = p->dport;
	rk.daddr = target->addr;
	rk.nexthdr = p->proto;
	rk.flags = TUPLE_F_IN;
	for (i = 0; i < SNAT_COLLISION_RETRIES; i++) {
		rk.dport = bpf_htons(port);
		if (!cilium_snat_v4_external.lookup(&rk))
			break;
		port = snat_clamp_port_range(i ? port + 1 : bpf_get_prandom_u32());
	}
	if (i == SNAT_COLLISION_RETRIES)
		return -DROP_NAT_NO_MAPPING;
	rstate.created = bpf_mono_now();
	rstate.needs_ct = target->needs_ct;
	rstate.addr = p->saddr;
	rstate.port = p->sport;
	ostate.created = rstate.created;
	ostate.needs_ct = target->needs_ct;
	ostate.addr = target->addr;
	ostate.port = bpf_htons(port);
	cilium_snat_v4_external.update(&rk, &rstate);
	cilium_snat_v4_external.update(ok, &ostate);
	*port_out = ostate.port;
	return 0;
}

/* snat_v4_nat(): SNAT on to-netdev; with needs_ct the connection is tracked in the CT map
 * too (its OUT entry, SourceSecurityID 0) and *monitor says whether to trace it.
 * Returns 0 (or 1: not translated) or -DROP_*. */
static __always_inline int snat_v4_nat(struct __sk_buff *skb, struct lk_pkt *p, const struct ipv4_nat_target *target,
				       int *state, int *monitor)
{
	struct ipv4_ct_tuple ok = {};
	struct ipv4_nat_entry *e;
	__u16 port;
	int ret;

	if (!p->has_ports)
		return -DROP_NAT_NO_MAPPING;
	if (snat_v4_nat_can_skip(target, p))
		return 1;              /* NAT_PUNT_TO_STACK */
	if (target->needs_ct) {
		/* snat_v4_nat_handle_mapping(): ct_lazy_lookup4(CT_EGRESS) + ct_create4() */
		struct ipv4_ct_tuple ck = {};
		struct ct_entry *ce;
		int reopened = 0;

		ct_key_client(&ck, p, TUPLE_F_OUT);
		ce = ct_map_lookup(&ck);
		if (ce) {
			*monitor = ct_update(ce, p, CT_DIR_EGRESS, &reopened);
			*state = reopened ? CT_NEW : CT_ESTABLISHED;
		} else {
			ct_key_server(&ck, p, TUPLE_F_IN);
			ce = ct_map_lookup(&ck);
			if (ce) {
				*monitor = ct_update(ce, p, CT_DIR_EGRESS, &reopened);
				*state = CT_REPLY;
			} else {
				ct_key_client(&ck, p, TUPLE_F_OUT);
				ct_create(&ck, p, CT_DIR_EGRESS, 0, 0);
				*monitor = 1;
				*state = CT_NEW;
			}
		}
	}
	snat_v4_init_tuple(&ok, p, TUPLE_F_OUT);
	e = cilium_snat_v4_external.lookup(&ok);
	if (e) {
		port = e->port;
	} else {
		ret = snat_v4_new_mapping(&ok, p, target, &port);
		if (ret < 0)
			return ret;
	}
	ret = rewrite_addr(skb, p, 1, target->addr);
	if (ret < 0)
		return ret;
	return rewrite_port(skb, p, 1, port);
}

/* snat_v4_rev_nat(): returns 1 if the packet was translated back, 0 if no entry. A
 * needs_ct entry's connection is looked up in the CT map too (its reply half). */
static __always_inline int snat_v4_rev_nat(struct __sk_buff *skb, struct lk_pkt *p, int *state, int *monitor)
{
	struct ipv4_ct_tuple rk = {};
	struct ipv4_nat_entry *e;
	__u32 addr;
	__u16 port;
	__u64 needs_ct;
	int ret;

	if (!p->has_ports)
		return 0;
	snat_v4_init_tuple(&rk, p, TUPLE_F_IN);
	e = cilium_snat_v4_external.lookup(&rk);
	if (!e)
		return 0;
	addr = e->addr;
	port = e->port;
	needs_ct = e->needs_ct;
	ret = rewrite_addr(skb, p, 0, addr);
	if (ret < 0)
		return ret;
	ret = rewrite_port(skb, p, 0, port);
	if (ret < 0)
		return ret;
	if (needs_ct) {
		/* snat_v4_rev_nat_handle_mapping(): ct_lazy_lookup4(CT_INGRESS, SCOPE_REVERSE) */
		struct ipv4_ct_tuple ck = {};
		struct ct_entry *ce;
		int reopened = 0;

		ct_key_server(&ck, p, TUPLE_F_OUT);
		ce = ct_map_lookup(&ck);
		if (ce) {
			*monitor = ct_update(ce, p, CT_DIR_INGRESS, &reopened);
			*state = CT_REPLY;
		}
	}
	return 1;
}

#endif
