/* Socket LB: cgroup connect4 / sendmsg4 / recvmsg4 / getpeername4 on each node's pod
 * cgroup, modelled on cilium bpf/bpf_sock.c (__sock4_xlate_fwd / __sock4_xlate_rev).
 *
 * connect() (and sendmsg() for unconnected UDP) to ClusterIP:port is rewritten to a
 * backend before any packet exists; cilium_lb4_reverse_sk remembers, per socket cookie
 * and backend, which VIP the application asked for, so getpeername() and recvmsg()
 * show the VIP back. No packet ever carries the ClusterIP.
 */
#define __MAGIC_FILE__ FILE_BPF_SOCK

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"

#define SYS_REJECT  0
#define SYS_PROCEED 1

static __always_inline int sock4_xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct lb4_key key = {};
	struct lb4_service *svc;
	struct lb4_backend *backend;
	struct ipv4_revnat_tuple rk = {};
	struct ipv4_revnat_entry rv = {};
	__u32 backend_id = 0;
	__u16 count, rnat, vport;
	__u32 vip;

	vip = ctx->user_ip4;
	vport = (__u16)ctx->user_port;
	key.address = vip;
	key.dport = vport;
	key.proto = (__u8)ctx->protocol;
	svc = lb4_lookup_service(&key);
	if (!svc)
		return SYS_PROCEED;
	count = svc->count;
	rnat = svc->rev_nat_index;
	backend = lb4_select_backend(&key, count, &backend_id);
	if (!backend)
		return SYS_REJECT;     /* no backend: Cilium fails connect() too */
	/* sock4_update_revnat() */
	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.address = backend->address;
	rk.port = backend->port;
	rv.address = vip;
	rv.port = vport;
	rv.rev_nat_index = rnat;
	cilium_lb4_reverse_sk.update(&rk, &rv);
	ctx->user_ip4 = backend->address;
	ctx->user_port = backend->port;
	return SYS_PROCEED;
}

static __always_inline int sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct ipv4_revnat_tuple rk = {};
	struct ipv4_revnat_entry *rv;

	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.address = ctx->user_ip4;
	rk.port = (__u16)ctx->user_port;
	rv = cilium_lb4_reverse_sk.lookup(&rk);
	if (rv) {
		ctx->user_ip4 = rv->address;
		ctx->user_port = rv->port;
	}
	return SYS_PROCEED;
}

int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx);
}

int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_rev(ctx);
}

int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_rev(ctx);
}
