"""Property-based: generated bad manifests, helm values, lab names and CLI arguments are
each one line and exit 2, never a traceback, and change nothing on the host or in another
lab (hypothesis). ``make soak`` runs many more examples (LABKIT_SOAK=1)."""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labkit import plan as planning
from labkit import spec
from labkit.cli import main
from labkit.embedded.names import LAB_RE
from labkit.errors import LabError
from labkit.lab import connect

SOAK = os.environ.get("LABKIT_SOAK") == "1"
EXAMPLES = 3000 if SOAK else 150
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = pytest.mark.slow  # hundreds of examples: in make test, not in make test-fast
FUZZ_LAB = "hypnolab"  # never exists: every command below that needs a lab fails on it, or has nothing to do

BASES = [d for f in (spec.CLUSTER_DIR / "manifests").glob("*.yaml") for d in yaml.safe_load_all(f.read_text())]
BASES = [b for b in BASES if isinstance(b, dict)]

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _paths(d: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(d, dict):
        for k, v in d.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_manifests(draw) -> str:
    """A manifest of the blog with one to three parts replaced, dropped or added, or text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=200))
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        how = draw(st.sampled_from(["replace", "drop", "add"]))
        if how == "replace":
            parent[path[-1]] = draw(json_values)
        elif how == "drop" and isinstance(parent, dict):
            parent.pop(path[-1], None)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return yaml.safe_dump(doc, allow_unicode=True)


def _lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln and not ln.startswith("labkit: warning:")]


def _is_one_line_usage_error(e: LabError) -> None:
    assert e.exit_code == 2, e
    assert "\n" not in str(e) and str(e)


@SETTINGS
@given(text=mutated_manifests())
def test_generated_manifests_are_parsed_or_one_line(tmp_path_factory, text):
    f = tmp_path_factory.mktemp("m") / "m.yaml"
    f.write_text(text)
    try:
        m = spec.load_manifests([f])
    except LabError as e:
        _is_one_line_usage_error(e)
        return
    # valid to Kubernetes and to labkit: the plan places it, or says why not in one line
    base = planning.initial(spec.load_cluster())
    try:
        planning.extend(base, spec.Manifests(["native"], [], []))
        planning.extend(planning.extend(base, spec.Manifests(["native"], [], []))[0], m)
    except LabError as e:
        _is_one_line_usage_error(e)


keys = st.sampled_from(sorted(spec.blog_values()) + sorted(spec.MODELLED) + ["foo.bar", "hubble", "x"]) | st.from_regex(
    r"\A[A-Za-z0-9_.\-\[\]=,]{0,30}\Z"
)


@SETTINGS
@given(sets=st.lists(st.tuples(keys, st.text(max_size=20)), max_size=4))
def test_generated_values_are_honoured_or_one_line(sets):
    items = [f"{k}={v}" for k, v in sets]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spec.load_values(overrides=spec.parse_set(items))
        except LabError as e:
            _is_one_line_usage_error(e)
            assert str(spec.CLUSTER_DIR) not in str(e)


@SETTINGS
@given(name=st.text(max_size=25) | st.from_regex(r"\A[a-z0-9-]{0,22}\Z"))
def test_generated_lab_names_are_valid_or_one_line(name):
    try:
        lab = connect(name)
    except LabError as e:
        _is_one_line_usage_error(e)
        assert not LAB_RE.match(name)
        return
    assert LAB_RE.match(name) and lab.name == name


COMMANDS = [
    ["status"],
    ["exec", "client-pod", "--"],
    ["capture", "-p", "client-pod:eth0", "--"],
    ["monitor"],
    ["observe"],
    ["bpf", "ct", "list", "global"],
    ["bpf", "endpoint", "list"],
    ["service", "list"],
    ["apply", "/nonexistent-manifest.yaml"],
    ["up", "--set", "routingMode=tunnel"],  # always refused: `up` can never build a lab here
    ["down"],
]
tokens = (
    st.sampled_from(
        [
            "--lab",
            "--node",
            "--last",
            "--seconds",
            "--since",
            "--count",
            "--max-bytes",
            "--snaplen",
            "-w",
            "--set",
            "--from",
            "--to",
            "-o",
            "--datapath",
            "--in",
            "-p",
            "--all",
            "--follow",
            "-j",
            "--no-hint",
            "--backend",
        ]
    )
    | st.text(max_size=12)
    | st.sampled_from(["nan", "inf", "-1", "1e300", "0", "5", "''", "x=[", "/etc/passwd"])
)


@SETTINGS
@given(cmd=st.sampled_from(COMMANDS), extra=st.lists(tokens, max_size=6))
def test_generated_cli_arguments_are_one_line(cmd, extra):
    assume("--all" not in extra and "--backend" not in extra and "-f" not in extra and "--follow" not in extra)
    head, sep, tail = (cmd[: cmd.index("--")], ["--"], cmd[cmd.index("--") + 1 :]) if "--" in cmd else (cmd, [], [])
    argv = [*head, *extra, "--lab", FUZZ_LAB, *sep, *tail, *(["true"] if sep else [])]
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), warnings.catch_warnings():
        try:
            code = main(argv)
        except SystemExit as e:  # argparse: usage errors (2) and --help (0)
            code = int(e.code or 0)
    lines = _lines(err.getvalue())
    assert "Traceback" not in err.getvalue()
    if code == 0:
        assert head[0] == "down" or "-h" in extra or "--help" in extra, (argv, err.getvalue())
        return
    assert code == 2, (argv, code, err.getvalue())
    assert len(lines) == 1 and ": error:" in lines[0], (argv, err.getvalue())


def test_fuzzing_left_nothing_on_the_host():
    """Run last in this module: nothing of the fuzz lab (or any invalid name) exists."""
    for d in (Path("/run/labkit"), Path("/run/lock/labkit"), Path("/etc/netns"), Path("/run/netns")):
        if d.is_dir():
            assert not [p.name for p in d.iterdir() if FUZZ_LAB in p.name], d
    if Path("/run/labkit").is_dir():
        assert all(LAB_RE.match(p.name) for p in Path("/run/labkit").iterdir())


ROOT_EXAMPLES = 300 if SOAK else 25


@pytest.fixture(scope="module")
def witness():
    """Another lab, up with the blog's manifests: bad input aimed at it changes nothing."""
    from .lab_fixtures import running_lab

    with running_lab("witn", datapath="kernel") as lab:
        yield lab


def _lab_snapshot(lab) -> dict:
    from labkit.embedded import processes, state

    names = lab.backend.names
    return {
        "state": state.path(names).read_text(),
        "netns": sorted(n for n in os.listdir("/run/netns") if names.owns_netns(n)),
        "etc": {str(p): p.read_text() for p in Path("/etc/netns").glob(f"{names.prefix}*/*")},
        "daemons": sorted((d.name, d.pid) for d in processes.daemons(names)),
        "files": sorted(str(p) for p in names.state_dir.rglob("*") if "logs" not in p.parts),
    }


@pytest.mark.root
@settings(SETTINGS, max_examples=ROOT_EXAMPLES)
@given(text=mutated_manifests(), sets=st.lists(st.tuples(keys, st.text(max_size=12)), min_size=1, max_size=3))
def test_bad_input_changes_nothing_in_another_lab(witness, tmp_path_factory, text, sets):
    before = _lab_snapshot(witness)
    f = tmp_path_factory.mktemp("w") / "bad.yaml"
    f.write_text(text)
    try:
        spec.load_manifests([f])
        refused_manifest = False
    except LabError:
        refused_manifest = True
    if refused_manifest:
        with pytest.raises(LabError) as e:
            witness.apply(f)
        _is_one_line_usage_error(e.value)
    options = dict((k, v) for k, v in sets)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec.load_values(overrides=spec.check_options(options))
        refused_values = False
    except LabError:
        refused_values = True
    if refused_values:
        with pytest.raises(LabError) as e:
            witness.up(options=options)
        _is_one_line_usage_error(e.value)
    assert _lab_snapshot(witness) == before
