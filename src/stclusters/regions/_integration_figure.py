"""Chord diagrams of collaboration matrices (matplotlib, Agg): one panel per metric."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

#: Gap between two units' arcs, degrees.
_GAP_DEG = 2.0
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39")


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
    angle = 90.0
    for i in keep:  # clockwise from the top, in the units' order
        start[i] = angle
        end = angle - totals[i] * scale
        color = _COLORS[i % len(_COLORS)]
        ax.add_patch(Wedge((0, 0), 1.08, end, angle, width=0.08, facecolor=color,
                           edgecolor="white", lw=0.5))
        mid = (angle + end) / 2
        x, y = _point(mid, 1.14)
        text = f"{units[i]}\n{totals[i]:,.0f}" if integer else f"{units[i]}\n{totals[i]:,.2f}"
        ax.text(x, y, text, fontsize=6.5, ha="left" if x >= 0 else "right",
                va="bottom" if y >= 0 else "top", rotation=0)
        angle = end - _GAP_DEG
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


def chord_figure(matrix: pa.Table, *, title: str, data_label: str | None, years: str | None,
                 credits: str):  # noqa: ANN201 - matplotlib Figure
    """One chord panel per metric of ``matrix``, titled, with its rule and credits."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sources = list(dict.fromkeys(matrix.column("source").to_pylist())) or ["(no metric)"]
    counting = (matrix.column("counting")[0].as_py() if matrix.num_rows else "whole")
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
             ha="center", fontsize=6.5, color="#444444")
    if data_label:
        fig.text(0.5, 0.5, data_label, ha="center", va="center", fontsize=60, color="red",
                 alpha=0.12, rotation=30, weight="bold")
    fig.subplots_adjust(left=0.04, right=0.96, top=0.88, bottom=0.1)
    return fig
