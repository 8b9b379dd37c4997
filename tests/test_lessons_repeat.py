"""Every lesson is true on every run: each notebook runs three times in a row on one lab,
then once more on a fresh lab, and every run must end with its recap, every claim of the
text shown by the run (the recap raises on a claim not shown, so a failing claim fails the
cell). The claims themselves live in labkit/lesson (one module per lesson)."""

from __future__ import annotations

import pytest

from labkit.embedded.backend import EmbeddedBackend
from labkit.embedded.names import LabNames, existing_labs
from labkit.embedded.teardown import leftovers
from labkit.export import notebooks, run_notebook
from labkit.lab import Lab

from .lab_fixtures import lab_name

pytestmark = [pytest.mark.root, pytest.mark.slow]
RUNS_ON_ONE_LAB = 3


def recap_of(nb) -> str:
    """The recap's HTML (the last cell that shows one)."""
    for cell in reversed(nb.cells):
        for out in cell.get("outputs", []):
            text = out.get("data", {}).get("text/html", "")
            if "Recap: what this run showed" in text:
                return text
    return ""


def _down_with_companions(name: str) -> None:
    Lab(EmbeddedBackend(name)).down()
    for lab in existing_labs():
        if lab.startswith(name + "-"):
            EmbeddedBackend(lab).down()


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_a_lesson_holds_three_times_in_a_row_and_on_a_fresh_lab(path, monkeypatch):
    one, fresh = lab_name("rp" + path.stem[:2]), lab_name("rf" + path.stem[:2])
    try:
        for lab, runs in ((one, RUNS_ON_ONE_LAB), (fresh, 1)):
            monkeypatch.setenv("LABKIT_LAB", lab)
            for i in range(runs):
                nb = run_notebook(path)  # a cell that fails (a claim not shown) fails here
                recap = recap_of(nb)
                assert recap, f"{path.name} run {i + 1} on {lab}: no recap"
                assert "❌" not in recap and recap.count("✅") >= 3, f"{path.name} run {i + 1}: {recap[:500]}"
    finally:
        for lab in (one, fresh):
            _down_with_companions(lab)
            assert leftovers(LabNames(lab)) == []
