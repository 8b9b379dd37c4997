"""Chaos (root): `up`, `apply`, `exec` and the lab's daemons killed at random points; after
each, `down` leaves nothing or `up` recovers a lab that answers. ``make soak`` runs many
more rounds (LABKIT_SOAK=1); LABKIT_CHAOS_SEED replays a run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from labkit.embedded import processes
from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames
from labkit.embedded.teardown import leftovers
from labkit.lab import Lab

from .lab_fixtures import lab_name

pytestmark = pytest.mark.root
SOAK = os.environ.get("LABKIT_SOAK") == "1"
ROUNDS = int(os.environ.get("LABKIT_CHAOS_ROUNDS") or (30 if SOAK else 2))
SEED = int(os.environ.get("LABKIT_CHAOS_SEED") or time.time_ns() % 100000)


def labkit(*argv: str) -> list[str]:
    return [sys.executable, "-m", "labkit.cli", *argv]


def killed_after(argv: list[str], seconds: float) -> None:
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(seconds)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()


def ok(argv: list[str]) -> subprocess.CompletedProcess:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (argv, r.stdout, r.stderr)
    return r


def answers(lab: Lab) -> bool:
    r = lab.pod("client-pod").run(["curl", "-s", "-m", "3", "http://webpod"], timeout=10)
    return r.stdout.startswith("Hostname: webpod")


def test_kill_up_apply_exec_and_daemons_then_recover():
    rng = random.Random(SEED)
    name = lab_name("chaos")
    names = LabNames(name)
    lab = Lab(EmbeddedBackend(name))
    print(f"chaos seed {SEED}, {ROUNDS} rounds")  # replay: LABKIT_CHAOS_SEED=<seed>
    try:
        for rnd in range(ROUNDS):
            where = f"seed {SEED} round {rnd}"
            killed_after(labkit("up", "--lab", name, "--no-hint"), rng.uniform(0.05, 3.0))
            if rng.random() < 0.3:
                ok(labkit("down", "--lab", name))
                assert leftovers(names) == [], where
            ok(labkit("up", "--lab", name, "--no-hint"))
            assert lab.is_up and lab.backend.problems() == [], where

            killed_after(labkit("apply", "--lab", name, "cluster/manifests"), rng.uniform(0.05, 2.5))
            ok(labkit("apply", "--lab", name, "cluster/manifests"))  # works the first time
            assert {"curl-pod", "client-pod"} <= set(lab.pods.name) and answers(lab), where

            exec_cli = subprocess.Popen(
                labkit(
                    "exec", "--lab", name, "client-pod", "--", "sh", "-c", "sleep 300 & while :; do sleep 0.05; done"
                ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.1, 1.0))
            exec_cli.send_signal(signal.SIGKILL)
            exec_cli.wait()

            ds = processes.daemons(names)
            for d in rng.sample(ds, rng.randint(1, len(ds))):
                os.kill(d.pid, signal.SIGKILL)
            time.sleep(0.2)
            assert lab.backend.problems(), where
            ok(labkit("up", "--lab", name))
            assert lab.backend.problems() == [] and answers(lab), where
            if rnd == ROUNDS - 1 or rng.random() < 0.3:
                ok(labkit("down", "--lab", name))
                assert leftovers(names) == [], where
                assert not processes.lab_pids(names), where
    finally:
        EmbeddedBackend(name).down()
    assert leftovers(names) == [] and not names.lock.exists()
