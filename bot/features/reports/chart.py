"""The report as a PNG: work items per person (stacked bars) and each person's on-time %.

matplotlib is imported inside the functions (Agg, no display): the bot starts fast and a
machine that never makes a chart never loads it. Chinese text needs a CJK font: Noto Sans SC
comes from the `pylopdf-fonts-zh-cn` wheel (SIL OFL 1.1, a pyproject dependency), so a fresh
install renders names without empty boxes; a system CJK font is the fallback.

The numbers drawn are also stored in the PNG's Description text chunk (JSON), so a test can
compare the picture's data with the database."""

from __future__ import annotations

import importlib.resources
import io
import json
import logging
import threading
from dataclasses import asdict, dataclass
from typing import Any

from bot.features.reports.figures import Figures
from bot.i18n import t
from bot.rules import work_item_keys
from bot.textutil import clean_text

log = logging.getLogger(__name__)

WIDTH_PX = 1200
DPI = 100
BASE_PX = 240  # title, legend, axis labels
ROW_PX = 26  # one bar per person
MAX_ROWS = 60  # beyond this the chart shows the people with most entries; the XLSX has all
FONT_PACKAGES = (("pylopdf_fonts_zh_cn", "NotoSansSC-Regular.otf"),)
SYSTEM_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC")
# Nine clearly different colours, one per work item, in the paper form's order.
COLORS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
          "#9c755f", "#bab0ac")

_lock = threading.Lock()  # pyplot is not used, but rcParams and the font list are global
_family: str | None = None
_font_checked = False


@dataclass(frozen=True)
class ChartRow:
    user_id: int
    name: str
    items: dict[str, int]
    on_time: int
    judged: int

    @property
    def pct(self) -> float | None:
        return self.on_time / self.judged if self.judged else None


def rows_of(fig: Figures) -> list[ChartRow]:
    """The bars, in the report's order (most entries first), at most MAX_ROWS."""
    return [ChartRow(p.user_id, p.name, {k: p.items.get(k, 0) for k in work_item_keys()},
                     p.on_time.on_time, p.on_time.judged) for p in fig.people[:MAX_ROWS]]


def size_px(rows: int) -> tuple[int, int]:
    return WIDTH_PX, BASE_PX + ROW_PX * max(rows, 1)


def font_path() -> str | None:
    """The shipped CJK font file, if its package is installed."""
    for package, name in FONT_PACKAGES:
        try:
            path = importlib.resources.files(package) / name
        except ModuleNotFoundError:
            continue
        if path.is_file():
            return str(path)
    return None


def cjk_family() -> str | None:
    """Register the CJK font with matplotlib once; its family name, or None (boxes)."""
    global _family, _font_checked
    if _font_checked:
        return _family
    from matplotlib import font_manager

    path = font_path()
    if path is not None:
        font_manager.fontManager.addfont(path)
        _family = font_manager.FontProperties(fname=path).get_name()
    else:
        for family in SYSTEM_FONTS:
            try:
                font_manager.findfont(font_manager.FontProperties(family=family),
                                      fallback_to_default=False)
            except ValueError:
                continue
            _family = family
            break
        else:
            log.warning("no CJK font found: Chinese text in charts will show as boxes "
                        "(pip install pylopdf-fonts-zh-cn)")
    _font_checked = True
    return _family


def render(fig: Figures, locale: str) -> bytes:
    rows = rows_of(fig)
    with _lock:
        return _draw(fig, rows, locale)


def _draw(fig: Figures, rows: list[ChartRow], locale: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    family = cjk_family()
    # Names are text, never TeX: a name like "$\\foo$" would otherwise be parsed as mathtext
    # and fail the whole chart (and with it the team's report).
    rc: dict[str, Any] = {"font.size": 10, "axes.unicode_minus": False, "text.parse_math": False}
    if family:
        rc["font.family"] = [family, "DejaVu Sans"]
    keys = work_item_keys()
    # The features' headline figures (hazards, tasks, visits ...): a panel under the people.
    extra = [(clean_text(label, multiline=False), value) for part in fig.parts
             for label, value in part.chart]
    width, height = size_px(len(rows) + (len(extra) + 2 if extra else 0))

    def w(key: str, **kw: Any) -> str:
        return t(locale, key, **kw)

    with matplotlib.rc_context(rc):
        figure = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
        FigureCanvasAgg(figure)
        grid = figure.add_gridspec(2 if extra else 1, 2, width_ratios=[3, 1],
                                   height_ratios=[max(len(rows), 1) + 2, len(extra) + 1]
                                   if extra else None)
        left = figure.add_subplot(grid[0, 0])
        right = figure.add_subplot(grid[0, 1], sharey=left)
        right.tick_params(labelleft=False)
        if extra:
            _draw_parts(figure.add_subplot(grid[1, :]), extra, w)
        ys = list(range(len(rows)))
        names = [clean_text(r.name, multiline=False) for r in rows]  # stored before cleaning
        starts = [0] * len(rows)
        for key, color in zip(keys, COLORS, strict=True):
            values = [r.items[key] for r in rows]
            left.barh(ys, values, left=starts, color=color, label=w(f"item.{key}"), height=0.7)
            starts = [s + v for s, v in zip(starts, values, strict=True)]
        left.set_yticks(ys, names)
        left.set_ylim(len(rows) - 0.5, -0.5)  # first row on top, no padding rows
        left.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no 0.5 ticks
        left.set_xlim(0, max([*starts, 1]) * 1.05)
        left.set_xlabel(w("report.chart.items"))
        left.grid(axis="x", alpha=0.3)
        pcts = [round(r.pct * 100) if r.pct is not None else 0 for r in rows]
        colors = ["#59a14f" if p >= 90 else "#edc948" if p >= 60 else "#e15759" for p in pcts]
        right.barh(ys, pcts, color=colors, height=0.7)
        for y, r, p in zip(ys, rows, pcts, strict=True):
            label = f"{p}%" if r.pct is not None else w("report.chart.no_deadline")
            right.text(min(p, 100) + 2, y, label, va="center", fontsize=9)
        right.set_xlim(0, 125)
        right.set_xticks([0, 50, 100], ["0", "50%", "100%"])
        right.set_xlabel(w("report.chart.on_time"))
        right.grid(axis="x", alpha=0.3)
        if not rows:
            left.text(0.5, 0.5, w("report.chart.empty"), transform=left.transAxes,
                      ha="center", va="center")
        p = fig.period
        title = w("report.chart.title", team=clean_text(fig.scope.team_name, multiline=False),
                  first=p.first.isoformat(), last=p.last.isoformat())
        if len(fig.people) > len(rows):
            title += "\n" + w("report.chart.more", shown=len(rows), total=len(fig.people))
        figure.suptitle(title, fontsize=13)
        figure.legend(loc="outside lower center", ncols=len(keys), fontsize=9, frameon=False)
        data = {"period": [p.first.isoformat(), p.last.isoformat()], "people": len(fig.people),
                "rows": [asdict(r) for r in rows], "sections": [list(e) for e in extra]}
        out = io.BytesIO()
        figure.savefig(out, format="png", dpi=DPI,
                       metadata={"Description": json.dumps(data, ensure_ascii=True)})
    return out.getvalue()


def _draw_parts(ax: Any, extra: list[tuple[str, int]], w: Any) -> None:
    """One bar per feature figure (the features' report sections), the value written beside."""
    ys = list(range(len(extra)))
    values = [v for _, v in extra]
    ax.barh(ys, values, color="#7f7f7f", height=0.6)  # grey: not one of the item colours
    ax.set_yticks(ys, [label for label, _ in extra])
    ax.set_ylim(len(extra) - 0.5, -0.5)
    top = max([*values, 1])
    ax.set_xlim(0, top * 1.15)
    for y, v in zip(ys, values, strict=True):
        ax.text(v + top * 0.01, y, str(v), va="center", fontsize=9)
    ax.set_xlabel(w("report.chart.sections"))
    ax.grid(axis="x", alpha=0.3)
