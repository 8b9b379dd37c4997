"""Read Kubernetes objects of the live lab as kubectl-style JSON documents.

The kubernetes Python client is used when it can load the kind context from the kubeconfig;
otherwise (or when it fails) `kubectl get ... -o json`. Both give the same JSON shape, so the
parsers in :mod:`labkit.live.parse_k8s` do not care which one answered.

A list is kept for ``FRESH_FOR`` seconds: one command (a capture, a status) asks for nodes
and pods several times, and each kubectl call costs a process and a round trip to the API
server. Whatever changes the cluster (up, apply, down) calls :meth:`Kube.forget`.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from ..errors import LabError
from . import tools

CLUSTER_SCOPED = {"nodes", "ciliumnodes"}
FRESH_FOR = 2.0


class Kube:
    def __init__(self, context: str, use_client: bool | None = None) -> None:
        self.context = context
        self.use_client = use_client  # None: try the client, fall back to kubectl
        self._api: Any = None
        self._lists: dict[tuple[str, str | None, str | None, str | None], tuple[float, dict]] = {}

    def forget(self) -> None:
        """Drop the lists kept: the cluster changed."""
        self._lists.clear()

    # -- the kubernetes client ------------------------------------------------------------
    def _client(self):
        if self.use_client is False:
            return None
        if self._api is None:
            try:
                from kubernetes import config  # heavy, optional: kubectl is the fallback

                self._api = config.new_client_from_config(context=self.context, persist_config=False)
            except Exception as e:  # no kubeconfig, no such context, no package
                if self.use_client:
                    raise LabError(f"kubernetes client cannot use context {self.context}: {e}", exit_code=1) from e
                self._api = False
        return self._api or None

    def _via_client(
        self, resource: str, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> dict | None:
        api = self._client()
        if api is None:
            return None
        from kubernetes import client  # heavy, optional: kubectl is the fallback

        kw: dict[str, Any] = {"_request_timeout": 30}
        if label_selector:
            kw["label_selector"] = label_selector
        if field_selector:
            kw["field_selector"] = field_selector
        obj: Any
        try:
            core = client.CoreV1Api(api)
            if resource == "nodes":
                obj = core.list_node(**kw)
            elif resource == "pods":
                obj = core.list_namespaced_pod(namespace, **kw) if namespace else core.list_pod_for_all_namespaces(**kw)
            elif resource == "services":
                obj = (
                    core.list_namespaced_service(namespace, **kw)
                    if namespace
                    else core.list_service_for_all_namespaces(**kw)
                )
            elif resource == "endpointslices":
                d = client.DiscoveryV1Api(api)
                obj = (
                    d.list_namespaced_endpoint_slice(namespace, **kw)
                    if namespace
                    else d.list_endpoint_slice_for_all_namespaces(**kw)
                )
            elif resource == "ciliumnodes":
                custom = client.CustomObjectsApi(api).list_cluster_custom_object("cilium.io", "v2", "ciliumnodes", **kw)
                return custom if isinstance(custom, dict) else None
            else:
                return None
            return api.sanitize_for_serialization(obj)
        except Exception:
            if self.use_client:
                raise
            return None  # kubectl will say what is wrong

    # -- kubectl ---------------------------------------------------------------------------
    def kubectl(self, *args: str) -> list[str]:
        return ["kubectl", "--context", self.context, *args]

    def get(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict:
        """A list of ``resource`` as kubectl's JSON (``{"items": [...]}``)."""
        key = (resource, namespace, label_selector, field_selector)
        kept = self._lists.get(key)
        if kept is not None and time.monotonic() - kept[0] < FRESH_FOR:
            return copy.deepcopy(kept[1])
        doc = self._fetch(resource, namespace, label_selector, field_selector)
        self._lists[key] = (time.monotonic(), doc)
        return copy.deepcopy(doc)

    def _fetch(
        self, resource: str, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> dict:
        doc = self._via_client(resource, namespace, label_selector, field_selector)
        if doc is not None:
            return doc
        argv = self.kubectl("get", resource)
        if resource not in CLUSTER_SCOPED:
            argv += ["-n", namespace] if namespace else ["-A"]
        if label_selector:
            argv += ["-l", label_selector]
        if field_selector:
            argv += ["--field-selector", field_selector]
        argv += ["-o", "json"]
        r = tools.run(argv, timeout=60)
        try:
            return json.loads(r.stdout)
        except ValueError as e:
            raise LabError(f"`{' '.join(argv)}` printed no JSON: {e}", exit_code=1) from e
