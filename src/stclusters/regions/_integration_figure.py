"""Chord diagrams of collaboration matrices (matplotlib, Agg): one panel per metric."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

#: Gap between two units' arcs, degrees.
_GAP_DEG = 2.0
#: Radius of the labels' anchor circle and the least vertical distance between two labels
#: on one side of the circle (axes data units; a two-line label at 6.5 pt is ≈ 0.16).
_LABEL_RADIUS = 1.18
_LABEL_GAP = 0.2
#: Labels stay inside ±this height (the panel's y limits are ±1.6).
_LABEL_LIMIT = 1.5
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")


#: Fonts with CJK glyphs tried after the default one, in order (the first installed ones
#: are used: matplotlib falls back glyph by glyph along the family list).
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "Droid Sans Fallback", "AR PL UMing CN", "SimHei", "Microsoft YaHei",
             "PingFang SC", "Hiragino Sans GB", "Arial Unicode MS")
#: The matplotlib warning of a glyph no font of the list has (``Glyph 28145 (\N{CJK …})
#: missing from font(s) DejaVu Sans``).
_MISSING_GLYPH = r"Glyph \d+ .*missing from"


def font_families() -> list[str]:
    """The figure's font list: matplotlib's default sans-serif font, then the installed
    fonts of :data:`CJK_FONTS` (none installed: the default alone)."""
    from matplotlib import font_manager, rcParams  # noqa: PLC0415

    installed = {f.name for f in font_manager.fontManager.ttflist}
    first = [f for f in rcParams["font.sans-serif"] if f in installed][:1] or ["DejaVu Sans"]
    return first + [f for f in CJK_FONTS if f in installed and f not in first]


@contextlib.contextmanager
def missing_glyphs_quiet() -> Iterator[None]:
    """Drawing (``savefig``) without matplotlib's missing-glyph warnings: a member name no
    installed font can show (CJK without a CJK font) is drawn as boxes, not warned about
    on stderr. Other warnings pass."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MISSING_GLYPH, category=UserWarning)
        yield


def _square(matrix: pa.Table, source: str) -> tuple[list[str], np.ndarray]:
    """Units (``(other)`` left out) and the symmetric off-diagonal values of one metric."""
    from stclusters.regions.integration import OTHER  # noqa: PLC0415

    value = "n_docs" if "n_docs" in matrix.column_names else "weight"
    rows = [r for r in matrix.to_pylist() if r["source"] == source
            and OTHER not in (r["a"], r["b"])]
    units = list(dict.fromkeys(r["a"] for r in rows))
    index = {u: i for i, u in enumerate(units)}
    m = np.zeros((len(units), len(units)))
    for r in rows:
        if r["a"] != r["b"]:
            m[index[r["a"]], index[r["b"]]] = float(r[value] or 0)
    return units, m


def _point(angle_deg: float, radius: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    return radius * math.cos(a), radius * math.sin(a)


def _chord(ax, a0: float, a1: float, b0: float, b1: float, color: str, radius: float) -> None:  # noqa: ANN001
    """A ribbon from arc [a0, a1] to arc [b0, b1] (degrees) through the centre."""
    from matplotlib.patches import PathPatch  # noqa: PLC0415
    from matplotlib.path import Path as MPath  # noqa: PLC0415

    def arc(t0: float, t1: float) -> list[tuple[float, float]]:
        n = max(2, int(abs(t1 - t0) / 2) + 2)
        return [_point(t, radius) for t in np.linspace(t0, t1, n)]

    side_a, side_b = arc(a0, a1), arc(b0, b1)
    verts = [*side_a, (0.0, 0.0), side_b[0], *side_b[1:], (0.0, 0.0), side_a[0]]
    codes = ([MPath.MOVETO] + [MPath.LINETO] * (len(side_a) - 1) + [MPath.CURVE3, MPath.CURVE3]
             + [MPath.LINETO] * (len(side_b) - 1) + [MPath.CURVE3, MPath.CURVE3])
    ax.add_patch(PathPatch(MPath(verts, codes), facecolor=color, edgecolor=color, alpha=0.55,
                           lw=0.3))


def _spread(wanted_y: list[float], *, gap: float, limit: float) -> list[float]:
    """Heights at least ``gap`` apart, each as near its wanted height as the order allows
    (``wanted_y`` sorted from the top down), inside ``±limit`` (more labels than fit are
    spaced evenly over the whole height instead)."""
    if len(wanted_y) > 1:
        gap = min(gap, 2 * limit / (len(wanted_y) - 1))
    placed: list[float] = []
    for y in wanted_y:  # down: push each label below the one above it
        placed.append(min(y, limit) if not placed else min(y, placed[-1] - gap))
    for i in range(len(placed) - 1, -1, -1):  # up: lift those pushed below the floor
        floor = -limit if i == len(placed) - 1 else placed[i + 1] + gap
        placed[i] = max(placed[i], floor)
    return placed


def label_positions(mid_angles_deg: list[float], *, gap: float = _LABEL_GAP,
                    limit: float = _LABEL_LIMIT) -> list[tuple[float, float]]:
    """Anchors of the arcs' labels: beside each arc's middle, nudged up or down on their
    side of the circle (right, left) so that no two are closer than ``gap`` in height.

    Parameters
    ----------
    mid_angles_deg : list of float
        The middle of each arc, degrees (counter-clockwise from the right).

    Returns
    -------
    list of (x, y)
        One anchor per arc, in the order given; text goes left-aligned right of the
        centre and right-aligned left of it.
    """
    wanted = [_point(a, _LABEL_RADIUS) for a in mid_angles_deg]
    out: list[tuple[float, float]] = [(0.0, 0.0)] * len(wanted)
    for right in (True, False):
        side = sorted((i for i, (x, _) in enumerate(wanted) if (x >= 0) == right),
                      key=lambda i: (-wanted[i][1], i))
        heights = _spread([wanted[i][1] for i in side], gap=gap, limit=limit)
        sign = 1.0 if right else -1.0
        for i, y in zip(side, heights):
            out[i] = (sign * (math.sqrt(max(_LABEL_RADIUS**2 - y * y, 0.0)) + 0.02), y)
    return out


def _panel(ax, units: list[str], m: np.ndarray, *, title: str, integer: bool) -> None:  # noqa: ANN001
    from matplotlib.patches import Wedge  # noqa: PLC0415

    ax.set_aspect("equal")
    ax.set_xlim(-2.2, 2.2)  # room for long cluster names beside the circle
    ax.set_ylim(-1.6, 1.6)
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    totals = m.sum(axis=1)
    keep = [i for i in range(len(units)) if totals[i] > 0]
    if not keep:
        ax.text(0, 0, "no collaboration between the units", ha="center", va="center",
                fontsize=8, color="grey")
        return
    span = 360.0 - _GAP_DEG * len(keep)
    scale = span / totals[keep].sum()
    start: dict[int, float] = {}
    mids: list[float] = []
    angle = 90.0
    for i in keep:  # clockwise from the top, in the units' order
        start[i] = angle
        end = angle - totals[i] * scale
        color = _COLORS[i % len(_COLORS)]
        ax.add_patch(Wedge((0, 0), 1.08, end, angle, width=0.08, facecolor=color,
                           edgecolor="white", lw=0.5))
        mids.append((angle + end) / 2)
        angle = end - _GAP_DEG
    _labels(ax, [units[i] for i in keep], totals[keep], mids, integer=integer)
    cursor = dict(start)
    slots: dict[tuple[int, int], tuple[float, float]] = {}
    for i in keep:
        for j in keep:
            if i != j and m[i, j] > 0:
                width = m[i, j] * scale
                slots[(i, j)] = (cursor[i], cursor[i] - width)
                cursor[i] -= width
    for (i, j), (a0, a1) in slots.items():
        if i < j:
            b0, b1 = slots[(j, i)]
            big = i if totals[i] >= totals[j] else j
            _chord(ax, a0, a1, b0, b1, _COLORS[big % len(_COLORS)], 1.0)


def _labels(ax, names: list[str], totals: np.ndarray, mids: list[float], *,  # noqa: ANN001
            integer: bool) -> None:
    """Each arc's name and total beside it, nudged apart (:func:`label_positions`), with a
    leader line to its arc where a label was moved."""
    from stclusters.regions._format import number  # noqa: PLC0415

    for name, total, mid, (x, y) in zip(names, totals, mids, label_positions(mids)):
        wx, wy = _point(mid, _LABEL_RADIUS)
        if math.hypot(x - wx, y - wy) > 0.03:
            ax.plot([_point(mid, 1.09)[0], x], [_point(mid, 1.09)[1], y], color="#999999",
                    lw=0.4)
        ax.text(x, y, f"{name}\n{number(total, digits=0 if integer else 2)}", fontsize=6.5,
                ha="left" if x >= 0 else "right", va="center", rotation=0)


def chord_figure(matrix: pa.Table, *, title: str, data_label: str | None, years: str | None,
                 credits: str):  # noqa: ANN201 - matplotlib Figure
    """One chord panel per metric of ``matrix``, titled, with its rule and credits."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sources = list(dict.fromkeys(matrix.column("source").to_pylist())) or ["(no metric)"]
    counting = (matrix.column("counting")[0].as_py() if matrix.num_rows else "whole")
    # Texts take the font list when made: CJK names fall back to an installed CJK font.
    with matplotlib.rc_context({"font.family": font_families()}):
        return _draw(plt, matrix, sources, counting, title=title, data_label=data_label,
                     years=years, credits=credits)


def _draw(plt, matrix: pa.Table, sources: list[str], counting: str, *, title: str,  # noqa: ANN001
          data_label: str | None, years: str | None, credits: str):  # noqa: ANN202
    """The figure of :func:`chord_figure` (under its font list)."""
    fig, axes = plt.subplots(1, len(sources), figsize=(6.6 * len(sources), 6.4), squeeze=False)
    for ax, source in zip(axes[0], sources):
        units, m = _square(matrix, source)
        _panel(ax, units, m, title=source, integer=counting == "whole")
    rule = ("whole counting: chord = documents with contributors in both units"
            if counting == "whole" else
            "fractional counting: chord = sum over documents of w_i·w_j / W "
            "(Batagelj & Cerinšek 2013)")
    head = f"{data_label}: {title}" if data_label else title
    fig.suptitle(head + (f", {years}" if years else ""), fontsize=11)
    fig.text(0.5, 0.02, f"{rule}. Arc: a unit's collaboration with the other units. "
             "Only the run's used contributions count.\n" + credits,
             ha="center", fontsize=6.5, color="#444444", wrap=True)
    if data_label:
        fig.text(0.5, 0.5, data_label, ha="center", va="center", fontsize=60, color="red",
                 alpha=0.12, rotation=30, weight="bold")
    fig.subplots_adjust(left=0.04, right=0.96, top=0.88, bottom=0.1)
    return fig
