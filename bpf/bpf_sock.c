/* Socket LB: cgroup connect4 / sendmsg4 / recvmsg4 / getpeername4 on each node's pod
 * cgroup, modelled on cilium bpf/bpf_sock.c (__sock4_xlate_fwd / __sock4_xlate_rev).
 *
 * connect() (and sendmsg() for unconnected UDP) to ClusterIP:port is rewritten to a
 * backend before any packet exists; cilium_lb4_reverse_sk remembers, per socket cookie
 * and backend, which VIP the application asked for, so getpeername() and recvmsg()
 * show the VIP back. No packet ever carries the ClusterIP: the datapath's own record of
 * the translation is the trace-sock event pair (pre-xlate-fwd with the VIP, then
 * post-xlate-fwd with the backend; pre/post-xlate-rev on the way back), which Cilium
 * sends with trace-sock on (its default) and `cilium monitor -v` / Hubble show.
 */
#define __MAGIC_FILE__ FILE_BPF_SOCK

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"
#include "lib/trace.h"

#define SYS_REJECT  0
#define SYS_PROCEED 1

#ifndef EHOSTUNREACH
#define EHOSTUNREACH 113
#endif
#ifndef ENXIO
#define ENXIO 6
#endif

/* Helpers bcc 0.26 does not declare: called by their ids. */
#define lk_set_retval(v) ((long (*)(int))BPF_FUNC_set_retval)(v)
#define lk_netns_cookie(ctx) ((__u64 (*)(void *))BPF_FUNC_get_netns_cookie)(ctx)

/* send_trace_sock_notify4() */
static __always_inline void send_trace_sock_notify4(struct bpf_sock_addr *ctx, __u8 xlate_point, __u32 dst_ip,
						    __u16 dst_port)
{
	struct trace_sock_notify msg = {};

	msg.type = CILIUM_NOTIFY_TRACE_SOCK;
	msg.xlate_point = xlate_point;
	msg.dst_ip[0] = dst_ip;
	msg.dst_port = bpf_ntohs(dst_port);
	msg.sock_cookie = bpf_get_socket_cookie(ctx);
	msg.cgroup_id = bpf_get_current_cgroup_id();
	msg.l4_proto = ctx->protocol == IPPROTO_TCP ? L4_PROTOCOL_TCP :
		       ctx->protocol == IPPROTO_UDP ? L4_PROTOCOL_UDP : 0;
	msg.cpu = bpf_get_smp_processor_id();
	msg.netns_cookie = lk_netns_cookie(ctx);
	cilium_events.ringbuf_output(&msg, sizeof(msg), 0);
}

/* __sock4_xlate_fwd(): 0 translated, -ENXIO not a service (the call goes on as it is),
 * -EHOSTUNREACH a service without backends (the call fails). */
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
		return -ENXIO;
	count = svc->count;
	rnat = svc->rev_nat_index;
	if (!count)
		return -EHOSTUNREACH;
	send_trace_sock_notify4(ctx, XLATE_PRE_DIRECTION_FWD, vip, vport);
	backend = lb4_select_backend(&key, count, &backend_id);
	if (!backend)
		return -EHOSTUNREACH;
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
	send_trace_sock_notify4(ctx, XLATE_POST_DIRECTION_FWD, backend->address, backend->port);
	return 0;
}

/* cil_sock4_connect() / cil_sock4_sendmsg(): a service without backends fails the call
 * with EHOSTUNREACH (try_set_retval), as on a real node. */
static __always_inline int sock4_fwd_verdict(struct bpf_sock_addr *ctx)
{
	int err = sock4_xlate_fwd(ctx);

	if (err == -EHOSTUNREACH) {
		lk_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

/* __sock4_xlate_rev() */
static __always_inline int sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct ipv4_revnat_tuple rk = {};
	struct ipv4_revnat_entry *rv;
	__u32 addr;
	__u16 port;

	rk.cookie = bpf_get_socket_cookie(ctx);
	rk.address = ctx->user_ip4;
	rk.port = (__u16)ctx->user_port;
	rv = cilium_lb4_reverse_sk.lookup(&rk);
	if (rv) {
		addr = rv->address;
		port = rv->port;
		send_trace_sock_notify4(ctx, XLATE_PRE_DIRECTION_REV, rk.address, rk.port);
		ctx->user_ip4 = addr;
		ctx->user_port = port;
		send_trace_sock_notify4(ctx, XLATE_POST_DIRECTION_REV, addr, port);
	}
	return SYS_PROCEED;
}

int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_fwd_verdict(ctx);
}

int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_fwd_verdict(ctx);
}

int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_rev(ctx);
}

int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_rev(ctx);
}
