"""Shared test plumbing.

Tests marked ``root`` need root, network namespaces, veth and (for the datapath) bcc. On a
machine without them they skip with the reason; under CI (CI=true) a missing requirement is
a failure instead, so CI can never pass by skipping them.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _root_problem() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if not shutil.which("ip"):
        return "needs iproute2 (ip)"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"network namespaces unavailable: {r.stderr.strip()}"
    return None


ROOT_PROBLEM = _root_problem()


def pytest_runtest_setup(item):
    if "root" in item.keywords and ROOT_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this root test, but: {ROOT_PROBLEM}", pytrace=False)
        pytest.skip(ROOT_PROBLEM)
