"""`线损 3号台区` as a small PNG: the daily rate over the last days, the normal band, the
abnormal days in red. matplotlib is imported here only (this module is imported on first
use), with the report chart's CJK font and its lock (rcParams are process-wide). The numbers
drawn go into the PNG's Description chunk (JSON), so a test can read what was drawn."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

from bot.features.lineloss.limits import Threshold
from bot.features.lineloss.report import DayFigure
from bot.features.reports.chart import _lock, cjk_family
from bot.i18n import t
from bot.textutil import clean_text

WIDTH_PX, HEIGHT_PX, DPI = 900, 420, 100
NORMAL, ABNORMAL, BAND = "#4e79a7", "#e15759", "#59a14f"


def render(area: str, days: list[DayFigure], th: Threshold, first: date, last: date,
           locale: str) -> bytes:
    with _lock:
        return _draw(clean_text(area, multiline=False), days, th, first, last, locale)


def _draw(area: str, days: list[DayFigure], th: Threshold, first: date, last: date,
          locale: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    family = cjk_family()
    rc: dict[str, Any] = {"font.size": 10, "axes.unicode_minus": False, "text.parse_math": False}
    if family:
        rc["font.family"] = [family, "DejaVu Sans"]
    shown = [d for d in days if d.rate is not None]
    xs = [(d.day - first).days for d in shown]
    rates = [float(d.rate) for d in shown if d.rate is not None]
    with matplotlib.rc_context(rc):
        figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        ax = figure.add_subplot()
        ax.axhspan(th.below, th.above, color=BAND, alpha=0.12,
                   label=t(locale, "lineloss.chart.band", below=f"{th.below:g}",
                           above=f"{th.above:g}"))
        ax.plot(xs, rates, color=NORMAL, marker="o", markersize=3, linewidth=1.5,
                label=t(locale, "lineloss.chart.rate"))
        bad = [(x, r) for x, r in zip(xs, rates, strict=True) if th.abnormal(r)]
        if bad:
            ax.scatter([x for x, _ in bad], [r for _, r in bad], color=ABNORMAL, zorder=3,
                       label=t(locale, "lineloss.chart.abnormal"))
        span = (last - first).days
        ticks = list(range(0, span + 1, max(1, span // 6)))
        ax.set_xticks(ticks, [f"{date.fromordinal(first.toordinal() + i):%m-%d}"
                              for i in ticks])
        ax.set_xlim(-0.5, span + 0.5)
        ax.set_ylabel(t(locale, "lineloss.chart.ylabel"))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.set_title(t(locale, "lineloss.chart.title", area=area, first=first.isoformat(),
                       last=last.isoformat()), fontsize=12)
        data = {"area": area, "first": first.isoformat(), "last": last.isoformat(),
                "band": [th.below, th.above],
                "days": [[d.day.isoformat(), d.rate] for d in shown],
                "abnormal": [d.day.isoformat() for d in shown if th.abnormal(d.rate)]}
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI,
                       metadata={"Description": json.dumps(data, ensure_ascii=True)})
    return out.getvalue()
