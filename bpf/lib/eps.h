/* Endpoint and ipcache lookups, modelled on cilium bpf/lib/eps.h. */
#ifndef LK_EPS_H
#define LK_EPS_H

#include "maps.h"

/* __lookup_ip4_endpoint(): local endpoints and (localhost) addresses of this node. */
static __always_inline struct endpoint_info *lookup_ip4_endpoint(__u32 ip4)
{
	struct endpoint_key key = {};

	key.ip4 = ip4;
	key.family = ENDPOINT_KEY_IPV4;
	return cilium_lxc.lookup(&key);
}

/* lookup_ip4_remote_endpoint(): longest-prefix match in the ipcache. */
static __always_inline struct remote_endpoint_info *lookup_ip4_remote_endpoint(__u32 ip4)
{
	struct ipcache_key key = {};

	key.prefixlen = 32 + 32;       /* IPCACHE_STATIC_PREFIX + /32 */
	key.family = ENDPOINT_KEY_IPV4;
	key.ip4 = ip4;
	return cilium_ipcache.lookup(&key);
}

static __always_inline __u32 identity_of(__u32 ip4)
{
	struct remote_endpoint_info *info = lookup_ip4_remote_endpoint(ip4);

	return info ? info->sec_identity : WORLD_ID;
}

#endif
