"""The Kubernetes path of a class (images/classroom/): the broker DaemonSet and the student
pods that Zero to JupyterHub's values describe, checked against the Kubernetes schemas
(kubernetes-validate, offline, strict). A real cluster cannot run here: nothing is applied."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from labkit.classroom import roster
from labkit.classroom.protocol import CLASSROOM_ROOT

DIR = Path(__file__).resolve().parent.parent / "images" / "classroom"
K8S = "1.33"
Z2JH_KEYS = {"hub", "singleuser", "cull", "scheduling", "proxy", "prePuller", "ingress", "debug", "rbac"}


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DIR / name).read_text()) if d]


def test_the_broker_manifests_are_valid_kubernetes_objects():
    docs = _docs("broker.yaml")
    assert [d["kind"] for d in docs] == ["Namespace", "ConfigMap", "DaemonSet"]
    for d in docs:
        kubernetes_validate.validate(d, K8S, strict=True)


def test_the_broker_is_the_only_privileged_part():
    ds = _docs("broker.yaml")[2]
    (broker,) = ds["spec"]["template"]["spec"]["containers"]
    assert broker["securityContext"]["privileged"] is True
    mounts = {m["mountPath"]: m for m in broker["volumeMounts"]}
    assert mounts[str(CLASSROOM_ROOT)]["mountPropagation"] == "Bidirectional"  # userns pins, socket
    assert mounts["/run/netns"]["mountPropagation"] == "Bidirectional"  # the labs' namespaces
    values = yaml.safe_load((DIR / "z2jh-values.yaml").read_text())
    assert values["singleuser"]["allowPrivilegeEscalation"] is False
    assert "USER 1000" in (DIR / "student.Dockerfile").read_text()


def test_the_class_record_is_what_the_broker_reads():
    cm = _docs("broker.yaml")[1]
    room = roster.Classroom.from_json(cm["data"]["class.json"])
    values = yaml.safe_load((DIR / "z2jh-values.yaml").read_text())
    auth = values["hub"]["config"]["Authenticator"]
    assert sorted(auth["allowed_users"]) == sorted(a.name for a in room.accounts)
    assert auth["admin_users"] == [a.name for a in room.accounts if a.instructor]
    # KubeSpawner gives each student the uid the broker knows them by
    code = values["hub"]["extraConfig"]["labkit-uids"]
    uids = json.loads(code.split('json.loads("""')[1].split('""")')[0])
    assert uids == {a.name: a.uid for a in room.accounts}


def test_the_student_pod_of_the_values_is_a_valid_pod():
    """The pod KubeSpawner makes from these values (the parts labkit sets), schema-checked."""
    su = yaml.safe_load((DIR / "z2jh-values.yaml").read_text())["singleuser"]
    assert set(yaml.safe_load((DIR / "z2jh-values.yaml").read_text())) <= Z2JH_KEYS
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-alice"},
        "spec": {
            "securityContext": {"runAsUser": 2001, "runAsGroup": 2001, "fsGroup": 2001},
            "nodeSelector": su["nodeSelector"],
            "volumes": su["storage"]["extraVolumes"],
            "containers": [
                {
                    "name": "notebook",
                    "image": f"{su['image']['name']}:{su['image']['tag']}",
                    "args": [su["cmd"]],
                    "env": [{"name": k, "value": v} for k, v in su["extraEnv"].items()],
                    "volumeMounts": su["storage"]["extraVolumeMounts"],
                    "lifecycle": {"postStart": su["lifecycleHooks"]["postStart"]},
                    "securityContext": {"allowPrivilegeEscalation": su["allowPrivilegeEscalation"]},
                    "resources": {"limits": {"cpu": str(su["cpu"]["limit"]), "memory": su["memory"]["limit"]}},
                }
            ],
        },
    }
    kubernetes_validate.validate(pod, K8S, strict=True)
    mount = su["storage"]["extraVolumeMounts"][0]
    assert mount["mountPath"] == str(CLASSROOM_ROOT) and mount["readOnly"] is True


def test_a_broken_manifest_is_caught():
    ds = _docs("broker.yaml")[2]
    ds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPropagation"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, K8S, strict=True)
