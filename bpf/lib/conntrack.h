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
 * if the direction was last reported more than CT_REPORT_INTERVAL seconds ago (cilium
 * __ct_update_timeout), or it closes the connection (ACTION_CLOSE). The lookups return
 * that decision in *monitor. So a curl shows SYN, SYN-ACK, the first ACK and PSH of each
 * side and the FINs, not every segment, and a bulk transfer costs no event per packet.
 * Once both sides closed, an entry is left alone until it expires (CT_CLOSE_TIMEOUT).
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

/* Directions of a lookup, as Cilium's enum ct_dir: which half of the entry a packet
 * updates (rx: CT_INGRESS; tx: CT_EGRESS and CT_SERVICE). */
#define CT_DIR_INGRESS 0
#define CT_DIR_EGRESS  1
#define CT_DIR_SERVICE 2

static __always_inline int ct_entry_alive(const struct ct_entry *e)
{
	return (e->flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING)) != (CT_F_RX_CLOSING | CT_F_TX_CLOSING);
}

/* __ct_update_timeout(): the new lifetime, the flags seen in this direction, and
 * whether to report (new flags, or CT_REPORT_INTERVAL since the last report). */
static __always_inline int ct_update_timeout(struct ct_entry *e, __u32 lifetime, int dir, __u8 f)
{
	__u32 now = bpf_mono_now();
	int rx = dir == CT_DIR_INGRESS;
	__u8 seen = rx ? e->rx_flags_seen : e->tx_flags_seen;
	__u32 last = rx ? e->last_rx_report : e->last_tx_report;

	/* Write a field only when it changes: both CPUs of a conversation update the same
	 * entry, and a store per packet would bounce its cache line between them. */
	if (e->lifetime != now + lifetime)
		e->lifetime = now + lifetime;
	if (last + CT_REPORT_INTERVAL < now || (seen | f) != seen) {
		if (rx) {
			e->rx_flags_seen = seen | f;
			e->last_rx_report = now;
		} else {
			e->tx_flags_seen = seen | f;
			e->last_tx_report = now;
		}
		return 1;
	}
	return 0;
}

/* ct_update_timeout(): SYN timeout until a non-SYN packet, then the connection lifetime. */
static __always_inline int ct_refresh(struct ct_entry *e, struct lk_pkt *p, int dir)
{
	__u32 lifetime = CT_CONNECTION_LIFETIME_NONTCP;

	if (p->proto == IPPROTO_TCP) {
		if (!(p->tcp_flags & TCP_FLAG_SYN) && !(e->flags & CT_F_SEEN_NON_SYN))
			e->flags |= CT_F_SEEN_NON_SYN;
		lifetime = (e->flags & CT_F_SEEN_NON_SYN) ? CT_CONNECTION_LIFETIME_TCP : CT_SYN_TIMEOUT;
	}
	return ct_update_timeout(e, lifetime, dir, p->proto == IPPROTO_TCP ? p->tcp_flags : 0);
}

/* The entry half of __ct_lookup(): refresh a live entry, then ACTION_CLOSE on FIN/RST
 * (a service entry sees one direction only: both closing bits; a fully closed entry
 * gets CT_CLOSE_TIMEOUT and is not refreshed again) or ACTION_CREATE on a SYN for a
 * closing entry (the port was reused: the entry starts over, CT_NEW).
 * Returns 1 when this packet should be reported to the monitor, and sets *reopened. */
static __always_inline int ct_update(struct ct_entry *e, struct lk_pkt *p, int dir, int *reopened)
{
	__u8 f = p->tcp_flags;
	int monitor = 0;

	if (ct_entry_alive(e))
		monitor = ct_refresh(e, p, dir);
	if (p->proto != IPPROTO_TCP)
		return monitor;
	if (f & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
		__u16 flags = e->flags;

		if (dir == CT_DIR_SERVICE)
			flags |= CT_F_RX_CLOSING | CT_F_TX_CLOSING;
		else if ((f & TCP_FLAG_RST) && !((e->rx_flags_seen & e->tx_flags_seen) & TCP_FLAG_SYN))
			flags |= CT_F_RX_CLOSING | CT_F_TX_CLOSING;   /* RST before both SYNs */
		else
			flags |= dir == CT_DIR_INGRESS ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
		if (flags != e->flags)
			e->flags = flags;
		if (!ct_entry_alive(e))
			ct_update_timeout(e, CT_CLOSE_TIMEOUT, dir, f);
		return 1;
	}
	if ((f & TCP_FLAG_SYN) && (e->flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING))) {
		e->flags = 0;
		e->rx_flags_seen = 0;
		e->tx_flags_seen = 0;
		e->last_rx_report = 0;
		e->last_tx_report = 0;
		*reopened = 1;
		return ct_refresh(e, p, dir);
	}
	return monitor;
}

/* ct_create4(): a new entry, refreshed by its first packet. */
static __always_inline int ct_create(struct ipv4_ct_tuple *k, struct lk_pkt *p, int dir, __u32 src_sec_id,
				     __u16 rev_nat)
{
	struct ct_entry n = {};
	int monitor;

	n.rev_nat_index = rev_nat;
	n.src_sec_id = src_sec_id;
	monitor = ct_refresh(&n, p, dir);
	ct_map_update(k, &n);
	return monitor;
}

/* ct_lookup4(CT_EGRESS) + ct_create4(): a packet leaving an endpoint. */
static __always_inline int ct_egress4(struct lk_pkt *p, __u32 src_sec_id, __u16 rev_nat, __u16 *rev_nat_out,
				      int *monitor)
{
	struct ipv4_ct_tuple k = {};
	struct ct_entry *e;
	int reopened = 0;

	ct_key_client(&k, p, TUPLE_F_OUT);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, CT_DIR_EGRESS, &reopened);
		if (reopened) {
			e->rev_nat_index = rev_nat;
			e->src_sec_id = src_sec_id;
			return CT_NEW;
		}
		return CT_ESTABLISHED;
	}
	ct_key_server(&k, p, TUPLE_F_IN);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, CT_DIR_EGRESS, &reopened);
		*rev_nat_out = e->rev_nat_index;
		return CT_REPLY;
	}
	ct_key_client(&k, p, TUPLE_F_OUT);
	ct_create(&k, p, CT_DIR_EGRESS, src_sec_id, rev_nat);
	*monitor = 1;
	return CT_NEW;
}

/* ct_lookup4(CT_INGRESS) + ct_create4(): a packet delivered to an endpoint. On a reply,
 * *rev_nat_out is the connection's RevNAT index (tc LB: the service to translate back). */
static __always_inline int ct_ingress4(struct lk_pkt *p, __u32 src_sec_id, __u16 *rev_nat_out, int *monitor)
{
	struct ipv4_ct_tuple k = {};
	struct ct_entry *e;
	int reopened = 0;

	ct_key_client(&k, p, TUPLE_F_IN);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, CT_DIR_INGRESS, &reopened);
		if (reopened) {
			e->src_sec_id = src_sec_id;
			return CT_NEW;
		}
		return CT_ESTABLISHED;
	}
	ct_key_server(&k, p, TUPLE_F_OUT);
	e = ct_map_lookup(&k);
	if (e) {
		*monitor = ct_update(e, p, CT_DIR_INGRESS, &reopened);
		*rev_nat_out = e->rev_nat_index;
		return CT_REPLY;
	}
	ct_key_client(&k, p, TUPLE_F_IN);
	ct_create(&k, p, CT_DIR_INGRESS, src_sec_id, 0);
	*monitor = 1;
	return CT_NEW;
}

#endif
