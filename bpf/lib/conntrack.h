/* Connection tracking, modelled on cilium bpf/lib/conntrack.h.
 *
 * Two maps, like Cilium: cilium_ct4_global (TCP) and cilium_ct_any4_global (the rest).
 * Entries are per direction of the endpoint that saw the first packet:
 *   OUT (TUPLE_F_OUT), created when a connection leaves an endpoint (from-container),
 *   IN  (TUPLE_F_IN),  created when a connection is delivered to an endpoint,
 *   SVC (TUPLE_F_SERVICE), created by the tc load balancer (lb.h) and holding BackendID.
 * Keys of OUT/IN entries store the addresses "reversed" as Cilium does: for a connection
 * client C:c -> server S:s the key is {daddr=C, saddr=S, dport=s, sport=c}, which
 * `cilium bpf ct list` prints back as "C:c -> S:s" (reverse=true in its Dump()).
 * tx_flags_seen collects TCP flags the endpoint sent, rx_flags_seen the ones it received.
 * Packets/Bytes stay 0: Cilium only counts them with ConntrackAccounting (off by default).
 *
 * Monitor aggregation (helm bpf.monitorAggregation, default "medium"): a packet is
 * reported to the monitor only if it brings TCP flags not yet seen in its direction, or
 * if the direction was last reported CT_REPORT_INTERVAL seconds ago (cilium
 * __ct_update_timeout). The lookups return that decision in *monitor. So a curl shows
 * SYN, SYN-ACK, the first ACK and PSH of each side and the FINs, not every segment,
 * and a bulk transfer costs no event per packet.
 */
#ifndef LK_CONNTRACK_H
#define LK_CONNTRACK_H

#include "maps.h"
#include "pkt.h"

#define CT_CONNECTION_LIFETIME_TCP    21600
#define CT_CONNECTION_LIFETIME_NONTCP 60
#define CT_SYN_TIMEOUT                60
#define CT_CLOSE_TIMEOUT              10
#define CT_REPORT_INTERVAL            5

static __always_inline __u32 bpf_mono_now(void)
{
	return bpf_ktime_get_ns() / 1000000000ULL;
}

static __always_inline struct ct_entry *ct_map_lookup(struct ipv4_ct_tuple *k)
{
	if (k->nexthdr == IPPROTO_TCP)
		return cilium_ct4_global.lookup(k);
	return cilium_ct_any4_global.lookup(k);
}

static __always_inline void ct_map_update(struct ipv4_ct_tuple *k, struct ct_entry *e)
{
	if (k->nexthdr == IPPROTO_TCP)
		cilium_ct4_global.update(k, e);
	else
		cilium_ct_any4_global.update(k, e);
}

/* The key of the connection whose client sends this packet. */
static __always_inline void ct_key_client(struct ipv4_ct_tuple *k, struct lk_pkt *p, __u8 flags)
{
	k->daddr = p->saddr;
	k->saddr = p->daddr;
	k->dport = p->dport;
	k->sport = p->sport;
	k->nexthdr = p->proto;
	k->flags = flags;
}

/* The key of the connection whose server sends this packet (a reply). */
static __always_inline void ct_key_server(struct ipv4_ct_tuple *k, struct lk_pkt *p, __u8 flags)
{
	k->daddr = p->daddr;
	k->saddr = p->saddr;
	k->dport = p->sport;
	k->sport = p->dport;
	k->nexthdr = p->proto;
	k->flags = flags;
}

/* __ct_update(): flags seen, closing bits and the new lifetime. tx: sent by the endpoint.
 * Returns 1 when this packet should be reported to the monitor (see above). */
static __always_inline int ct_update(struct ct_entry *e, struct lk_pkt *p, int tx)
{
	__u32 now = bpf_mono_now();
	__u8 f = p->tcp_flags;
	__u8 seen;
	__u16 flags = e->flags;
	__u32 last, lifetime;
	int report = 0;

	/* Write a field only when it changes: both CPUs of a conversation update the same
	 * entry, and a store per packet would bounce its cache line between them. */
	if (p->proto == IPPROTO_TCP) {
		seen = tx ? e->tx_flags_seen : e->rx_flags_seen;
		if (f & ~seen) {
			report = 1;
			if (tx)
				e->tx_flags_seen = seen | f;
			else
				e->rx_flags_seen = seen | f;
		}
		if (f & (TCP_FLAG_FIN | TCP_FLAG_RST))
			flags |= tx ? CT_F_TX_CLOSING : CT_F_RX_CLOSING;
		if (f & TCP_FLAG_RST)
			flags |= CT_F_TX_CLOSING | CT_F_RX_CLOSING;
		if (!(f & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if (flags != e->flags)
			e->flags = flags;
		if ((flags & (CT_F_TX_CLOSING | CT_F_RX_CLOSING)) == (CT_F_TX_CLOSING | CT_F_RX_CLOSING))
			lifetime = now + CT_CLOSE_TIMEOUT;
		else if (flags & CT_F_SEEN_NON_SYN)
			lifetime = now + CT_CONNECTION_LIFETIME_TCP;
		else
			lifetime = now + CT_SYN_TIMEOUT;
	} else {
		lifetime = now + CT_CONNECTION_LIFETIME_NONTCP;
	}
	if (e->lifetime != lifetime)
		e->lifetime = lifetime;
	last = tx ? e->last_tx_report : e->last_rx_report;
	if (!last || last + CT_REPORT_INTERVAL <= now)
		report = 1;
	if (report) {
		if (tx)
			e->last_tx_report = now;
		else
			e->last_rx_report = now;
	}
	return report;
}

/* ct_lookup4(CT_EGRESS) + ct_create4(): a packet leaving an endpoint. */
static __always_inline int ct_egress4(struct lk_pkt *p, __u32 src_sec_id, __u16 rev_nat, __u16 *rev_nat_out,
				      int *monitor)
{
	struct ipv4_ct_tuple k = {};
	struct ct_entry *e, n = {};

	ct_key_client(&k, p, TUPLE_F_OUT);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, 1);
		return CT_ESTABLISHED;
	}
	ct_key_server(&k, p, TUPLE_F_IN);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, 1);
		*rev_nat_out = e->rev_nat_index;
		return CT_REPLY;
	}
	ct_key_client(&k, p, TUPLE_F_OUT);
	n.rev_nat_index = rev_nat;
	n.src_sec_id = src_sec_id;
	*monitor = ct_update(&n, p, 1);
	ct_map_update(&k, &n);
	return CT_NEW;
}

/* ct_lookup4(CT_INGRESS) + ct_create4(): a packet delivered to an endpoint. On a reply,
 * *rev_nat_out is the connection's RevNAT index (tc LB: the service to translate back). */
static __always_inline int ct_ingress4(struct lk_pkt *p, __u32 src_sec_id, __u16 *rev_nat_out, int *monitor)
{
	struct ipv4_ct_tuple k = {};
	struct ct_entry *e, n = {};

	ct_key_client(&k, p, TUPLE_F_IN);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, 0);
		return CT_ESTABLISHED;
	}
	ct_key_server(&k, p, TUPLE_F_OUT);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, 0);
		*rev_nat_out = e->rev_nat_index;
		return CT_REPLY;
	}
	ct_key_client(&k, p, TUPLE_F_IN);
	n.src_sec_id = src_sec_id;
	*monitor = ct_update(&n, p, 0);
	ct_map_update(&k, &n);
	return CT_NEW;
}

#endif
