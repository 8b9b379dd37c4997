"""A real class of three on this machine (root): the instructor and two students.

`labkit classroom up` with a class list; one student through the hub's REST API (a kernel
driven over the Jupyter server's websocket), the other in a real browser (log in, choose a
password, JupyterLab, run all cells), both running lesson 02 at once. Then: neither server
is root; every forbidden attempt fails with a clear message; the instructor's page (in the
browser) shows both students' checks and resets a lab; `labkit classroom down` leaves
nothing. The Linux accounts are kept (made once, reused by later runs).
"""

from __future__ import annotations

import contextlib
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from labkit import i18n
from labkit.classroom import hub as hubmod
from labkit.classroom import progress, session
from labkit.embedded.names import existing_labs

from .browser import offline_page
from .hub_client import Hub, code_cells, run_notebook

pytestmark = [pytest.mark.root, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
TEACHER, REST, BROWSER = "lktteach", "lktrest", "lktweb"
PASSWORD = "labkit-class-pw"


def _free_base() -> int:
    """A port P with P, P+80, P+81, P+82 free (proxy, its API, the hub, the class page)."""
    for base in range(23000, 29000, 97):
        ok = True
        for port in (base, base + 80, base + 81, base + 82):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    if session.running():
        pytest.fail("a classroom is already up on this machine; the class test needs it to itself")
    class_list = tmp_path_factory.mktemp("class") / "class.txt"
    class_list.write_text(f"# the test's class\n{TEACHER} instructor\n{REST}\n{BROWSER}\n")
    for name in (TEACHER, REST, BROWSER):  # this test's own accounts: their lessons as the kit has them now
        with contextlib.suppress(KeyError):
            shutil.rmtree(Path(pwd.getpwnam(name).pw_dir) / "labs", ignore_errors=True)
    port = _free_base()
    room, url = session.up(class_list, port=port, lang="ko")  # a Korean class: the blog's first readers
    try:
        yield room, url
    finally:
        left = session.down()
        assert left == [], f"labkit classroom down left: {left}"


def _student_cells(notebook: Path, answer: str | None) -> list[str]:
    cells = code_cells(notebook)
    if answer is not None:
        cells = [answer if c.strip().startswith("my_syn_seen_at") else c for c in cells]
    return cells


FORBIDDEN = r'''
import ctypes, os, subprocess, sys, labkit
from labkit import LabError
out = {}
try:
    labkit.connect("OTHER--default").pods
except LabError as e:
    out["other_lab"] = str(e)
try:
    os.listdir("/home/OTHER/labs")
except OSError as e:
    out["other_notebooks"] = e.strerror
other = "/run/netns/lk.OTHER--default.node.kind-worker"
r = subprocess.run(["nsenter", f"--net={other}", "true"], capture_output=True, text=True)
out["other_netns"] = r.stderr.strip()
lab = labkit.connect()
r = lab.node("kind-worker").run(["nsenter", "--net=/proc/1/ns/net", "ip", "link"])
out["host_netns_from_lab"] = r.stderr.strip()
r = lab.node("kind-worker").run(["ip", "link", "set", "eth0", "netns", "1"])
out["move_to_host"] = r.stderr.strip()
r = subprocess.run(["nsenter", "--net=/proc/1/ns/net", "true"], capture_output=True, text=True)
out["host_netns"] = r.stderr.strip()
# BPF_PROG_LOAD of a one-instruction socket filter ("return 0"), here and as root of the lab
prog = """
import ctypes, os
insns = (ctypes.c_uint64 * 2)(0xb7, 0x95)  # r0 = 0; exit
lic = ctypes.create_string_buffer(b"GPL")
attr = (ctypes.c_uint8 * 128)()
ctypes.memmove(ctypes.addressof(attr), (ctypes.c_uint32 * 2)(1, 2), 8)
ctypes.memmove(ctypes.addressof(attr) + 8, (ctypes.c_uint64 * 2)(ctypes.addressof(insns), ctypes.addressof(lic)), 16)
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(321, 5, ctypes.byref(attr), 128)
print("loaded" if fd >= 0 else os.strerror(ctypes.get_errno()))
"""
out["bpf_here"] = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True).stdout.strip()
out["bpf_in_lab"] = lab.node("kind-worker").run([sys.executable, "-c", prog]).stdout.strip()
r = lab.node("kind-worker").run(["sh", "-c", "echo x >> /etc/passwd"])
out["root_in_lab_writes_host"] = r.stderr.strip()
try:
    from labkit.embedded.backend import EmbeddedBackend
    EmbeddedBackend("mine").up()
except LabError as e:
    out["root_backend"] = str(e)
out["uid"] = os.getuid()
out["lab_uid"] = lab.node("kind-worker").run(["id", "-u"]).stdout.strip()
print(repr(out))
'''


def _outputs_text(result: dict) -> str:
    data = [o.get("data", {}) for o in result["outputs"]]
    return "".join(o.get("text", "") for o in result["outputs"]) + "".join(
        str(d.get("text/html", d.get("text/plain", ""))) for d in data
    )


def _browser_session(url: str, box: dict) -> None:
    """The second student: log in (choosing a password), JupyterLab (in Korean, the class's
    language), the Korean lesson 02, run all."""
    try:
        with offline_page(allow=(url,)) as (page, seen):
            page.set_default_timeout(180000)
            page.goto(f"{url}/hub/login")
            page.fill("input[name=username]", BROWSER)
            page.fill("input[name=password]", PASSWORD)
            page.click("input[type=submit], button[type=submit]")
            page.wait_for_url(f"**/user/{BROWSER}/**")
            page.wait_for_selector("#jp-top-panel .lm-MenuBar-itemLabel")
            box["menus"] = page.locator("#jp-top-panel .lm-MenuBar-itemLabel").all_inner_texts()
            box["landed"] = page.url
            page.evaluate("window.jupyterapp.commands.execute('application:close-all')")  # one notebook open
            page.wait_for_timeout(1000)
            page.goto(f"{url}/user/{BROWSER}/lab/tree/ko/02-same-node.ipynb")
            page.wait_for_function(
                "window.jupyterapp && window.jupyterapp.shell.currentWidget "
                "&& window.jupyterapp.shell.currentWidget.sessionContext "
                "&& window.jupyterapp.shell.currentWidget.sessionContext.session "
                "&& window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'"
            )
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            page.wait_for_timeout(1000)
            page.wait_for_function(  # the whole lesson, with its kernel-routing companion lab: minutes
                # queued and running cells show [*]; none left and every cell numbered: done;
                # none left and an error shown: Run All stopped there (reported below)
                "(() => { const nb = window.jupyterapp.shell.currentWidget.node;"
                " const p = [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];"
                " if (p.length === 0 || p.some(e => e.textContent.includes('*'))) return false;"
                " return p.every(e => /\\[\\d+\\]/.test(e.textContent))"
                " || document.querySelector('.jp-OutputArea-output[data-mime-type$=\"stderr\"]') !== null; })()",
                timeout=600000,
            )
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            box["errors"] = [errors.nth(i).inner_text()[:300] for i in range(errors.count())]
            box["cells"] = page.locator(".jp-CodeCell").count()
            # textContent: a cell scrolled out of view has no rendered text (inner_text is empty)
            texts = page.evaluate(
                "[...window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
                ".map(e => e.textContent)"
            )
            box["not_run"] = [i for i, t in enumerate(texts) if not re.search(r"\[\d+\]", t)]
    except BaseException as e:  # reported by the main thread
        box["exception"] = e


def test_a_class_of_three(classroom):
    room, url = classroom
    hub = Hub(url, hubmod.api_token())
    nb = ROOT / "labs" / "02-same-node.ipynb"

    # both students at once: one through the REST API, one in a browser
    browser: dict = {}
    t = threading.Thread(target=_browser_session, args=(url, browser), daemon=True)
    t.start()
    hub.start_server(REST)
    token = hub.user_token(REST)
    right = 'my_syn_seen_at = {"client eth0", "client lxc", "server eth0"}  # bpf_redirect_peer skips the server lxc'
    results = run_notebook(hub, REST, token, "02-same-node.ipynb", _student_cells(nb, right))
    t.join(timeout=900)
    assert not t.is_alive(), "the browser student did not finish"
    if "exception" in browser:
        raise browser["exception"]

    failed = [(r["code"][:60], [o.get("evalue") for o in r["outputs"] if o.get("type") == "error"]) for r in results]
    assert all(r["status"] == "ok" for r in results), [f for f, r in zip(failed, results) if r["status"] != "ok"]
    # the kernels speak the class's language: the English cells' check, in Korean
    i18n.use("ko")
    try:
        question = i18n._("interfaces that saw the SYN")
        right = i18n._("{question}: right. The lab shows {expected}.").split("{expected}")[0]
    finally:
        i18n.use(None)
    assert question != "interfaces that saw the SYN"
    assert "✅ " + right.format(question=f"<b>{question}</b>") in "".join(_outputs_text(r) for r in results)
    assert "파일" in browser["menus"] and "File" not in browser["menus"], browser["menus"]
    assert browser["landed"].split("?")[0].endswith("/lab/tree/ko/01-install.ipynb"), browser["landed"]
    assert browser["errors"] == [] and browser["not_run"] == [] and browser["cells"] >= 10

    # neither student's server is root; each runs as its student
    servers = subprocess.run(["ps", "-eo", "user=,args="], capture_output=True, text=True).stdout.splitlines()
    owners = {line.split()[0] for line in servers if "jupyterhub.singleuser" in line}
    assert owners == {REST, BROWSER}

    # each student's own labs (the lesson's and its kernel-routing companion), nobody else's
    labs = set(existing_labs())
    assert {f"{REST}--default", f"{BROWSER}--default", f"{REST}--default-k"} <= labs

    # every forbidden attempt fails, with the message that says why
    out = run_notebook(hub, REST, token, "02-same-node.ipynb", [FORBIDDEN.replace("OTHER", BROWSER)])[0]
    assert out["status"] == "ok", out
    seen = eval(_outputs_text(out).strip().splitlines()[-1])  # the dict the cell printed
    assert "other students' labs are not yours" in seen["other_lab"]
    assert seen["other_notebooks"] == "Permission denied"
    assert "Operation not permitted" in seen["other_netns"]
    assert "Permission denied" in seen["host_netns_from_lab"]
    assert "Operation not permitted" in seen["move_to_host"]
    assert "Permission denied" in seen["host_netns"]
    assert seen["bpf_here"] == "Operation not permitted"
    assert seen["bpf_in_lab"] == "Operation not permitted"
    assert "Permission denied" in seen["root_in_lab_writes_host"]
    assert "needs root" in seen["root_backend"]
    assert seen["uid"] != 0 and seen["lab_uid"] == "0"  # root only inside the lab's user namespace
    # the other student's server is not this student's either
    with pytest.raises(Exception, match="403|404"):
        hub.api("GET", f"/user/{BROWSER}/api/contents", token=token)

    # the instructor's page shows both students' checks; the instructor resets a lab
    checks = {s: {(r["lesson"], r["question"]): r["verdict"] for r in progress.read(s)} for s in (REST, BROWSER)}
    assert checks[REST][("02-same-node", "interfaces that saw the SYN")] == "right"
    assert checks[BROWSER][("02-same-node", "interfaces that saw the SYN")] == "not tried"
    with offline_page(allow=(url,)) as (page, seen_page):
        page.set_default_timeout(120000)
        page.goto(f"{url}/hub/login?next=/services/class/")
        page.fill("input[name=username]", TEACHER)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url("**/services/class/**")
        page.wait_for_selector("#class")
        rest_row = page.locator(f"tr[data-student={REST}]")
        web_row = page.locator(f"tr[data-student={BROWSER}]")
        assert "right" in rest_row.inner_text() and "not tried" in web_row.inner_text()
        assert re.search(r"default \(up, \d+ pods\)", rest_row.inner_text())
        page.wait_for_selector("#progress .main-svg")  # the plotly figure drew itself, offline
        rest_row.locator("button", has_text="reset lab").click()
        page.wait_for_selector(".message")
        assert f"of {REST} was rebuilt" in page.locator(".message").inner_text()
        assert seen_page["blocked"] == []
    # a student cannot open the class page
    with pytest.raises(Exception, match="403"):
        hub.api("GET", "/services/class/status.json", token=token)

    # still up after the reset; the student's lab answers
    r = subprocess.run(
        [
            "setpriv",
            f"--reuid={room.by_name(REST).uid}",
            f"--regid={room.by_name(REST).gid}",
            "--clear-groups",
            "env",
            f"PYTHONPATH={hubmod.KIT}",
            f"HOME=/home/{REST}",
            str(hubmod.KIT / ".venv" / "bin" / "python"),
            "-m",
            "labkit.cli",
            "exec",
            "--lab",
            "default",
            "client-pod",
            "--",
            "curl",
            "-s",
            "--max-time",
            "5",
            "http://webpod",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    assert r.returncode == 0 and "Hostname: webpod" in r.stdout, r.stderr


CONTRACT = r"""
import sys
sys.path.insert(0, "KIT")
from tests.test_backend_contract import exercise
from labkit.classroom.client import BrokerBackend
from labkit.lab import backend_for
be = backend_for("ctr")
assert isinstance(be, BrokerBackend), type(be)
be.up()
be.apply(["KIT/cluster/manifests"])
try:
    exercise(be, "kind-worker", "client-pod")
finally:
    print(be.down())
print("contract kept")
"""


def test_the_broker_backend_keeps_the_contract_for_a_student(classroom):
    """The contract suite, run by a student (not root) against the broker."""
    room, _url = classroom
    acct = room.by_name(REST)
    code = CONTRACT.replace("KIT", str(hubmod.KIT))
    r = subprocess.run(
        [
            "setpriv",
            f"--reuid={acct.uid}",
            f"--regid={acct.gid}",
            "--clear-groups",
            "env",
            "-u",
            "LABKIT_LAB",
            f"PYTHONPATH={hubmod.KIT}",
            f"HOME={acct.home}",
            str(hubmod.KIT / ".venv" / "bin" / "python"),
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        cwd="/",
        timeout=300,
    )
    assert r.returncode == 0 and "contract kept" in r.stdout, r.stderr[-3000:]


ENDS = r"""
import os, signal, subprocess, sys, time, labkit
lab = labkit.connect("ends")
lab.up()
try:
    relay = lab.backend.popen("kind-worker", ["sleep", "300"])
    time.sleep(1.5)
    pgrep = ["pgrep", "-u", str(os.getuid()), "-x", "sleep"]
    found = lambda: subprocess.run(pgrep, capture_output=True).returncode == 0
    assert found(), "the command did not start"
    relay.send_signal(signal.SIGTERM)
    relay.wait(timeout=10)
    deadline = time.monotonic() + 10
    while found() and time.monotonic() < deadline:
        time.sleep(0.1)
    print("gone" if not found() else "still running")
    r = lab.backend.run("kind-worker", ["sh", "-c", "exit 7"])
    print("exit", r.returncode)
finally:
    lab.down()
"""


def test_a_students_command_ends_with_its_relay_and_passes_its_status(classroom):
    room, _url = classroom
    acct = room.by_name(BROWSER)
    r = subprocess.run(
        ["setpriv", f"--reuid={acct.uid}", f"--regid={acct.gid}", "--clear-groups", "env", "-u", "LABKIT_LAB",
         f"PYTHONPATH={hubmod.KIT}", f"HOME={acct.home}", str(hubmod.KIT / ".venv" / "bin" / "python"), "-c", ENDS],
        capture_output=True, text=True, cwd="/", timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["gone", "exit", "7"], r.stdout


def test_a_students_lab_shell_is_a_terminal_of_its_own(classroom):
    """`labkit shell kind-worker` as the blog uses it: a terminal (job control, Ctrl-C), the
    node shell's `cilium`, and the shell's exit status."""
    room, _url = classroom
    acct = room.by_name(REST)
    cli = (
        f"setpriv --reuid={acct.uid} --regid={acct.gid} --clear-groups env -u LABKIT_LAB PYTHONPATH={hubmod.KIT} "
        f"HOME={acct.home} TERM=xterm {hubmod.KIT}/.venv/bin/python -m labkit.cli"
    )
    up = subprocess.run([*cli.split(), "up"], capture_output=True, text=True, cwd="/", timeout=120)
    assert up.returncode == 0, up.stderr
    cli += " shell kind-worker"
    proc = subprocess.Popen(
        ["script", "-qfec", cli, "/dev/null"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdin is not None
    for keys, wait in ((b"tty\n", 3), (b"cilium bpf endpoint list | head -1\n", 1), (b"sleep 60\n", 3), (b"\x03", 1)):
        time.sleep(wait)
        proc.stdin.write(keys)
        proc.stdin.flush()
    time.sleep(1)
    proc.stdin.write(b"echo after-ctrl-c\nexit 5\n")
    proc.stdin.flush()
    out, _ = proc.communicate(timeout=60)
    text = out.decode(errors="replace")
    assert proc.returncode == 5, text
    assert "/dev/pts/" in text and "no job control" not in text
    assert "IP ADDRESS" in text and "LOCAL ENDPOINT INFO" in text  # cilium, answered through the broker
    assert "after-ctrl-c" in text  # Ctrl-C ended sleep, not the shell
