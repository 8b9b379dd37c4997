"""Shared test plumbing (tests/ and the nbval run of labs/).

Every test is ``unit`` or ``root``: tests marked ``root`` need root, network namespaces,
veth and (for the datapath) bcc; every other test is marked ``unit`` here. On a machine
without root's requirements, root tests skip with the reason; under CI (CI=true) a missing
requirement is a failure instead, so CI can never pass by skipping them. ``slow`` marks the
tests ``make test-fast`` leaves out (notebooks, browsers).
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

# Notebooks (nbval) and exports use their own labs, never a learner's "default" lab: the
# kernels inherit this environment. Removed at the end of the session.
NOTEBOOK_LAB = os.environ.setdefault("LABKIT_LAB", f"nb{os.getpid() % 100000}")


def pytest_sessionfinish(session, exitstatus):
    if ROOT_PROBLEM is None:
        from labkit.embedded.backend import EmbeddedBackend
        from labkit.embedded.names import existing_labs

        for lab in existing_labs():
            if lab == NOTEBOOK_LAB or lab.startswith(NOTEBOOK_LAB + "-"):
                EmbeddedBackend(lab).down()


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith("labs/") and item.nodeid.split("::")[0].endswith(".ipynb"):
            item.add_marker(pytest.mark.root)  # notebooks build real labs: they need what root tests need
            item.add_marker(pytest.mark.slow)
        if "root" not in item.keywords:
            item.add_marker(pytest.mark.unit)


def pytest_runtest_setup(item):
    if "root" in item.keywords and ROOT_PROBLEM is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this root test, but: {ROOT_PROBLEM}", pytrace=False)
        pytest.skip(ROOT_PROBLEM)
