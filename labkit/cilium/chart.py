"""What Cilium 1.17's helm chart knows: the top-level keys of its values.

Cilium's chart validates values with ``install/kubernetes/cilium/values.schema.json``; the
schema's top-level object has no ``additionalProperties: false``, so helm accepts a key it
does not know and the chart ignores it. labkit does what helm does for such a key (a
one-line warning, then ignored); a key the chart does know is either modelled by the
embedded backend or refused (labkit/spec.py). These names are the top-level properties of
that schema in the 1.17 chart.
"""

from __future__ import annotations

_KEYS = """
    MTU affinity agent agentNotReadyTaintKey aksbyocni alibabacloud annotateK8sNode annotations
    apiRateLimit authentication autoDirectNodeRoutes azure bandwidthManager bgpControlPlane bpf
    bpfClockProbe certgen cgroup ciliumEndpointSlice cleanBpfState cleanState cluster clustermesh
    cni commonLabels conntrackGCInterval conntrackGCMaxInterval crdWaitTimeout customCalls daemon
    dashboards debug defaultLBServiceIPAM directRoutingSkipUnreachable disableEndpointCRD dnsPolicy
    dnsProxy egressGateway enableCriticalPriorityClass enableIPv4BIGTCP enableIPv4Masquerade
    enableIPv6BIGTCP enableIPv6Masquerade enableInternalTrafficPolicy enableK8sTerminatingEndpoint
    enableLBIPAM enableMasqueradeRouteSource enableNonDefaultDenyPolicies
    enableRuntimeDeviceDetection enableXTSocketFallback encryption endpointHealthChecking
    endpointLockdownOnMapOverflow endpointRoutes eni envoy envoyConfig etcd externalIPs
    externalWorkloads extraArgs extraConfig extraContainers extraEnv extraHostPathMounts
    extraInitContainers extraVolumeMounts extraVolumes forceDeviceDetection gatewayAPI gke
    healthCheckICMPFailureThreshold healthChecking healthPort highScaleIPcache hostFirewall hostPort
    hubble identityAllocationMode identityChangeGracePeriod identityManagementMode image
    imagePullSecrets ingressController initResources installNoConntrackIptablesRules ipMasqAgent
    ipam iptablesRandomFully ipv4 ipv4NativeRoutingCIDR ipv6 ipv6NativeRoutingCIDR k8s
    k8sClientExponentialBackoff k8sClientRateLimit k8sNetworkPolicy k8sServiceHost k8sServiceHostRef
    k8sServiceLookupConfigMapName k8sServiceLookupNamespace k8sServicePort keepDeprecatedLabels
    keepDeprecatedProbes kubeConfigPath kubeProxyReplacement kubeProxyReplacementHealthzBindAddr
    l2NeighDiscovery l2announcements l2podAnnouncements l7Proxy livenessProbe loadBalancer
    localRedirectPolicies localRedirectPolicy logSystemLoad maglev monitor name namespaceOverride
    nat nat46x64Gateway nodeIPAM nodePort nodeSelector nodeSelectorLabels nodeinit operator
    pmtuDiscovery podAnnotations podLabels podSecurityContext policyCIDRMatchMode
    policyEnforcementMode pprof preflight priorityClassName prometheus rbac readinessProbe
    resourceQuotas resources rollOutCiliumPods routingMode scheduling sctp securityContext
    serviceAccounts serviceNoBackendResponse sleepAfterInit socketLB startupProbe
    svcSourceRangeCheck synchronizeK8sNodes sysctlfix terminationGracePeriodSeconds tls tmpVolume
    tolerations tunnelPort tunnelProtocol tunnelSourcePortRange underlayProtocol updateStrategy
    upgradeCompatibility vtep waitForKubeProxy wellKnownIdentities
"""
TOP_LEVEL_KEYS = frozenset(word for line in _KEYS.splitlines() for word in line.split(" ") if word)


def known(key: str) -> bool:
    """Whether the chart has the top-level value of the dotted ``key``."""
    return key.split(".", 1)[0] in TOP_LEVEL_KEYS
