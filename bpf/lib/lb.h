/* Service load balancing, modelled on cilium bpf/lib/lb.h.
 *
 * cilium_lb4_services_v2 holds, per (VIP, port, proto), a master entry in slot 0 (count
 * of backends, rev-NAT id, flags) and one entry per backend slot 1..count holding a
 * backend id; cilium_lb4_backends_v3 maps the id to address and port.
 * lb4_local() is the tc ("per packet") load balancer used when socket LB is off:
 * it records the choice in a SVC CT entry and DNATs the packet. With socket LB on,
 * bpf_sock.c translates at connect() and packets never carry the VIP.
 */
#ifndef LK_LB_H
#define LK_LB_H

#include "maps.h"
#include "pkt.h"
#include "conntrack.h"

/* lb4_lookup_service(): exact protocol first, then "any protocol" (proto 0). */
static __always_inline struct lb4_service *lb4_lookup_service(struct lb4_key *key)
{
	struct lb4_service *svc;
	__u8 proto = key->proto;

	key->backend_slot = 0;
	key->scope = 0;
	svc = cilium_lb4_services_v2.lookup(key);
	if (svc)
		return svc;
	key->proto = 0;
	svc = cilium_lb4_services_v2.lookup(key);
	if (!svc)
		key->proto = proto;
	return svc;
}

/* lb4_select_backend_id() with the random algorithm: slot = random % count + 1. */
static __always_inline struct lb4_backend *lb4_select_backend(struct lb4_key *key, __u16 count, __u32 *backend_id)
{
	struct lb4_service *slot;

	if (!count)
		return NULL;
	key->backend_slot = (bpf_get_prandom_u32() % count) + 1;
	slot = cilium_lb4_services_v2.lookup(key);
	key->backend_slot = 0;
	if (!slot)
		return NULL;
	*backend_id = slot->backend_id;
	return cilium_lb4_backends_v3.lookup(backend_id);
}

#ifdef ENABLE_PER_PACKET_LB
/* lb4_local(): returns 1 if the packet was a service packet (now DNATed to a backend),
 * 0 if not, or -DROP_*. *rev_nat is the service's rev-NAT id (network order). */
static __always_inline int lb4_local(struct __sk_buff *skb, struct lk_pkt *p, __u16 *rev_nat)
{
	struct lb4_key key = {};
	struct lb4_service *svc;
	struct lb4_backend *backend = NULL;
	struct ipv4_ct_tuple sk = {};
	struct ct_entry *e, n = {};
	__u32 backend_id = 0;
	__u16 count, rnat;
	int ret;

	key.address = p->daddr;
	key.dport = p->dport;
	key.proto = p->proto;
	svc = lb4_lookup_service(&key);
	if (!svc)
		return 0;      /* not a service (a VIP at another port too): plain traffic */
	count = svc->count;
	rnat = svc->rev_nat_index;
	if (!count)
		return -DROP_NO_SERVICE;
	/* The SVC entry: the packet's own tuple, as built from the headers. */
	sk.daddr = p->daddr;
	sk.saddr = p->saddr;
	sk.dport = p->sport;
	sk.sport = p->dport;
	sk.nexthdr = p->proto;
	sk.flags = TUPLE_F_SERVICE;
	e = ct_map_lookup(&sk);
	if (e) {
		int reopened = 0;

		backend_id = (__u32)e->backend_id;
		backend = cilium_lb4_backends_v3.lookup(&backend_id);
		if (backend)
			ct_update(e, p, CT_DIR_SERVICE, &reopened);   /* SVC entries are not reported */
	}
	if (!backend) {
		backend = lb4_select_backend(&key, count, &backend_id);
		if (!backend)
			return -DROP_NO_SERVICE;
		n.backend_id = backend_id;
		n.rev_nat_index = rnat;
		ct_refresh(&n, p, CT_DIR_SERVICE);
		ct_map_update(&sk, &n);
	}
	/* lb4_xlate(): DNAT to the backend. */
	ret = rewrite_addr(skb, p, 0, backend->address);
	if (ret < 0)
		return ret;
	if (backend->port) {
		ret = rewrite_port(skb, p, 0, backend->port);
		if (ret < 0)
			return ret;
	}
	*rev_nat = rnat;
	return 1;
}
#endif

/* lb4_rev_nat(): a reply from a backend gets the VIP and port back as its source. */
static __always_inline int lb4_rev_nat(struct __sk_buff *skb, struct lk_pkt *p, __u16 rev_nat)
{
	struct lb4_reverse_nat *r = cilium_lb4_reverse_nat.lookup(&rev_nat);
	int ret;

	if (!r)
		return 0;
	ret = rewrite_addr(skb, p, 1, r->address);
	if (ret < 0)
		return ret;
	if (r->port)
		return rewrite_port(skb, p, 1, r->port);
	return 0;
}

#endif
