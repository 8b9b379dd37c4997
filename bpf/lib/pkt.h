/* Packet parsing and rewriting helpers (cilium bpf/lib/ipv4.h, l4.h, csum.h, l3.h).
 * Headers are copied out with bpf_skb_load_bytes and written back with
 * bpf_skb_store_bytes plus the checksum helpers, which keeps the verifier simple. */
#ifndef LK_PKT_H
#define LK_PKT_H

#include "common.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#define IP_CSUM_OFF  (ETH_HLEN + 10)
#define IP_SRC_OFF   (ETH_HLEN + 12)
#define IP_DST_OFF   (ETH_HLEN + 16)

/* Parse the IPv4 header and the ports (or ICMP echo id) into *p. Returns 0 or -DROP_*. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct lk_pkt *p)
{
	struct iphdr ip;
	__u8 ihl;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return -DROP_INVALID;
	ihl = ip.ihl;
	if (ip.version != 4 || ihl < 5)
		return -DROP_INVALID;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->ttl = ip.ttl;
	p->l4_off = ETH_HLEN + ihl * 4;
	p->sport = 0;
	p->dport = 0;
	p->tcp_flags = 0;
	p->has_ports = 0;
	p->len = skb->len;
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0;              /* a later fragment: no L4 header */
	if (p->proto == IPPROTO_TCP) {
		__u8 hdr[14];

		if (bpf_skb_load_bytes(skb, p->l4_off, hdr, sizeof(hdr)) < 0)
			return -DROP_CT_INVALID_HDR;
		p->sport = hdr[0] | (hdr[1] << 8);
		p->dport = hdr[2] | (hdr[3] << 8);
		p->tcp_flags = hdr[13];
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_UDP) {
		__u16 ports[2];

		if (bpf_skb_load_bytes(skb, p->l4_off, ports, sizeof(ports)) < 0)
			return -DROP_CT_INVALID_HDR;
		p->sport = ports[0];
		p->dport = ports[1];
		p->has_ports = 1;
	} else if (p->proto == IPPROTO_ICMP) {
		__u8 icmp[8];

		if (bpf_skb_load_bytes(skb, p->l4_off, icmp, sizeof(icmp)) < 0)
			return -DROP_CT_INVALID_HDR;
		/* The echo id plays the port (cilium ct_extract_ports4 / snat_v4 for ICMP). */
		if (icmp[0] == ICMP_ECHO) {
			p->sport = icmp[4] | (icmp[5] << 8);
			p->has_ports = 1;
		} else if (icmp[0] == ICMP_ECHOREPLY) {
			p->dport = icmp[4] | (icmp[5] << 8);
			p->has_ports = 1;
		}
	}
	return 0;
}

static __always_inline __u32 l4_csum_off(struct lk_pkt *p)
{
	if (p->proto == IPPROTO_TCP)
		return p->l4_off + 16;
	if (p->proto == IPPROTO_UDP)
		return p->l4_off + 6;
	return p->l4_off + 2;          /* ICMP */
}

/* Rewrite the source (is_src) or destination address, fixing the IP and L4 checksums. */
static __always_inline int rewrite_addr(struct __sk_buff *skb, struct lk_pkt *p, int is_src, __u32 to)
{
	__u32 from = is_src ? p->saddr : p->daddr;
	__u32 off = is_src ? IP_SRC_OFF : IP_DST_OFF;

	if (from == to)
		return 0;
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		__u64 flags = BPF_F_PSEUDO_HDR | sizeof(__u32);

		if (p->proto == IPPROTO_UDP)
			flags |= BPF_F_MARK_MANGLED_0;
		if (bpf_l4_csum_replace(skb, l4_csum_off(p), from, to, flags) < 0)
			return -DROP_CSUM_L4;
	}
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, sizeof(__u32)) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0) < 0)
		return -DROP_WRITE_ERROR;
	if (is_src)
		p->saddr = to;
	else
		p->daddr = to;
	return 0;
}

/* Rewrite the source or destination port (ICMP echo: the id), fixing the L4 checksum. */
static __always_inline int rewrite_port(struct __sk_buff *skb, struct lk_pkt *p, int is_src, __u16 to)
{
	__u16 from = is_src ? p->sport : p->dport;
	__u32 off;
	__u64 flags = sizeof(__u16);

	if (from == to || !p->has_ports)
		return 0;
	if (p->proto == IPPROTO_ICMP)
		off = p->l4_off + 4;
	else
		off = p->l4_off + (is_src ? 0 : 2);
	if (p->proto == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0;
	if (bpf_l4_csum_replace(skb, l4_csum_off(p), from, to, flags) < 0)
		return -DROP_CSUM_L4;
	if (bpf_skb_store_bytes(skb, off, &to, sizeof(to), 0) < 0)
		return -DROP_WRITE_ERROR;
	if (is_src)
		p->sport = to;
	else
		p->dport = to;
	return 0;
}

/* ipv4_l3(): decrement the TTL (fixing the checksum) and set the Ethernet addresses. */
static __always_inline int ipv4_l3(struct __sk_buff *skb, struct lk_pkt *p, void *smac, void *dmac)
{
	__u16 old, new;

	if (p->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + 8, &old, sizeof(old)) < 0)
		return -DROP_INVALID;
	new = old - 1;                 /* the TTL is the first byte of this word */
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, sizeof(__u16)) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + 8, &new, sizeof(new), 0) < 0)
		return -DROP_WRITE_ERROR;
	p->ttl -= 1;
	{
		__u8 macs[2 * ETH_ALEN];   /* one write for both addresses */

		__builtin_memcpy(macs, dmac, ETH_ALEN);
		__builtin_memcpy(macs + ETH_ALEN, smac, ETH_ALEN);
		if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
			return -DROP_WRITE_ERROR;
	}
	return 0;
}

#endif
