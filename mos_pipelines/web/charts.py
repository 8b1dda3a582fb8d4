"""Charts as inline SVG drawn on the server (matplotlib, no script, no network): an insight's chart is the
report's own (``insights.report.chart_svg``); an answer of the assistant gets a line or bar chart of its rows."""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

import pandas as pd

_CACHE: OrderedDict[tuple[str, str], str | None] = OrderedDict()
_CACHE_SIZE = 256


def insight_svg(row: pd.Series) -> str | None:
    """The insight's chart (cached by insight id and run: an insight's evidence never changes)."""
    from mos_pipelines.insights.report import chart_svg

    key = (str(row["insight_id"]), str(row.get("created_at")))
    if key not in _CACHE:
        _CACHE[key] = chart_svg(row)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _CACHE[key]


def series_svg(chart: dict[str, Any] | None, columns: list[str], rows: list[list[Any]]) -> str | None:
    """A line or bar chart of ``rows`` as ``chart`` asks ({"type", "x", "y": [columns]}); None when it cannot."""
    if not chart or not rows or chart.get("x") not in columns:
        return None
    ys = [y for y in chart.get("y") or [] if y in columns]
    if not ys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(rows, columns=columns)
    x = frame[chart["x"]].astype(str)
    fig, ax = plt.subplots(figsize=(6.4, 2.6), dpi=100)
    try:
        for i, y in enumerate(ys):
            values = pd.to_numeric(frame[y], errors="coerce")
            if chart.get("type") == "bar":
                width = 0.8 / len(ys)
                ax.bar([j + i * width for j in range(len(x))], values, width=width, label=y)
            else:
                ax.plot(range(len(x)), values, marker=".", label=y)
        step = max(1, len(x) // 8)
        ax.set_xticks(range(0, len(x), step), list(x)[::step], fontsize=7, rotation=20)
        ax.spines[["top", "right"]].set_visible(False)
        if len(ys) > 1:
            ax.legend(fontsize=8)
        else:
            ax.set_ylabel(ys[0])
        fig.tight_layout()
        buffer = io.BytesIO()
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mos"}):
            fig.savefig(buffer, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    text = buffer.getvalue().decode()
    return text[text.index("<svg") :]
