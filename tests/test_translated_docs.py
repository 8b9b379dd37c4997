"""The Korean documents stay translations of their English sources.

Each translated document starts with ``<!-- source: FILE sha256:HEX -->``, the hash of the
English file it translates. The test fails when the English file changed since (the
message names the file to re-translate and the line to write once it is), and when the
two differ in structure: the headings (number and levels) and the fenced code blocks
(number, and each block byte for byte: commands are never translated). Markdown is read
with markdown-it-py (CommonMark), so a ``#`` comment inside a code block is no heading.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
# the translation -> the English file it translates (paths from the repository root)
TRANSLATIONS = {
    "README.ko.md": "README.md",
    "instructors/solutions.ko.md": "instructors/solutions.md",
}
SOURCE_LINE = re.compile(r"<!-- source: (?P<path>\S+) sha256:(?P<hash>[0-9a-f]{64}) -->")


def source_line(english: str) -> str:
    """The first line a translation of `english` carries while it is current."""
    digest = hashlib.sha256((ROOT / english).read_bytes()).hexdigest()
    return f"<!-- source: {english} sha256:{digest} -->"


def structure(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """The heading levels ("h1", "h2", ...) and the fenced code blocks (info, body), in order."""
    tokens = MarkdownIt("commonmark").parse(text)
    headings = [t.tag for t in tokens if t.type == "heading_open"]
    fences = [(t.info, t.content) for t in tokens if t.type == "fence"]
    return headings, fences


def test_the_structure_is_compared_outside_code_blocks():
    text = "# Title\n\n```sh\nmake lab   # a comment, not a heading\n```\n\n## Part\n"
    assert structure(text) == (["h1", "h2"], [("sh", "make lab   # a comment, not a heading\n")])


@pytest.mark.parametrize("korean", sorted(TRANSLATIONS))
def test_the_translation_is_of_the_current_english(korean: str):
    english = TRANSLATIONS[korean]
    first = (ROOT / korean).read_text(encoding="utf-8").splitlines()[0]
    m = SOURCE_LINE.fullmatch(first)
    assert m and m["path"] == english, f"{korean}: its first line must be {source_line(english)}"
    assert first == source_line(english), (
        f"{english} changed since {korean} was translated: re-translate what changed "
        f"(`git log -p {english}` shows it), then set the first line of {korean} to {source_line(english)}"
    )


def test_every_korean_document_is_checked():
    found = {str(p.relative_to(ROOT)) for p in [*ROOT.glob("*.ko.md"), *ROOT.glob("[!.]*/*.ko.md")]}
    assert found <= set(TRANSLATIONS), f"add {sorted(found - set(TRANSLATIONS))} to TRANSLATIONS here"


@pytest.mark.parametrize("korean", sorted(TRANSLATIONS))
def test_the_translation_has_the_english_headings_and_code(korean: str):
    english = TRANSLATIONS[korean]
    en_headings, en_fences = structure((ROOT / english).read_text(encoding="utf-8"))
    ko_headings, ko_fences = structure((ROOT / korean).read_text(encoding="utf-8"))
    assert ko_headings == en_headings, (
        f"{korean} has {len(ko_headings)} headings {ko_headings}, {english} {len(en_headings)} "
        f"{en_headings}: give it the English headings, translated, at the same levels"
    )
    assert len(ko_fences) == len(en_fences), (
        f"{korean} has {len(ko_fences)} fenced code blocks, {english} {len(en_fences)}: copy them from {english}"
    )
    for i, (ko, en) in enumerate(zip(ko_fences, en_fences), 1):
        assert ko == en, f"{korean}: code block {i} differs from {english}'s (code is never translated): copy it"
