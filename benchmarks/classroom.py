"""Benchmark: a class of 30 on one machine, one lab each, built by the students themselves.

`labkit classroom up` with 30 students (accounts lkbench01.. are made once and kept), then
every student at once runs `labkit up` + `labkit apply` as themselves (through the broker)
and curls a webpod. Prints: the class's bring-up time, the time until all 30 labs answer,
memory per student (MemAvailable before/after, over 30), and the hub's response time with
the whole class up, each with a ratio to a baseline measured in the same run: the same 30
labs built by root with the same three commands (no broker, no hub), one after another, and
the hub's API with no lab up.
Run as root, alone (no other benchmark or test run): .venv/bin/python benchmarks/classroom.py [--students 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labkit.classroom import hub, session  # noqa: E402
from labkit.embedded.backend import EmbeddedBackend  # noqa: E402
from labkit.lab import Lab  # noqa: E402


def mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def hub_latency(url: str, token: str, n: int = 50) -> tuple[float, float]:
    """Median and 95th percentile (ms) of GET /hub/api/users (what the class page and REST clients ask)."""
    times = []
    for _ in range(n):
        req = urllib.request.Request(f"{url}/hub/api/users", headers={"Authorization": f"token {token}"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def as_student(uid: int, gid: int, home: str, *argv: str) -> subprocess.CompletedProcess[str]:
    py = str(hub.KIT / ".venv" / "bin" / "python")
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "env", "-u", "LABKIT_LAB",
         f"PYTHONPATH={hub.KIT}", f"HOME={home}", py, "-m", "labkit.cli", *argv],
        capture_output=True, text=True, cwd="/", timeout=900,
    )  # fmt: skip


def student_lab(acct) -> float:
    t = time.perf_counter()
    for argv in (("up",), ("apply", str(hub.KIT / "cluster" / "manifests"))):
        r = as_student(acct.uid, acct.gid, acct.home, *argv)
        if r.returncode != 0:
            raise SystemExit(f"{acct.name}: labkit {' '.join(argv)} failed: {r.stderr.strip()}")
    r = as_student(acct.uid, acct.gid, acct.home, "exec", "client-pod", "--", "curl", "-s", "--max-time", "5",
                   "http://webpod")  # fmt: skip
    if "Hostname: webpod" not in r.stdout:
        raise SystemExit(f"{acct.name}: the webpod did not answer: {r.stderr.strip()}")
    return time.perf_counter() - t


def baseline(n: int) -> tuple[float, int]:
    """The same n labs built by root with the same commands, one after another: seconds,
    bytes of memory each."""
    before = mem_available()
    names = [f"bcb{i:02d}" for i in range(n)]
    cli = [sys.executable, "-m", "labkit.cli"]
    t = time.perf_counter()
    try:
        for name in names:
            for argv in (["up"], ["apply", str(ROOT / "cluster" / "manifests")]):
                subprocess.run([*cli, argv[0], "--lab", name, *argv[1:]], check=True, capture_output=True)
            r = subprocess.run(
                [*cli, "exec", "--lab", name, "client-pod", "--", "curl", "-s", "--max-time", "5", "http://webpod"],
                capture_output=True, text=True,
            )  # fmt: skip
            if "Hostname: webpod" not in r.stdout:
                raise SystemExit(f"baseline lab {name}: the webpod did not answer")
        took = time.perf_counter() - t
        return took, (before - mem_available()) // n
    finally:
        for name in names:
            Lab(EmbeddedBackend(name)).down()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--students", type=int, default=30)
    n = ap.parse_args().students
    if session.running():
        raise SystemExit("a classroom is already up on this machine; run this benchmark alone")

    base_s, base_mem = baseline(n)

    with tempfile.TemporaryDirectory() as tmp:
        class_list = Path(tmp) / "class.txt"
        class_list.write_text("lkbteach instructor\n" + "".join(f"lkbench{i:02d}\n" for i in range(1, n + 1)))
        t = time.perf_counter()
        room, url = session.up(class_list, port=8790)
        class_up = time.perf_counter() - t
    try:
        token = hub.api_token()
        idle_med, idle_p95 = hub_latency(url, token)
        before = mem_available()
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            per_student = list(pool.map(student_lab, room.students))
        all_up = time.perf_counter() - t
        per_mem = (before - mem_available()) // n
        busy_med, busy_p95 = hub_latency(url, token)
    finally:
        left = session.down()
    print(f"class of {n}: classroom up (accounts, namespaces, broker, hub) {class_up:.1f} s")
    print(
        f"all {n} students' labs up + applied + answering, all at once through the broker: {all_up:.1f} s "
        f"(each student waited {statistics.median(per_student):.1f} s median, {max(per_student):.1f} s max); "
        f"the same {n} labs by root, same commands, one after another: {base_s:.1f} s -> ratio {all_up / base_s:.2f}x"
    )
    print(
        f"memory per student (lab + broker share): {per_mem / 2**20:.1f} MiB; a root lab: {base_mem / 2**20:.1f} MiB "
        f"-> ratio {per_mem / max(base_mem, 1):.2f}x"
    )
    print(
        f"hub GET /hub/api/users with {n} labs up: median {busy_med:.1f} ms, p95 {busy_p95:.1f} ms; "
        f"with none: median {idle_med:.1f} ms -> ratio {busy_med / idle_med:.2f}x"
    )
    if left:
        raise SystemExit(f"classroom down left: {left}")


if __name__ == "__main__":
    main()
