"""`labkit bpf source FILE`: the program text exactly as bcc compiles it (like bcc tools' --ebpf)."""

from __future__ import annotations

import re

import pytest

from labkit.cli import main
from labkit.embedded.ebpf import build, source

LINE = re.compile(r'^#line (\d+) "([^"]+)"$')


@pytest.mark.parametrize("name", sorted(build.PROGRAMS))
def test_bpf_source_prints_what_is_compiled(name, capsys):
    assert main(["bpf", "source", name]) == 0
    out = capsys.readouterr().out
    assert out == source.program_text(name)  # the very text build.py hands to bcc (and keys its cache on)
    assert '#include "' not in out and out.count("#define LK_COMMON_H") == 1
    assert out.startswith(f'#line 1 "{name}"\n')


@pytest.mark.parametrize("name", sorted(build.PROGRAMS))
def test_every_printed_line_is_where_its_line_marker_says(name, capsys):
    """Walking the #line markers maps each printed line back to the same text in bpf/: what
    a compiler error, a drop's file:line and a metric's LINE rely on."""
    main(["bpf", "source", name])
    files: dict[str, list[str]] = {}
    where: tuple[str, int] | None = None
    checked = 0
    for text in capsys.readouterr().out.splitlines():
        m = LINE.match(text)
        if m:
            where = (m[2], int(m[1]))
            continue
        assert where is not None
        f, n = where
        lines = files.setdefault(f, (source.BPF_DIR / f).read_text().splitlines())
        assert lines[n - 1] == text, f"{f}:{n}"
        where = (f, n + 1)
        checked += 1
    assert checked > 100 and {name, "lib/common.h"} <= set(files)


def test_bpf_source_of_an_unknown_file_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bpf", "source", "bpf_overlay.c"])
    assert e.value.code == 2
    assert "choose from 'bpf_lxc.c', 'bpf_host.c', 'bpf_sock.c'" in capsys.readouterr().err
