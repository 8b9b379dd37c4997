/* The packet filter of labkit trace: a small subset of pcap-filter(7), evaluated where
 * the packet bytes are (our tc programs), as pwru compiles libpcap's filter into its
 * programs (pwru internal/libpcap, with cbpfc).
 *
 * labkit/embedded/ebpf/skbfilter.py parses expressions like 'tcp and port 80',
 * 'host 10.244.1.71 and not icmp' and turns them into LKT_FILTER (below).
 */
#ifndef LK_PKTFILTER_H
#define LK_PKTFILTER_H

#include "skbtrace.h"

#define LKT_ETH_HLEN 14

/* Parse what the filter and the events need; 0 on success (any ethertype). */
static __always_inline int lkt_parse(struct __sk_buff *skb, struct lkt_pkt *p)
{
	__u8 eth[LKT_ETH_HLEN];
	__u8 ip[20];
	__u32 l4;

	if (bpf_skb_load_bytes(skb, 0, eth, sizeof(eth)) < 0)
		return -1;
	p->ethertype = (eth[12] << 8) | eth[13];
	if (p->ethertype == ETH_P_ARP) {
		__u8 arp[28];

		if (bpf_skb_load_bytes(skb, LKT_ETH_HLEN, arp, sizeof(arp)) < 0)
			return 0;
		__builtin_memcpy(&p->saddr, arp + 14, 4);  /* sender protocol address */
		__builtin_memcpy(&p->daddr, arp + 24, 4);  /* target protocol address */
		return 0;
	}
	if (p->ethertype != ETH_P_IP)
		return 0;
	if (bpf_skb_load_bytes(skb, LKT_ETH_HLEN, ip, sizeof(ip)) < 0)
		return 0;
	if ((ip[0] >> 4) != 4 || (ip[0] & 0x0f) < 5)
		return 0;
	p->proto = ip[9];
	p->tot_len = (ip[2] << 8) | ip[3];
	p->ip_id = (ip[4] << 8) | ip[5];
	__builtin_memcpy(&p->saddr, ip + 12, 4);
	__builtin_memcpy(&p->daddr, ip + 16, 4);
	if (((ip[6] << 8) | ip[7]) & 0x1fff)
		return 0;                      /* a later fragment: no L4 header */
	l4 = LKT_ETH_HLEN + (ip[0] & 0x0f) * 4;
	if (p->proto == IPPROTO_TCP) {
		__u8 tcp[14];

		if (bpf_skb_load_bytes(skb, l4, tcp, sizeof(tcp)) < 0)
			return 0;
		__builtin_memcpy(&p->sport, tcp, 2);
		__builtin_memcpy(&p->dport, tcp + 2, 2);
		p->seq = ((__u32)tcp[4] << 24) | (tcp[5] << 16) | (tcp[6] << 8) | tcp[7];
		p->ack = ((__u32)tcp[8] << 24) | (tcp[9] << 16) | (tcp[10] << 8) | tcp[11];
		p->tcp_flags = tcp[13];
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_UDP) {
		__u8 udp[4];

		if (bpf_skb_load_bytes(skb, l4, udp, sizeof(udp)) < 0)
			return 0;
		__builtin_memcpy(&p->sport, udp, 2);
		__builtin_memcpy(&p->dport, udp + 2, 2);
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_ICMP) {
		__u8 icmp[8];

		if (bpf_skb_load_bytes(skb, l4, icmp, sizeof(icmp)) < 0)
			return 0;
		/* type/code and echo id/sequence stand in for seq/ack in the fingerprint */
		p->seq = (icmp[0] << 8) | icmp[1];
		p->ack = ((__u32)icmp[4] << 24) | (icmp[5] << 16) | (icmp[6] << 8) | icmp[7];
	}
	return 0;
}

/* LKT_FILTER(p): the filter as one C expression over struct lkt_pkt, generated from the
 * parsed expression (never from its text) by skbfilter.py and passed as a -D flag, so
 * each filter is compiled once (and cached) into straight-line code: no interpreter for
 * the verifier to walk through. Without a filter every packet matches. */
#ifndef LKT_FILTER
#define LKT_FILTER(p) 1
#endif

static __always_inline int lkt_match(const struct lkt_pkt *p)
{
	return LKT_FILTER(p);
}

#endif
