"""Bad input is one line, exit 2, and nothing changes: names, manifests, helm values,
YAML bombs, CLI arguments (unit: no lab needed)."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from labkit import spec
from labkit.errors import LabError, LabWarning
from labkit.lab import backend_for, connect

POD = """apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
  labels: {app: p}
spec:
  containers:
    - name: c
      image: nicolaka/netshoot
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: w
          image: traefik/whoami
"""


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *argv], capture_output=True, text=True, timeout=60, **kw)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and text
    return text


# ------------------------------------------------------------------------- lab names
@pytest.mark.parametrize("bad", ["", "A", "-x", "x" * 21, "a b", "a/b", "..", None.__class__.__name__ + "!"])
def test_bad_lab_names_are_refused_never_the_default(bad):
    with pytest.raises(LabError, match="lab name") as e:
        connect(bad)
    one_line(e)


def test_empty_lab_name_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("LABKIT_LAB", "")
    with pytest.raises(LabError, match=r"\$LABKIT_LAB is set but empty"):
        backend_for(None, "embedded")
    monkeypatch.delenv("LABKIT_LAB")
    assert backend_for(None, "embedded").lab == "default"
    with pytest.raises(LabError, match="lab name"):
        backend_for(5, "embedded")  # type: ignore[arg-type]


def test_cli_down_of_an_empty_lab_name_is_exit_2():
    r = run("down", "--lab", "")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "lab name '' is not valid" in r.stderr
    assert "removed" not in r.stdout


# ------------------------------------------------------------------------- YAML bounds
def _file(tmp_path: Path, text: str | bytes, name: str = "m.yaml") -> Path:
    f = tmp_path / name
    (f.write_bytes if isinstance(text, bytes) else f.write_text)(text)
    return f


# 6 levels of 10 aliases each: 60 aliases (under the alias bound), 10**6 nodes once expanded
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcde", "bcdef")
)


@pytest.mark.parametrize(
    "text, message",
    [
        (BOMB.replace("a: &a", "kind: Pod\napiVersion: v1\nmetadata: {name: x, labels: {}}\na: &a"), "expands to more"),
        ("a: &a [*a]\n", "refers to itself"),
        ("x: " + "[" * 200 + "]" * 200 + "\n", "nests deeper"),
        ("\n---\n".join(["{a: 1}"] * 300) + "\n", "more than 256 documents"),
        ("a: *nowhere\n", "not valid YAML"),
    ],
)
def test_yaml_bombs_are_refused_fast(tmp_path, text, message):
    t0 = time.monotonic()
    with pytest.raises(LabError, match=message) as e:
        spec.load_manifests([_file(tmp_path, text)])
    assert time.monotonic() - t0 < 2
    assert "m.yaml" in one_line(e)


def test_many_aliases_are_refused(tmp_path):
    text = "y: &y 1\nz: [" + ", ".join(["*y"] * 100) + "]\n"
    with pytest.raises(LabError, match="more than 64 YAML aliases"):
        spec.load_manifests([_file(tmp_path, text)])


def test_binary_large_and_nul_files_are_refused(tmp_path):
    with pytest.raises(LabError, match="not UTF-8"):
        spec.load_manifests([_file(tmp_path, b"\x89PNG\r\n\x1a\n\xff\xfe", "b.yaml")])
    with pytest.raises(LabError, match="NUL byte"):
        spec.load_manifests([_file(tmp_path, "kind: Pod\x00\n", "n.yaml")])
    with pytest.raises(LabError, match="larger than 1 MiB"):
        spec.load_manifests([_file(tmp_path, "# " + "x" * (1 << 20) + "\n", "big.yaml")])
    with pytest.raises(LabError, match="not a regular file"):
        spec.load_manifests(["/dev/null"])


# ------------------------------------------------------------------------- Kubernetes schemas
@pytest.mark.parametrize(
    "text, message",
    [
        (
            POD.replace("      image: nicolaka/netshoot\n", "      image: nicolaka/netshoot\n      ports: [80]\n"),
            r"Pod 'p': spec.containers\[0\].ports\[0\]: 80 is not of type 'object'",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: x\nspec: {}\n", "document 1: metadata: 'x' is not of type 'object'"),
        (
            POD.replace("spec:\n  containers:", "spec:\n  tolerations: [x]\n  containers:"),
            r"spec.tolerations\[0\]: 'x' is not of type 'object'",
        ),
        (POD.replace("labels: {app: p}", "labels: {app: {nested: 1}}"), r"metadata.labels.app: .* is not of type"),
        (POD.replace("labels: {app: p}", "labels: {app: 5}"), r"metadata.labels.app: 5 is not of type"),
        (POD.replace("labels: {app: p}", "labels: {app: 'a b'}"), "is not a valid label value"),
        (POD.replace("  containers:", "  bogusField: 1\n  containers:"), "spec: Additional properties"),
        (POD.replace("apiVersion: v1", "apiVersion: v9"), "apiVersion: 'v9' is not the API version of a Pod"),
        (DEPLOY.replace("replicas: 2", "replicas: 10000000"), r"spec.replicas: 10000000 is more than labkit runs"),
        (
            DEPLOY.replace("image: traefik/whoami", "image: traefik/whoami\n          args: [--port, '99999']"),
            "whoami --port needs a port number 1-65535",
        ),
        (
            DEPLOY.replace(
                "    spec:\n      containers:",
                "    spec:\n      affinity:\n        podAntiAffinity:\n"
                "          requiredDuringSchedulingIgnoredDuringExecution: [term]\n      containers:",
            ),
            r"requiredDuringSchedulingIgnoredDuringExecution\[0\]: 'term' is not of type 'object'",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80, targetPort: http}]}\n",
            "named ports are not supported",
        ),
    ],
)
def test_manifests_fail_on_one_line_naming_file_object_and_field(tmp_path, text, message):
    with pytest.raises(LabError, match=message) as e:
        spec.load_manifests([_file(tmp_path, text)])
    assert one_line(e).startswith(str(tmp_path / "m.yaml")) or one_line(e).startswith("m.yaml")
    assert e.value.exit_code == 2


def test_the_blogs_manifests_pass_the_schemas():
    m = spec.load_manifests([spec.CLUSTER_DIR / "manifests"])
    assert {p.name for p in m.pods} == {"webpod", "curl-pod", "client-pod"}


def test_apply_of_a_bad_manifest_is_exit_2_before_looking_at_the_lab(tmp_path):
    f = _file(tmp_path, POD.replace("labels: {app: p}", "labels: {app: [1]}"))
    r = run("apply", "--lab", "nolab-here", str(f))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "metadata.labels.app" in r.stderr


# ------------------------------------------------------------------------- helm values
def _values(**sets):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        dp = spec.load_values(overrides=spec.parse_set([f"{k}={v}" for k, v in sets.items()]))
    return dp, [str(x.message) for x in w if issubclass(x.category, LabWarning)]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("hubble.enabled", "false", r"--set hubble.enabled=false is not modelled .*blog's hubble.enabled=true"),
        ("enableIPv4Masquerade", "false", "--set enableIPv4Masquerade=false is not modelled"),
        ("ipam.mode", "cluster-pool", "--set ipam.mode=cluster-pool is not modelled"),
        ("socketLB.enabled", "maybe", "--set socketLB.enabled=maybe: must be true or false"),
        ("kubeProxyReplacement", "false", "installNoConntrackIptablesRules=true Cilium itself refuses"),
        ("routingMode", "tunnel", "--set routingMode=tunnel is not supported"),
        ("bpf.masquerade", "1", "must be true or false"),
    ],
)
def test_unmodelled_values_are_refused_naming_the_set(key, value, message):
    with pytest.raises(LabError, match=message) as e:
        _values(**{key: value})
    text = one_line(e)
    assert str(spec.CLUSTER_DIR) not in text  # never blames the repository's file by absolute path


def test_unknown_keys_are_ignored_with_a_warning_as_helm_does():
    dp, warned = _values(**{"foo.bar": "1", "x": "[unclosed"})
    assert dp == spec.load_values()
    assert any("--set foo.bar: foo.bar is not a value of Cilium's chart; helm ignores it" in w for w in warned)
    assert any("--set x:" in w for w in warned)


def test_modelled_and_default_values_are_honoured():
    assert _values(**{"socketLB.enabled": "false"})[0].socket_lb is False
    assert _values(**{"bpf.masquerade": "false"})[0].bpf_masquerade is False
    dp, warned = _values(**{"enableIPv4Masquerade": "true", "hubble.enabled": "true", "debug.enabled": "true"})
    assert dp == spec.load_values() and warned == []


def test_helm_set_syntax():
    assert spec.parse_set_value("true") is True and spec.parse_set_value("null") is None
    assert spec.parse_set_value("42") == 42 and spec.parse_set_value("4.2") == "4.2"
    assert spec.parse_set_value("{a,b}") == ["a", "b"] and spec.parse_set_value("[x") == "[x"
    assert spec.parse_set(["a=1,b=2"]) == {"a": "1", "b": "2"}
    for bad in (["a"], ["a..b=1"], [".a=1"], ["a=" + "x" * 2000]):
        with pytest.raises(LabError) as e:
            spec.parse_set(bad)
        one_line(e)


def test_values_file_errors_name_the_file_the_user_gave(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("values.yaml").write_text((spec.CLUSTER_DIR / "cilium-values.yaml").read_text() + "routingMode: tunnel\n")
    with pytest.raises(LabError, match=r"^values.yaml: routingMode=tunnel is not supported"):
        spec.load_values(Path("values.yaml"))
    with pytest.raises(LabError, match=r"--set routingMode=tunnel"):
        spec.load_values(Path("values.yaml"), {"routingMode": "tunnel"})


@pytest.mark.parametrize("options", [["x"], "socketLB.enabled=false", {"a": {"b": 1}}, {1: "x"}, {"a": float("nan")}])
def test_bad_options_from_python_are_one_line(options):
    with pytest.raises(LabError) as e:
        spec.check_options(options)
    one_line(e)


# ------------------------------------------------------------------------- CLI arguments
@pytest.mark.parametrize(
    "argv, message",
    [
        (["monitor", "--lab", "nolab-here", "--last", "nan"], "--last must be a number of seconds"),
        (["monitor", "--lab", "nolab-here", "--seconds", "-1"], "--seconds must be"),
        (["observe", "--lab", "nolab-here", "--since", "inf"], "--since must be"),
        (["capture", "--lab", "nolab-here", "-p", "x:eth0", "-w", "/etc/passwd", "--", "true"], "not a directory"),
        (["capture", "--lab", "nolab-here", "-p", "x:eth0", "--seconds", "nan", "--", "true"], "seconds must be"),
        (["capture", "--lab", "nolab-here", "-p", "x:eth0", "--max-bytes", "-5", "--", "true"], "max_bytes must be"),
        (["up", "--lab", "nolab-here", "--set", "x=[unclosed", "--set", "routingMode=tunnel"], "routingMode=tunnel"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message):
    r = run(*argv)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("labkit: error:") and message in r.stderr
    assert "Traceback" not in r.stderr


def test_a_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "labkit.cli", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()
    err = p.stderr.read().decode()
    p.wait(60)
    assert "Traceback" not in err and "BrokenPipe" not in err
