"""The classroom's parts without a class: class lists, names, the broker's decisions and
wire format, limits, progress, the instructor's page, the hub's settings, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.classroom import client, hub, instructor, limits, progress, protocol, roster, session, userns
from labkit.classroom.broker import Broker, Caller, _shorten
from labkit.classroom.client import BrokerBackend
from labkit.classroom.limits import Cage, Limits
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames, lab_owner, owned_lab
from labkit.errors import LabError
from labkit.plots.progress import class_progress
from labkit.tables import CHECKS

ROOT = Path(__file__).resolve().parent.parent


def room(lang: str = "en", **kw) -> roster.Classroom:
    accounts = [
        roster.Account("alice", 5001, 5001, "/home/alice"),
        roster.Account("bob", 5002, 5002, "/home/bob"),
        roster.Account("teach", 5003, 5003, "/home/teach", instructor=True),
    ]
    return roster.Classroom(accounts, Limits(**kw), repo=str(ROOT), lang=lang)


# ---------------------------------------------------------------- class lists and names
def test_a_class_list_names_students_and_the_instructor():
    members = roster.parse_class_list("# week 1\nteach instructor\nalice\n\nbob  # late\n")
    assert [(m.name, m.instructor) for m in members] == [("teach", True), ("alice", False), ("bob", False)]


@pytest.mark.parametrize(
    "text, why",
    [
        ("Alice\n", "line 1: 'Alice' is not a valid login name"),
        ("alice\nalice\n", "line 2: alice is listed twice"),
        ("alice admin\n", "only the word 'instructor'"),
        ("# nobody\n", "names nobody"),
        ("averyveryverylongname\n", "not a valid login name"),
    ],
)
def test_a_bad_class_list_is_one_line_naming_the_line(text, why):
    with pytest.raises(LabError, match=why) as e:
        roster.parse_class_list(text, "class.txt")
    assert "\n" not in str(e.value)


def test_a_students_lab_is_prefixed_and_owned_by_their_user_namespace():
    assert owned_lab("alice", "default") == "alice--default"
    assert lab_owner("alice--default-k") == "alice" and lab_owner("default") is None
    assert LabNames("alice--default").userns == Path("/run/labkit-classroom/userns/alice")
    assert LabNames("default").userns is None
    with pytest.raises(LabError, match="at most 13 characters"):
        owned_lab("alice", "a-very-long-lab-name")


def test_the_classroom_record_round_trips():
    r = room(memory_mb=512)
    back = roster.Classroom.from_json(r.to_json())
    assert back == r and back.by_uid(5002).name == "bob" and [a.name for a in back.students] == ["alice", "bob"]


# ---------------------------------------------------------------- the broker's decisions
def test_a_student_reaches_only_their_own_labs():
    b = Broker(room())
    alice = Caller(5001, b.classroom.by_uid(5001))
    assert b.lab_of(alice, "default") == ("alice--default", "default")
    assert b.lab_of(alice, None) == ("alice--default", "default")
    with pytest.raises(LabError, match="other students' labs are not yours"):
        b.lab_of(alice, "bob--default")
    assert b.lab_of(alice, "default", "bob") == ("alice--default", "default")  # student= is the instructor's


def test_the_instructor_reaches_a_students_lab_by_name():
    b = Broker(room())
    teach = Caller(5003, b.classroom.by_uid(5003))
    assert teach.admin and b.lab_of(teach, "default", "bob") == ("bob--default", "default")
    with pytest.raises(LabError, match="not in this class"):
        b.lab_of(teach, "default", "mallory")
    assert Caller(0, None).admin


def test_someone_outside_the_class_is_refused(monkeypatch):
    monkeypatch.setattr(roster, "load", lambda *a: None)
    with pytest.raises(LabError, match="uid 4242 is not in this class"):
        Broker(room()).caller(4242)


def test_labs_per_student_are_limited(monkeypatch):
    b = Broker(room(labs=2))
    monkeypatch.setattr(b, "student_labs", lambda student: ["default", "default-k"])
    monkeypatch.setattr(b, "ensure_userns", lambda student: pytest.fail("no namespace before the limit check"))
    alice = Caller(5001, b.classroom.by_uid(5001))
    with pytest.raises(LabError, match="already has 2 labs .* the class limit"):
        b.up(alice, "alice--third", "third", {})


def test_commands_at_once_are_limited():
    b = Broker(room(processes=2))
    b.count("alice", +1)
    b.count("alice", +1)
    with pytest.raises(LabError, match="the class limit"):
        b.count("alice", +1)
    b.count("alice", -1)
    b.count("alice", +1)


@pytest.mark.parametrize("files", [None, [], [{"name": "x.yaml"}], "cluster/manifests"])
def test_apply_takes_manifest_text_never_a_path(files):
    with pytest.raises(LabError):
        Broker(room()).apply("alice--default", files)


def test_capture_points_per_request_are_limited():
    b = Broker(room(capture_sockets=2))
    with pytest.raises(LabError, match="at most 2 capture points"):
        b.open_sockets("alice--default", ["a:eth0", "b:eth0", "c:eth0"])
    with pytest.raises(LabError, match="by name"):
        b.open_sockets("alice--default", "client-pod:eth0")


def test_a_student_sees_their_labs_name_not_the_machines():
    e = _shorten(
        LabError("lab 'alice--default' is not up; run: labkit up --lab alice--default"), "alice--default", "default"
    )
    assert str(e) == "lab 'default' is not up; run: labkit up --lab default"


# ---------------------------------------------------------------- the wire
def test_requests_are_json_and_descriptors_ride_along():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    with a, b:
        protocol.send_request(a, {"op": "spawn", "argv": ["true"]}, [r, w])
        req, fds = protocol.recv_request(b)
        assert req == {"op": "spawn", "argv": ["true"]} and len(fds) == 2
        os.write(fds[1], b"x")
        assert os.read(r, 1) == b"x"
        assert protocol.peer_uid(b) == os.getuid()
        protocol.send_reply(b, {"error": LabError("no")})
        reply, _ = protocol.recv_reply(a)
        assert isinstance(reply["error"], LabError)
        a.sendall(b"\x00\x00\x00\x02[]")
        with pytest.raises(protocol.ProtocolError, match="object"):
            protocol.recv_request(b)
        a.sendall(b"\x00\x00\x00\x03abc")
        with pytest.raises(protocol.ProtocolError, match="JSON"):
            protocol.recv_request(b)
        a.sendall((protocol.MAX_REQUEST + 1).to_bytes(4, "big"))
        with pytest.raises(protocol.ProtocolError, match="larger"):
            protocol.recv_request(b)
    for fd in (r, w, *fds):
        os.close(fd)


def test_a_student_uses_the_broker_only_when_there_is_one(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_BROKER", str(tmp_path / "none.sock"))
    assert not client.wanted()
    (tmp_path / "b.sock").touch()
    monkeypatch.setenv("LABKIT_BROKER", str(tmp_path / "b.sock"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert client.wanted()
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert client.in_initial_userns() and not client.wanted()


def test_no_broker_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_BROKER", str(tmp_path / "none.sock"))
    with pytest.raises(LabError, match="cannot reach the lab broker .* labkit classroom up"):
        BrokerBackend("default").is_up()


def test_the_broker_backend_has_the_embedded_backends_capabilities():
    assert BrokerBackend.capabilities == EmbeddedBackend.capabilities


def test_manifests_are_read_by_the_student(tmp_path):
    (tmp_path / "a.yaml").write_text("kind: Pod\n")
    (tmp_path / "notes.txt").write_text("x")
    assert client._manifest_files([str(tmp_path)]) == [{"name": "a.yaml", "text": "kind: Pod\n"}]
    with pytest.raises(LabError, match="no manifest file"):
        client._manifest_files([str(tmp_path / "missing")])


def test_the_relay_says_how_to_use_it():
    r = subprocess.run([sys.executable, "-m", "labkit.classroom.relay", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage:" in r.stderr


# ---------------------------------------------------------------- limits and namespaces
def _fake_v1(root: Path) -> None:
    for sub, f in (("memory", "memory.limit_in_bytes"), ("cpu", "cpu.cfs_quota_us")):
        (root / sub).mkdir(parents=True)
        (root / sub / f).write_text("0")


def test_cages_use_v1_on_a_hybrid_machine(tmp_path):
    _fake_v1(tmp_path)
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    assert limits.mode(tmp_path) == "v1"
    cage = Cage("alice", tmp_path)
    cage.create(Limits(memory_mb=256, cpus=0.5))
    assert (tmp_path / "memory/labkit-classroom/alice/memory.limit_in_bytes").read_text() == str(256 << 20)
    assert (tmp_path / "cpu/labkit-classroom/alice/cpu.cfs_quota_us").read_text() == "50000"


def test_cages_use_v2_where_it_has_memory_and_cpu(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    _fake_v1(tmp_path)  # even with v1 files around, v2 wins
    assert limits.mode(tmp_path) == "v2"
    Cage("bob", tmp_path).create(Limits(memory_mb=128, cpus=2))
    d = tmp_path / "labkit-classroom" / "bob"
    assert (d / "memory.max").read_text() == str(128 << 20) and (d / "cpu.max").read_text() == "200000 100000"


def test_no_controllers_means_no_cage(tmp_path):
    assert limits.mode(tmp_path) == "none" and Cage("x", tmp_path).dirs == []


def test_limits_must_be_positive():
    with pytest.raises(LabError, match="memory_mb must be positive"):
        Limits(memory_mb=0).check()


def test_user_namespace_maps_root_to_the_student_and_subordinate_ids(tmp_path):
    sub = tmp_path / "subuid"
    sub.write_text("other:100000:65536\nalice:165536:65536\n")
    assert userns.subordinate(str(sub), "alice") == (165536, 65536)
    assert userns.subordinate(str(sub), "bob") is None
    assert userns.id_map(1001, (165536, 65536)) == "0 1001 1\n1 165536 65535\n"
    assert userns.id_map(1001, None) == "0 1001 1\n"


# ---------------------------------------------------------------- progress and the page
def test_check_results_are_recorded_per_student(monkeypatch, tmp_path):
    monkeypatch.setattr(progress, "DIR", tmp_path)
    progress.record("alice", "02-same-node", "points that saw the SYN", "wrong")
    progress.record("alice", "02-same-node", "points that saw the SYN", "right")
    progress.record("alice", "03-service", "destination", "not tried")
    got = progress.read("alice")
    assert [(r["lesson"], r["verdict"]) for r in got] == [("02-same-node", "right"), ("03-service", "not tried")]
    assert progress.read("bob") == []
    with pytest.raises(LabError, match="verdict"):
        progress.record("alice", "x", "q", "maybe")


def test_outside_a_classroom_nothing_is_recorded(monkeypatch, tmp_path):
    monkeypatch.setenv("LABKIT_BROKER", str(tmp_path / "none.sock"))
    assert progress.send("q", "right", "02") is False


def _status() -> dict:
    return {
        "students": [
            {
                "student": "alice",
                "uid": 5001,
                "labs": [{"lab": "default", "up": True, "pods": 4}],
                "memory_bytes": 200 << 20,
                "checks": [{"lesson": "02-same-node", "question": "SYN", "verdict": "right", "time": 1.0}],
            },
            {"student": "bob", "uid": 5002, "labs": [], "memory_bytes": 0, "checks": []},
            {
                "student": "carol",
                "uid": 5004,
                "labs": [{"lab": "default", "up": True, "pods": 4, "problems": ["the event agent is not running"]}],
                "memory_bytes": 0,
                "checks": [],
            },
        ],
        "limits": Limits().to_dict(),
    }


def test_the_progress_plot_counts_students_who_did_not_try():
    checks = instructor.checks_frame(_status())
    CHECKS.check(checks)
    fig = class_progress(checks, ["alice", "bob", "carol"])
    bars = {t.name: list(t.y) for t in fig.data}
    assert bars == {"right": [1], "wrong": [0], "not tried": [2]}
    assert fig.data[0].x == ("02-same-node: SYN",)
    empty = class_progress(CHECKS.frame([]), ["alice"])
    assert "no check cells run yet" in empty.layout.annotations[0].text


def test_the_instructor_page_shows_each_student_and_their_checks():
    html = instructor.page(_status(), "/services/class/", "tok")
    assert "<tr data-student='alice'>" in html and "default (up, 4 pods)" in html and "class='v right'" in html
    assert "<tr data-student='bob'>" in html and "no lab" in html and "class='v not-tried'" in html
    assert "default (up, 4 pods, 1 problems: the event agent is not running)" in html
    assert "name='_xsrf' value='tok'" in html and 'id="progress"' in html
    assert "cdn" not in html.lower().split("plotly.js")[0][:2000]  # plotly.js is inline: the page works offline


# ---------------------------------------------------------------- the hub and the CLI
def test_the_hub_settings_come_from_the_class(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "HUB_DIR", tmp_path)
    s = hub.settings(room())
    assert s["users"] == ["alice", "bob", "teach"] and s["admins"] == ["teach"]
    assert s["ip"] == "127.0.0.1" and s["student_python"].startswith(str(hub.KIT))
    assert (tmp_path / "labkit-api-token").stat().st_mode & 0o777 == 0o600


def test_the_hub_config_wires_the_class(monkeypatch, tmp_path):
    from traitlets.config import Config

    monkeypatch.setattr(hub, "HUB_DIR", tmp_path)
    monkeypatch.setattr(roster, "load", lambda *a: room())
    cfg = Config()
    exec(compile(hub.CONFIG.read_text(), str(hub.CONFIG), "exec"), {"get_config": lambda: cfg})
    assert cfg.JupyterHub.ip == "127.0.0.1" and cfg.Authenticator.admin_users == {"teach"}
    assert cfg.Authenticator.allowed_users == {"alice", "bob", "teach"}
    assert {s["name"] for s in cfg.JupyterHub.services} == {"labkit", "idle-culler", "class"}
    culler = next(s for s in cfg.JupyterHub.services if s["name"] == "idle-culler")
    assert f"--timeout={hub.IDLE_TIMEOUT}" in culler["command"]
    assert cfg.Spawner.cmd[0].startswith(str(hub.KIT)) and cfg.Spawner.environment["PYTHONPATH"] == str(hub.KIT)
    assert cfg.JupyterHub.spawner_class.__name__ == "ClassroomSpawner"


def test_students_get_their_own_copy_of_the_labs(tmp_path):
    kit = tmp_path / "kit"
    shutil.copytree(ROOT / "labs", kit, ignore=shutil.ignore_patterns("locale"))
    acct = roster.Account("me", os.getuid(), os.getgid(), str(tmp_path))
    dest = hub.copy_labs(kit, acct)
    assert sorted(p.name for p in dest.glob("*.ipynb")) == sorted(p.name for p in kit.glob("*.ipynb"))
    assert (dest / "ko" / "02-same-node.ipynb").exists() and (dest / "ko" / "glossary.md").exists()
    (dest / "02-same-node.ipynb").write_text("mine")
    (kit / "02-same-node.ipynb").write_text("the kit, updated")
    (kit / "03-service.ipynb").write_text("the kit, updated")
    hub.copy_labs(kit, acct)
    assert (dest / "02-same-node.ipynb").read_text() == "mine"  # a student's work is never overwritten
    assert (dest / "03-service.ipynb").read_text() == "the kit, updated"  # untouched: brought up to date
    (dest / "03-service.ipynb").unlink()
    hub.copy_labs(kit, acct)
    assert (dest / "03-service.ipynb").exists()  # a lesson deleted by mistake comes back


def test_a_korean_class_lands_on_the_korean_edition_with_jupyterlab_in_korean(monkeypatch, tmp_path):
    from traitlets.config import Config

    monkeypatch.setattr(hub, "HUB_DIR", tmp_path)
    assert roster.Classroom.from_json(room("ko").to_json()).lang == "ko"
    assert hub.settings(room())["default_url"] == "/lab"
    monkeypatch.setattr(roster, "load", lambda *a: room("ko"))
    cfg = Config()
    exec(compile(hub.CONFIG.read_text(), str(hub.CONFIG), "exec"), {"get_config": lambda: cfg})
    assert cfg.Spawner.default_url == "/lab/tree/ko/01-install.ipynb" and (ROOT / "labs/ko/01-install.ipynb").exists()
    assert cfg.Spawner.environment["LABKIT_LANG"] == "ko"  # the kernels speak Korean too

    acct = roster.Account("me", os.getuid(), os.getgid(), str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    path = hub.interface_language(acct, "ko")
    assert path is not None and json.loads(path.read_text()) == {"locale": "ko_KR"}
    assert path.is_relative_to(tmp_path / "home" / ".jupyter")
    path.write_text('{"locale": "en"}')  # the student chose English in Settings > Language
    hub.interface_language(acct, "ko")
    assert json.loads(path.read_text()) == {"locale": "en"}
    assert hub.interface_language(acct, "en") is None  # English: JupyterLab's own default


def test_a_class_in_a_language_labkit_lacks_is_refused_before_anything_changes(tmp_path):
    class_list = tmp_path / "class.txt"
    class_list.write_text("alice\n")
    before = session.running()
    r = _labkit("classroom", "up", "--class", str(class_list), "--lang", "fr")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'fr'" in r.stderr and "ko" in r.stderr, r.stderr
    assert session.running() == before


def _labkit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True, text=True)


def test_classroom_up_needs_a_class_list():
    r = _labkit("classroom", "up")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--class FILE" in r.stderr


def test_a_bad_class_list_changes_nothing(tmp_path):
    bad = tmp_path / "class.txt"
    bad.write_text("Not-A-Name\n")
    r = _labkit("classroom", "up", "--class", str(bad))
    assert r.returncode == 2 and "line 1" in r.stderr and r.stderr.count("\n") == 1
