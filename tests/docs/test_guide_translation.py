"""The Chinese guide's code and output blocks are the English pages' own, byte for byte and in order.

docs/guide.zh-CN.md is written for Chinese readers, but its commands, outputs and client code are those of
docs/guide.md and docs/integrations.md, where they are measured (the outputs) and run against real servers
(tests/server/test_integrations_doc.py). A block changed in one page and not the other fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```[^\n]*\n.*?^```$", re.MULTILINE | re.DOTALL)


def blocks(page: str) -> list[str]:
    return BLOCK.findall((DOCS / page).read_text(encoding="utf-8"))


def test_every_block_of_the_chinese_guide_is_one_of_the_english_pages() -> None:
    english = blocks("guide.md")
    integrations = blocks("integrations.md")
    chinese = blocks("guide.zh-CN.md")
    assert chinese, "no code blocks found in guide.zh-CN.md"
    foreign = [b.splitlines()[0:2] for b in chinese if b not in english and b not in integrations]
    assert foreign == [], "blocks of guide.zh-CN.md found in neither English page"
    in_guide = [b for b in chinese if b in english]
    assert in_guide == english, "the guide's blocks, in the guide's order, are all in the Chinese guide"


def test_the_chinese_guide_names_the_same_machine_and_date() -> None:
    machine = (DOCS / "guide-outputs" / "machine.txt").read_text(encoding="utf-8")
    date = re.search(r"^date: (\S+)", machine, re.MULTILINE)
    assert date is not None
    chinese = (DOCS / "guide.zh-CN.md").read_text(encoding="utf-8")
    english = (DOCS / "guide.md").read_text(encoding="utf-8")
    assert date[1] in chinese and date[1] in english
    assert "AMD EPYC" in chinese.split("\n## ")[0]
