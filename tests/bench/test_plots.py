from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest

from embedlab.bench.plots import all_figures, write_report
from embedlab.errors import OutputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_figures_for_every_swept_parameter(tiny_result: dict[str, Any]) -> None:
    titles = [f.title for f in all_figures(tiny_result)]
    assert titles == [
        "Throughput vs batch size",
        "Throughput and latency vs sequence length",
        "Backend / precision comparison",
        "Model shape (random-weight BERTs)",
        "Padding waste",
    ]  # one thread count only: no thread-scaling plot
    assert all(f.png.startswith(PNG_MAGIC) for f in all_figures(tiny_result))


def test_html_report_embeds_pngs_and_every_point(tiny_result: dict[str, Any], tmp_path: Path) -> None:
    path = write_report(tiny_result, tmp_path / "report.html")
    text = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 5 and all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert text.count("<tr>") == len(tiny_result["points"]) + 1
    assert "Cache effect:" in text


def test_report_to_an_unwritable_path(tiny_result: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="cannot write the report"):
        write_report(tiny_result, tmp_path / "no-such-dir" / "r.html")
