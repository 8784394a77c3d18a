"""Publication figures of a finished run: a static footprint map and a ranking bar chart,
as PNG and SVG (``stclusters figure RUN_DIR``; see ``docs/figures.md``).

The map is an equirectangular projection whose standard parallel is the map's centre
latitude (``x = lon · cos φc``, ``y = lat``): true scale along that parallel, so the scale
bar is exact there and says so. Country outlines are Natural Earth's (public domain),
decoded from the shipped TopoJSON in numpy (:mod:`stclusters.reports._outlines`).

Both figures are drawn on figures of their own (no pyplot state), at 180 mm wide, and
saved without dates and with a fixed SVG hash salt, so the same run gives the same bytes.
"""

from __future__ import annotations

import functools
import json
import math
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stclusters.errors import OutputWriteError, ParameterError, StclustersError
from stclusters.params import EARTH_RADIUS_KM
from stclusters.reports._atomic import atomic_path
from stclusters.reports._outlines import OUTLINES_CREDIT, flat_rings, load_countries

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FIGURE_STEMS", "RunFigureData", "Written", "footprint_map", "km_per_degree_lon",
           "load_run_data", "parse_extent", "parse_formats", "ranking_bars", "write_figures",
           "write_figures_any"]

#: Stems of the files :func:`write_figures` writes (``.png`` and ``.svg`` each).
FIGURE_STEMS: tuple[str, ...] = ("footprints_map", "ranking_bars")

#: Colour of each metric in the fixed order ``patent``, ``publication``, then the others by
#: name (Okabe–Ito colour-blind-safe palette).
METRIC_COLOURS: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                                   "#56B4E9", "#F0E442", "#555555")

#: The world as drawn: every longitude, latitudes from south of Tierra del Fuego to the
#: north of Greenland (Antarctica has no cluster), degrees (lon0, lat0, lon1, lat1).
WORLD_EXTENT: tuple[float, float, float, float] = (-180.0, -58.0, 180.0, 84.0)

FIGURE_WIDTH_MM = 180.0
_MAP_MAX_HEIGHT_IN = 7.5  # the map's height at most (a page less header and credits)
_MM_PER_INCH = 25.4
_FONT_PT = {"title": 9.0, "subtitle": 6.5, "label": 6.5, "legend": 6.0, "tick": 5.5,
            "credit": 5.5, "banner": 8.0}
_BANNER = "SYNTHETIC DATA: not real activity"
#: Labels of the known input kinds, with the licence their data is published under.
_SOURCE_CREDITS = {
    "uspto-xml": "USPTO patent grant full text (public domain)",
    "openalex": "OpenAlex (CC0)",
    "openalex-institutions": "OpenAlex (CC0)",
    "patentsview": "PatentsView (CC BY 4.0)",
    "patstat": "EPO PATSTAT (under the EPO's licence terms)",
}
_OCEAN, _LAND, _BORDER = "#eaf0f5", "#f7f6f2", "#a3a3a3"


# --------------------------------------------------------------------------- the run's data


class EmptyRankingError(StclustersError):
    """The run ranked no cluster: there is nothing to draw."""


@dataclass(frozen=True)
class RunFigureData:
    """What the figures show of a run.

    Attributes
    ----------
    clusters : list of dict
        The ranking's rows, in rank order.
    metrics : tuple of str
        The run's metrics in colour order (``patent``, ``publication``, the others by name).
    score_weights : dict
        Each metric's weight in the score (dimensionless).
    footprints : dict
        ``cluster_id`` → GeoJSON geometry (Polygon or MultiPolygon, lon/lat degrees).
    eps_km : float or None
        Radius of the footprint discs, km.
    data_label : str or None
        The run's data label (``SYNTHETIC`` …).
    manifest : dict
        The run's manifest (empty when the run folder has none).
    run_name : str
        The run folder's name ("" for a run in memory).
    """

    clusters: list[dict[str, Any]]
    metrics: tuple[str, ...]
    score_weights: dict[str, float]
    footprints: dict[str, dict[str, Any]]
    eps_km: float | None
    data_label: str | None
    manifest: dict[str, Any]
    run_name: str

    def score_parts(self, row: dict[str, Any]) -> list[float]:
        """Each metric's part of ``row``'s score: weight × share, percentage points."""
        return [self.score_weights.get(m, 1.0) * float(row.get(f"{m}_share_pct") or 0.0)
                for m in self.metrics]

    def dominant(self, row: dict[str, Any]) -> int:
        """Index (in :attr:`metrics`) of the metric with the largest part of the score
        (weight × share); a metric of weight 0 never dominates, and a tie goes to the
        earlier metric (the report's ``data.js`` ``dominantMetric`` applies the same rule)."""
        parts = [p if self.score_weights.get(m, 1.0) > 0 else -math.inf
                 for m, p in zip(self.metrics, self.score_parts(row))]
        return int(np.argmax(parts))

    @property
    def synthetic(self) -> bool:
        return bool(self.data_label) and "SYNTHETIC" in str(self.data_label).upper()


def metric_order(names: Iterable[str]) -> tuple[str, ...]:
    """``patent``, ``publication``, then the other metrics by name: the colour order."""
    fixed = ("patent", "publication")
    names = set(names)
    return tuple(m for m in fixed if m in names) + tuple(sorted(names - set(fixed)))


def score_weights(manifest: dict[str, Any], metrics: Iterable[str]) -> dict[str, float]:
    """Each metric's weight in the run's score, from its manifest.

    Parameters
    ----------
    manifest : dict
        The run's manifest: ``score_weights``, else ``parameters.source_weights``.
    metrics : iterable of str
        The run's metrics.

    Returns
    -------
    dict
        Metric → weight (dimensionless; 1.0 where the manifest names none).
    """
    weights = {**(manifest.get("parameters") or {}).get("source_weights", {}),
               **(manifest.get("score_weights") or {})}
    return {m: float(weights.get(m, 1.0)) for m in metrics}


def load_run_data(source: Any) -> RunFigureData:  # noqa: ANN401 - a path or a RankResult
    """The figures' data of a run folder (``str``/``Path``) or of a :class:`RankResult`.

    Raises
    ------
    StclustersError
        Not a run folder, or a run whose ranking is empty.
    """
    if hasattr(source, "con") and hasattr(source, "ranking"):
        data = _from_result(source)
    else:
        data = _from_folder(Path(source))
    if not data.clusters:
        where = data.run_name or "the run"
        raise EmptyRankingError(f"{where}: the ranking is empty (no cluster): nothing to draw",
                              hint="rank with a lower --min-weight, or check the run's "
                                   "manifest outcome")
    return data


def _from_folder(run_dir: Path) -> RunFigureData:
    from stclusters._run_folder import open_run  # noqa: PLC0415 - duckdb only when needed
    from stclusters.store import fetch_arrow  # noqa: PLC0415

    con, manifest, label = open_run(run_dir, need=("ranking",))
    try:
        rows = fetch_arrow(con, "SELECT * FROM ranking ORDER BY rank").to_pylist()
        manifest = manifest or {}
        eps_km = (manifest.get("parameters") or {}).get("footprint_eps_km")
        path = run_dir / "footprints.geojson"
        if path.is_file():
            geometries = _geojson_geometries(path)
        else:  # a folder without the file: the footprints from its workspace's core points
            geometries = _computed_footprints(con, rows, eps_km)
    finally:
        con.close()
    label = label or manifest.get("data_label")
    return _data(rows, manifest, geometries, eps_km, label, run_dir.resolve().name)


def _from_result(res: Any) -> RunFigureData:  # noqa: ANN401 - RankResult
    rows = res.ranking.to_pylist()
    eps_km = res.params.footprint_eps_km
    return _data(rows, res.manifest, _computed_footprints(res.con, rows, eps_km), eps_km,
                 res.label or res.manifest.get("data_label"), "")


def _data(rows: list[dict[str, Any]], manifest: dict[str, Any],
          geometries: dict[str, dict[str, Any]], eps_km: float | None, label: str | None,
          run_name: str) -> RunFigureData:
    metrics = metric_order(c[: -len("_share_pct")] for c in (rows[0] if rows else {})
                           if c.endswith("_share_pct"))
    return RunFigureData(clusters=rows, metrics=metrics,
                         score_weights=score_weights(manifest, metrics),
                         footprints=geometries, eps_km=eps_km, data_label=label,
                         manifest=manifest, run_name=run_name)


def _geojson_geometries(path: Path) -> dict[str, dict[str, Any]]:
    try:
        fc = json.loads(path.read_text(encoding="utf-8"))
        return {str(f["properties"]["cluster_id"]): f["geometry"] for f in fc["features"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StclustersError(f"{path}: cannot read the run's footprints ({exc})",
                              hint="rerun `stclusters rank` into this folder") from exc


def _computed_footprints(con: Any, rows: list[dict[str, Any]],  # noqa: ANN401 - duckdb
                         eps_km: float | None) -> dict[str, dict[str, Any]]:
    """Footprints drawn from the run's core points (as ``footprints.geojson`` holds them)."""
    from stclusters.reports.geojson import footprints_feature_collection  # noqa: PLC0415

    if not rows or eps_km is None:
        return {}
    cores = con.execute("""
        SELECT p.lat, p.lon, c.cluster_id FROM points p JOIN clusters c ON c.stc = p.stc
        WHERE p.is_core AND c.cluster_id IN (SELECT cluster_id FROM ranking)
        ORDER BY c.cluster_id, p.lat, p.lon""").fetchnumpy()
    fc = footprints_feature_collection(cores["lat"], cores["lon"], cores["cluster_id"],
                                       eps_km=eps_km)
    return {str(f["id"]): f["geometry"] for f in fc["features"]}


# --------------------------------------------------------------------------- credits


def source_credit(manifest: dict[str, Any]) -> str:
    """``Data: …`` — the run's input sources with the licence their data is published under
    (empty when the manifest names no input); the figures and the report both show it."""
    inputs = manifest.get("inputs") or []
    kinds = sorted({i.get("kind", "") for i in inputs})
    sources = [_SOURCE_CREDITS[k] for k in kinds if k in _SOURCE_CREDITS]
    tables = sorted({Path(str(i.get("name") or i.get("path") or "")).name
                     for i in inputs if i.get("kind") == "table"})
    if tables:
        sources.append("contribution tables " + ", ".join(tables[:3])
                       + (" …" if len(tables) > 3 else "") + " (their publishers' terms)")
    return "Data: " + "; ".join(dict.fromkeys(sources)) + "." if sources else ""


def attribution_text(data: RunFigureData) -> str:
    """The credit line(s) every figure carries: the run's sources with their licences, the
    manifest's attributions (GeoNames, the population source) and Natural Earth."""
    parts = [source_credit(data.manifest)]
    parts += [str(a) for a in data.manifest.get("attribution") or []]
    parts.append(OUTLINES_CREDIT + ".")
    return " ".join(p for p in parts if p)


def _wrapped(text: str, *, width_chars: int = 175) -> list[str]:
    return textwrap.wrap(text, width=width_chars, break_on_hyphens=False)


# --------------------------------------------------------------------------- extent, scale


def parse_extent(text: str) -> str | tuple[float, float, float, float]:
    """``world``, ``top`` or ``lon0,lat0,lon1,lat1`` (degrees, west < east, south < north).

    Raises
    ------
    ParameterError
        Anything else, or a box out of range or crossing the antimeridian.
    """
    value = text.strip().lower()
    if value in ("world", "top"):
        return value
    try:
        box = tuple(float(v) for v in value.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ParameterError(f"--extent {text!r}: world, top or lon0,lat0,lon1,lat1 (degrees)",
                             hint="e.g. --extent 100,15,150,50 for East Asia")
    lon0, lat0, lon1, lat1 = box
    if not (-180 <= lon0 < lon1 <= 180 and -90 <= lat0 < lat1 <= 90):
        raise ParameterError(
            f"--extent {text!r}: need -180 ≤ lon0 < lon1 ≤ 180 and -90 ≤ lat0 < lat1 ≤ 90",
            hint="a box across the antimeridian is not supported: draw each side")
    return box  # type: ignore[return-value]


def km_per_degree_lon(lat_deg: float) -> float:
    """Length of one degree of longitude along the parallel ``lat_deg``, km (sphere of
    radius :data:`~stclusters.params.EARTH_RADIUS_KM`)."""
    return EARTH_RADIUS_KM * math.pi / 180.0 * math.cos(math.radians(lat_deg))


def _footprint_bounds(data: RunFigureData, clusters: Sequence[dict[str, Any]]
                      ) -> tuple[float, float, float, float]:
    """Bounding box of the clusters' footprints (their centres where a footprint is
    missing), degrees."""
    xs, ys = [], []
    for c in clusters:
        rings = _rings(data.footprints.get(c["cluster_id"]))
        pts = np.concatenate(rings) if rings else np.array([[c["lon"], c["lat"]]], float)
        xs += [pts[:, 0].min(), pts[:, 0].max()]
        ys += [pts[:, 1].min(), pts[:, 1].max()]
    return min(xs), min(ys), max(xs), max(ys)


def _top_extent(data: RunFigureData, clusters: Sequence[dict[str, Any]]
                ) -> tuple[float, float, float, float]:
    """The drawn clusters' box, padded (8 %, at least 1°) and widened to a height between
    0.5 and 1 times its width (projected); the world when it spans half the globe."""
    lon0, lat0, lon1, lat1 = _footprint_bounds(data, clusters)
    if lon1 - lon0 > 180:
        return WORLD_EXTENT
    pad_lon, pad_lat = max(1.0, 0.08 * (lon1 - lon0)), max(1.0, 0.08 * (lat1 - lat0))
    lon0, lon1, lat0, lat1 = lon0 - pad_lon, lon1 + pad_lon, lat0 - pad_lat, lat1 + pad_lat
    cos_c = math.cos(math.radians((lat0 + lat1) / 2))
    width, height = (lon1 - lon0) * cos_c, lat1 - lat0
    if height < 0.5 * width:  # too flat: taller
        grow = (0.5 * width - height) / 2
        lat0, lat1 = lat0 - grow, lat1 + grow
    elif height > width:  # too tall: wider
        grow = (height - width) / cos_c / 2
        lon0, lon1 = lon0 - grow, lon1 + grow
    return (max(-180.0, lon0), max(-85.0, lat0), min(180.0, lon1), min(85.0, lat1))


def _nice_length_km(max_km: float) -> float:
    """The largest 1, 2 or 5 × 10^k km not above ``max_km``."""
    power = 10.0 ** math.floor(math.log10(max_km))
    return max(step * power for step in (1.0, 2.0, 5.0) if step * power <= max_km)


# --------------------------------------------------------------------------- drawing helpers


def _new_figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width_in, height_in))
    FigureCanvasAgg(fig)
    return fig


def _rings(geometry: dict[str, Any] | None) -> list[np.ndarray]:
    if not geometry:
        return []
    polys = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
             else geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [])
    return [np.asarray(ring, dtype=np.float64) for poly in polys for ring in poly]


def _compound_path(rings: Sequence[np.ndarray], cos_c: float) -> Any:  # noqa: ANN401
    """One matplotlib Path of closed rings, x scaled by ``cos_c`` (holes by winding)."""
    from matplotlib.path import Path as MplPath  # noqa: PLC0415

    verts, codes = [], []
    for ring in rings:
        xy = np.column_stack((ring[:, 0] * cos_c, ring[:, 1]))
        verts.append(xy)
        codes.append(np.concatenate(([MplPath.MOVETO], np.full(len(xy) - 2, MplPath.LINETO),
                                     [MplPath.CLOSEPOLY])))
    return MplPath(np.concatenate(verts), np.concatenate(codes).astype(np.uint8))


def _header(fig: Figure, data: RunFigureData, top_in: float, title: str,
            subtitle: Sequence[str]) -> float:
    """Banner (synthetic runs), title and subtitle from ``top_in`` inches below the top;
    returns the inches used."""
    h = fig.get_figheight()
    y = top_in
    if data.synthetic:
        label = str(data.data_label)
        text = _BANNER if label.strip().upper() == "SYNTHETIC" else f"{_BANNER} ({label})"
        fig.text(0.5, 1 - (y + 0.12) / h, text, ha="center",
                 va="center", fontsize=_FONT_PT["banner"], fontweight="bold", color="white",
                 gid="synthetic-banner",
                 bbox={"boxstyle": "square,pad=0.3", "facecolor": "#b00020", "edgecolor": "none"})
        y += 0.27
    fig.text(0.015, 1 - (y + 0.1) / h, title, ha="left", va="center",
             fontsize=_FONT_PT["title"], fontweight="bold", gid="title")
    y += 0.2
    for line in subtitle:
        fig.text(0.015, 1 - (y + 0.065) / h, line, ha="left", va="center",
                 fontsize=_FONT_PT["subtitle"], color="#333333")
        y += 0.13
    return y - top_in


def _header_height(data: RunFigureData, n_subtitle: int) -> float:
    return (0.27 if data.synthetic else 0.0) + 0.2 + 0.13 * n_subtitle


def _credit(fig: Figure, lines: Sequence[str], bottom_in: float) -> None:
    h = fig.get_figheight()
    fig.text(0.015, bottom_in / h, "\n".join(lines), ha="left", va="bottom",
             fontsize=_FONT_PT["credit"], color="#444444", linespacing=1.3, gid="attribution")


def _credit_height(lines: Sequence[str]) -> float:
    return 0.1 * len(lines) + 0.02


def _subtitle(data: RunFigureData, extra: str) -> list[str]:
    weights = ", ".join(f"{m} ×{data.score_weights[m]:g}" for m in data.metrics)
    run = f"Run {data.run_name}: " if data.run_name else ""
    return _wrapped(f"{run}score = Σ weight × share of the world total (%), over {weights}. "
                    + extra, width_chars=150)


def _metric_handles(data: RunFigureData) -> list[Any]:
    from matplotlib.patches import Patch  # noqa: PLC0415

    return [Patch(facecolor=METRIC_COLOURS[i % len(METRIC_COLOURS)], edgecolor="none",
                  label=f"{m} (×{data.score_weights[m]:g})") for i, m in enumerate(data.metrics)]


# --------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class _MapFrame:
    """The map's extent (degrees) and its projection constant."""

    lon0: float
    lat0: float
    lon1: float
    lat1: float

    @property
    def centre_lat(self) -> float:
        return (self.lat0 + self.lat1) / 2

    @property
    def cos_c(self) -> float:
        return math.cos(math.radians(self.centre_lat))

    @property
    def aspect(self) -> float:
        """Height over width of the projected map."""
        return (self.lat1 - self.lat0) / ((self.lon1 - self.lon0) * self.cos_c)

    def contains(self, lon: float, lat: float) -> bool:
        return self.lon0 <= lon <= self.lon1 and self.lat0 <= lat <= self.lat1


def _frame(data: RunFigureData, clusters: Sequence[dict[str, Any]],
           extent: str | tuple[float, float, float, float]) -> _MapFrame:
    if isinstance(extent, str):
        extent = parse_extent(extent)
    box = (WORLD_EXTENT if extent == "world" else _top_extent(data, clusters)
           if extent == "top" else extent)
    return _MapFrame(*(float(v) for v in box))


#: Text drawn as given: a ``$`` in a name or label is no mathtext, and no TeX is run.
_LITERAL_TEXT = {"text.parse_math": False, "text.usetex": False}


def _literal_text(draw: Any) -> Any:  # noqa: ANN401 - a figure function
    """Run ``draw`` with :data:`_LITERAL_TEXT` (names come from the data)."""
    @functools.wraps(draw)
    def wrapped(*args: Any, **kw: Any) -> Any:  # noqa: ANN401
        import matplotlib as mpl  # noqa: PLC0415

        with mpl.rc_context(_LITERAL_TEXT):
            return draw(*args, **kw)
    return wrapped


@_literal_text
def footprint_map(source: Any, *, top: int = 30, labels: int = 10,  # noqa: ANN401
                  extent: str | tuple[float, float, float, float] = "world") -> Figure:
    """The footprints of the top ``top`` clusters on a map, 180 mm wide.

    Parameters
    ----------
    source : path or RankResult
        A run folder or a ranking in memory.
    top : int
        Clusters drawn (rank ≤ top); 0 draws every ranked cluster.
    labels : int
        Clusters labelled with their rank and name (the best ranked first).
    extent : str or tuple
        ``world``, ``top`` (the drawn clusters' box) or (lon0, lat0, lon1, lat1), degrees.

    Returns
    -------
    matplotlib.figure.Figure
        Footprints as one element each (SVG id ``cluster-<rank>``), filled in the colour of
        the metric with the largest part of the score, more opaque for a higher score; where
        footprints are too small to see, a disc sized by score at each cluster.
    """
    data = source if isinstance(source, RunFigureData) else load_run_data(source)
    clusters = _top_clusters(data, top)
    frame = _frame(data, clusters, extent)
    credit = _wrapped(attribution_text(data))
    n_drawn = sum(frame.contains(c["lon"], c["lat"]) for c in clusters)
    subtitle = _subtitle(data, _map_note(data, frame))
    width_in = FIGURE_WIDTH_MM / _MM_PER_INCH
    left_in, right_in = 0.42, 0.22
    map_w = width_in - left_in - right_in
    if map_w * frame.aspect > _MAP_MAX_HEIGHT_IN:  # a tall box: narrower, never squashed
        narrower = _MAP_MAX_HEIGHT_IN / frame.aspect
        left_in += (map_w - narrower) / 2
        map_w = narrower
    map_h = map_w * frame.aspect
    head_h = 0.08 + _header_height(data, len(subtitle)) + 0.06
    legend_h, credit_h = 0.5, _credit_height(credit)
    height_in = head_h + map_h + 0.18 + legend_h + credit_h + 0.05
    fig = _new_figure(width_in, height_in)
    title = (f"Science and technology clusters: the top {n_drawn} by score"
             if n_drawn == len(clusters) else
             f"Science and technology clusters: {n_drawn} of the top {len(clusters)} by "
             f"score ({len(clusters) - n_drawn} outside the map)")
    _header(fig, data, 0.08, title, subtitle)
    ax = fig.add_axes((left_in / width_in, 1 - (head_h + map_h) / height_in,
                       map_w / width_in, map_h / height_in), gid="map")
    _draw_base(ax, frame)
    bubbles = _draw_clusters(ax, data, clusters, frame, map_w)
    bar_box = _scale_bar(ax, frame, map_w)
    crowded = _place_labels(ax, clusters, max(0, labels), frame, bubbles, bar_box)
    full_w = width_in - 0.42 - 0.22  # the legend spans the page even under a narrow map
    legend_ax = fig.add_axes((0.42 / width_in, (credit_h + 0.05) / height_in,
                              full_w / width_in, legend_h / height_in), gid="legend")
    _map_legend(legend_ax, data, clusters, bubbles)
    if crowded:
        legend_ax.text(0.0, 0.0, "No room to label: " + ", ".join(
            f"{c['rank']} {_short(c['name'], 26)}" for c in crowded)
            + " (zoom in: --extent top or a box)", transform=legend_ax.transAxes,
            fontsize=_FONT_PT["legend"], color="#333333", va="bottom", gid="unlabelled")
    _credit(fig, credit, 0.05)
    return fig


def _top_clusters(data: RunFigureData, top: int) -> list[dict[str, Any]]:
    if top < 0:
        raise ParameterError(f"top {top}: a count of clusters, 0 for all")
    return data.clusters[:top] if top else list(data.clusters)


def _map_note(data: RunFigureData, frame: _MapFrame) -> str:
    disc = f"{data.eps_km:g} km" if data.eps_km else "eps_km"
    return (f"Footprint: the union of {disc} discs around a cluster's core points, more "
            "opaque for a higher score. "
            f"Equirectangular projection, true scale at {_lat_text(frame.centre_lat)}.")


def _lat_text(lat: float, *, tick: bool = False) -> str:
    """``35°N``; a tick's value with the decimals it has (``22.5°N``), a centre rounded."""
    if tick and lat == 0:
        return "0°"
    value = f"{round(abs(lat), 4):g}" if tick else f"{abs(lat):.0f}"
    return f"{value}°{'N' if lat >= 0 else 'S'}"


def _draw_base(ax: Any, frame: _MapFrame) -> None:  # noqa: ANN401 - Axes
    """Ocean, countries (50m outlines for extents up to 60° wide, else 110m), graticule."""
    from matplotlib.collections import PathCollection  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter, MaxNLocator  # noqa: PLC0415

    cos_c = frame.cos_c
    ax.set_xlim(frame.lon0 * cos_c, frame.lon1 * cos_c)
    ax.set_ylim(frame.lat0, frame.lat1)
    ax.set_facecolor(_OCEAN)
    resolution = "50m" if frame.lon1 - frame.lon0 <= 60 else "110m"
    rings = (flat_rings(c.rings) for c in load_countries(resolution))
    paths = [_compound_path(r, cos_c) for r in rings if _overlaps(r, frame)]
    ax.add_collection(PathCollection(paths, facecolors=_LAND, edgecolors=_BORDER,
                                     linewidths=0.3, zorder=1, gid="countries"),
                      autolim=False)
    locator = MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10])
    lon_ticks = [t for t in locator.tick_values(frame.lon0, frame.lon1)
                 if frame.lon0 <= t <= frame.lon1]
    ax.set_xticks([t * cos_c for t in lon_ticks], [_lon_text(t) for t in lon_ticks])
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _lat_text(v, tick=True)))
    ax.tick_params(labelsize=_FONT_PT["tick"], length=2, width=0.4, pad=1.5,
                   colors="#555555")
    ax.grid(color="white", linewidth=0.4, zorder=0.5)
    ax.set_axisbelow(False)
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)
        spine.set_color("#777777")


def _lon_text(lon: float) -> str:
    return "0°" if lon == 0 else f"{round(abs(lon), 4):g}°{'E' if lon > 0 else 'W'}"


def _overlaps(rings: Sequence[np.ndarray], frame: _MapFrame) -> bool:
    """Whether a country's box meets the map's (so that off-map countries are not written
    into the SVG)."""
    pts = np.concatenate(rings)
    return bool(pts[:, 0].max() >= frame.lon0 and pts[:, 0].min() <= frame.lon1
                and pts[:, 1].max() >= frame.lat0 and pts[:, 1].min() <= frame.lat1)


def _bubble_diameter_pt(score: float, max_score: float) -> float:
    """Disc diameter, points: its area grows with the score, 3 pt to 14 pt."""
    d_min, d_max = 3.0, 14.0
    return math.sqrt(d_min ** 2 + (d_max ** 2 - d_min ** 2) * max(0.0, score) / max_score)


def _draw_clusters(ax: Any, data: RunFigureData, clusters: Sequence[dict[str, Any]],  # noqa: ANN401
                   frame: _MapFrame, map_w_in: float) -> dict[int, float]:
    """Each cluster's footprint (one element, ``cluster-<rank>``) and, when footprints are
    smaller than the discs, a disc sized by score. Returns rank → disc diameter (pt; 0 when
    none is drawn)."""
    from matplotlib.patches import PathPatch  # noqa: PLC0415

    max_score = max(float(c["score_pct"] or 0.0) for c in clusters) or 1.0
    pt_per_km = map_w_in * 72.0 / ((frame.lon1 - frame.lon0) * km_per_degree_lon(frame.centre_lat))
    footprint_pt = 2 * (data.eps_km or 0.0) * pt_per_km
    diam = {}
    discs: list[tuple[float, float, float, str]] = []  # x, y, diameter (pt), colour
    # Lower ranks first, so that the better ranked are drawn on top.
    for c in sorted(clusters, key=lambda r: -r["rank"]):
        colour = METRIC_COLOURS[data.dominant(c) % len(METRIC_COLOURS)]
        rel = max(0.0, float(c["score_pct"] or 0.0)) / max_score
        rings = _rings(data.footprints.get(c["cluster_id"]))
        visible = frame.contains(c["lon"], c["lat"]) or (
            bool(rings) and _overlaps(rings, frame))
        if not visible:
            continue
        if rings:
            ax.add_patch(PathPatch(_compound_path(rings, frame.cos_c), facecolor=colour,
                                   alpha=0.25 + 0.5 * rel, edgecolor=colour, linewidth=0.4,
                                   zorder=3, gid=f"cluster-{c['rank']}"))
        d = _bubble_diameter_pt(float(c["score_pct"] or 0.0), max_score)
        diam[c["rank"]] = d if footprint_pt < d else 0.0
        if diam[c["rank"]]:
            discs.append((c["lon"] * frame.cos_c, c["lat"], d, colour))
    if discs:  # one collection (SVG group ``cluster-discs``), in the order above
        x, y, d, colours = zip(*discs)
        ax.scatter(x, y, s=np.square(d), c=list(colours), alpha=0.8, edgecolors="white",
                   linewidths=0.4, zorder=4, gid="cluster-discs")
    return diam


def _scale_bar(ax: Any, frame: _MapFrame, map_w_in: float) -> Any:  # noqa: ANN401
    """A bar of a round number of km (about a fifth of the map's width), true at the map's
    centre latitude, in the lower left; returns its display box (for the labels)."""
    km_per_deg = km_per_degree_lon(frame.centre_lat)
    length_km = _nice_length_km((frame.lon1 - frame.lon0) * km_per_deg / 5)
    x0 = frame.lon0 * frame.cos_c + 0.03 * (frame.lon1 - frame.lon0) * frame.cos_c
    x1 = x0 + length_km / km_per_deg * frame.cos_c
    y = frame.lat0 + 0.06 * (frame.lat1 - frame.lat0)
    line, = ax.plot([x0, x0, x1, x1], [y + 0.012 * (frame.lat1 - frame.lat0), y, y,
                                       y + 0.012 * (frame.lat1 - frame.lat0)],
                    color="#222222", linewidth=0.9, solid_capstyle="butt", zorder=6,
                    gid="scale-bar")
    text = ax.text(x0, y + 0.02 * (frame.lat1 - frame.lat0),
                   f"{length_km:g} km (at {_lat_text(frame.centre_lat)})", ha="left",
                   va="bottom", fontsize=_FONT_PT["legend"], zorder=6, gid="scale-bar-label")
    from matplotlib.transforms import Bbox  # noqa: PLC0415

    renderer = ax.figure.canvas.get_renderer()
    return Bbox.union([line.get_window_extent(renderer), text.get_window_extent(renderer)])


def _candidates(radius_pt: float) -> list[tuple[float, float, str, str, bool]]:
    """Label offsets (points) around a cluster, nearest first: (dx, dy, ha, va, leader).

    Twelve directions on seven rings ever farther out; beyond the first ring a leader line joins
    the label to its cluster."""
    out = []
    for k, extra in enumerate((1.5, 10.0, 22.0, 36.0, 52.0, 70.0, 95.0)):
        r = radius_pt + extra
        for deg in (0, 180, 30, -30, 150, -150, 60, -60, 120, -120, 90, -90):
            dx, dy = r * math.cos(math.radians(deg)), r * math.sin(math.radians(deg))
            ha = "left" if dx > 1e-9 else "right" if dx < -1e-9 else "center"
            va = "bottom" if dy > 1e-9 else "top" if dy < -1e-9 else "center"
            out.append((dx, dy, ha, va, k > 0))
    return out


class _Taken:
    """What labels must keep clear of, in display pixels: boxes (labels, discs, the scale
    bar) and points sampled along the leader lines already drawn. A leader line may cross
    discs, not labels."""

    def __init__(self, boxes: Sequence[Any]) -> None:  # noqa: ANN401 - Bbox
        self.boxes = list(boxes)
        self.labels: list[Any] = []
        self.leader_points = np.empty((0, 2))

    def clear(self, box: Any, segment: np.ndarray | None, own: Any = None) -> bool:  # noqa: ANN401
        """Whether ``box`` and the leader ``segment`` ((2, 2) ends, or None) meet nothing
        (``own``, the labelled cluster's own disc, aside)."""
        if any(box.overlaps(b) for b in self.boxes if b is not own):
            return False
        pts = self.leader_points
        if len(pts) and np.any((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1)
                               & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)):
            return False
        if segment is None:
            return True
        return not any(b.contains(x, y) for x, y in _samples(segment) for b in self.labels)

    def add(self, box: Any, segment: np.ndarray | None) -> None:  # noqa: ANN401 - Bbox
        self.boxes.append(box)
        self.labels.append(box)
        if segment is not None:
            self.leader_points = np.vstack((self.leader_points, _samples(segment)))


def _samples(segment: np.ndarray, n: int = 12) -> np.ndarray:
    """``n`` points along a segment, its two ends left out (they touch label and disc)."""
    t = np.linspace(0.1, 0.9, n)[:, None]
    return segment[0] + t * (segment[1] - segment[0])


def _place_labels(ax: Any, clusters: Sequence[dict[str, Any]], n_labels: int,  # noqa: ANN401
                  frame: _MapFrame, diam: dict[int, float], bar_box: Any,  # noqa: ANN401
                  ) -> list[dict[str, Any]]:
    """Label the first ``n_labels`` clusters ``rank name``, best rank first, each at the
    nearest offset where its text meets no earlier label or leader line, no disc (of any
    drawn cluster) and not the scale bar (with a leader line when away from its cluster).
    Failing that, the same over discs (its box hides part of them); then the rank alone,
    likewise. Returns the clusters left unlabelled (no room anywhere)."""
    from matplotlib.transforms import Bbox  # noqa: PLC0415

    renderer = ax.figure.canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    discs = {}
    for c in clusters:
        if diam.get(c["rank"]):
            x, y = ax.transData.transform((c["lon"] * frame.cos_c, c["lat"]))
            r_px = diam[c["rank"]] / 2 * ax.figure.dpi / 72
            discs[c["rank"]] = Bbox.from_extents(x - r_px, y - r_px, x + r_px, y + r_px)
    with_discs, labels_only = _Taken([bar_box, *discs.values()]), _Taken([bar_box])
    crowded: list[dict[str, Any]] = []
    for c in clusters[:n_labels]:
        if c["rank"] not in diam:
            continue
        radius = max(diam[c["rank"]] / 2, 1.5)
        xy = (c["lon"] * frame.cos_c, c["lat"])
        full, rank = f"{c['rank']} {_short(c['name'], 26)}", str(c["rank"])
        for text, taken in ((full, with_discs), (full, labels_only), (rank, with_discs),
                            (rank, labels_only)):
            # A bare rank keeps a wider berth, lest "10" beside "1 Berlin" read "101 Berlin".
            placed = _first_free(ax, renderer, text, xy, radius, c["rank"], taken, axes_box,
                                 own=discs.get(c["rank"]), berth_pt=0.0 if text == full else 5.0)
            if placed is not None:
                break
        else:  # enclosed by other labels: said under the map instead
            crowded.append(c)
            continue
        for taken in (with_discs, labels_only):
            taken.add(*placed)
    return crowded


def _label(ax: Any, text: str, xy: tuple[float, float],  # noqa: ANN401
           offset: tuple[float, float, str, str, bool], rank: int) -> Any:  # noqa: ANN401
    # A light box rather than a halo keeps the label a text element in the SVG (editable).
    dx, dy, ha, va, leader = offset
    return ax.annotate(text, xy, xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                       fontsize=_FONT_PT["label"], zorder=7, gid=f"label-{rank}",
                       bbox={"boxstyle": "square,pad=0.12", "facecolor": "white",
                             "alpha": 0.75, "edgecolor": "none"},
                       arrowprops={"arrowstyle": "-", "color": "#444444", "linewidth": 0.4,
                                   "shrinkA": 0, "shrinkB": 0} if leader else None)


def _text_box(ann: Any, renderer: Any) -> Any:  # noqa: ANN401 - Annotation, renderer, Bbox
    """The display box of an annotation's text alone (not its leader), 2 pt of margin."""
    from matplotlib.text import Text  # noqa: PLC0415

    ann.update_positions(renderer)  # the text's place follows its offset only when updated
    return Text.get_window_extent(ann, renderer).padded(2.0 * ann.figure.dpi / 72)


def _first_free(ax: Any, renderer: Any, text: str, xy: tuple[float, float],  # noqa: ANN401
                radius_pt: float, rank: int, taken: _Taken, axes_box: Any,  # noqa: ANN401
                *, own: Any = None, berth_pt: float = 0.0,  # noqa: ANN401
                ) -> tuple[Any, np.ndarray | None] | None:  # noqa: ANN401
    """``(text box, leader segment or None)`` of the label drawn at the first candidate
    offset clear of ``taken`` (by ``berth_pt`` more) and inside the map, or None (nothing
    drawn).

    The text is measured once; each candidate's box follows from its offset and alignment
    (as matplotlib aligns: the box's left/centre/right and bottom/centre/top edge at the
    anchor), so that only the label kept is drawn."""
    from matplotlib.transforms import Bbox  # noqa: PLC0415

    probe = _label(ax, text, xy, (0.0, 0.0, "left", "bottom", False), rank)
    size = _text_box(probe, renderer)
    probe.remove()
    anchor = ax.transData.transform(xy)
    pad_x, pad_y = anchor[0] - size.x0, anchor[1] - size.y0  # the probe sits at the anchor
    w, h = size.width - 2 * pad_x, size.height - 2 * pad_y  # the text alone
    px_per_pt = ax.figure.dpi / 72
    for offset in _candidates(radius_pt):
        dx, dy, ha, va, leader = offset
        x = anchor[0] + dx * px_per_pt - {"left": 0.0, "center": 0.5, "right": 1.0}[ha] * w
        y = anchor[1] + dy * px_per_pt - {"bottom": 0.0, "center": 0.5, "top": 1.0}[va] * h
        box = Bbox.from_bounds(x - pad_x, y - pad_y, size.width, size.height)
        segment = (np.array([anchor, anchor + np.array([dx, dy]) * px_per_pt])
                   if leader else None)
        if _inside(box, axes_box) and taken.clear(box.padded(berth_pt * px_per_pt), segment,
                                                  own):
            _label(ax, text, xy, offset, rank)
            return box, segment
    return None


def _inside(box: Any, outer: Any) -> bool:  # noqa: ANN401 - Bbox
    return (box.x0 >= outer.x0 and box.x1 <= outer.x1 and box.y0 >= outer.y0
            and box.y1 <= outer.y1)


def _short(name: str | None, n: int) -> str:
    name = name or "(unnamed)"
    return name if len(name) <= n else name[: n - 1].rstrip() + "…"


def _map_legend(ax: Any, data: RunFigureData, clusters: Sequence[dict[str, Any]],  # noqa: ANN401
                diam: dict[int, float]) -> None:
    """Colour key (the metric with the largest part of the score) and, when discs are
    drawn, their size key."""
    from matplotlib.lines import Line2D  # noqa: PLC0415

    ax.set_axis_off()
    colours = ax.legend(handles=_metric_handles(data), loc="upper left", ncol=min(
        len(data.metrics), 4), fontsize=_FONT_PT["legend"], frameon=False,
        title="Colour: the metric with the largest part of the score (its weight)",
        title_fontsize=_FONT_PT["legend"], alignment="left", borderaxespad=0.2,
        handlelength=1.2)
    ax.add_artist(colours)
    if not any(diam.values()):
        return
    max_score = max(float(c["score_pct"] or 0.0) for c in clusters) or 1.0
    sizes = [max_score, max_score / 4, max_score / 16]
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=_bubble_diameter_pt(
        s, max_score), markerfacecolor="#9a9a9a", markeredgecolor="white",
        label=f"{s:.2g}") for s in sizes]
    ax.legend(handles=handles, loc="upper right", ncol=3, fontsize=_FONT_PT["legend"],
              frameon=False, title="Disc area: score (%)", title_fontsize=_FONT_PT["legend"],
              borderaxespad=0.2, columnspacing=1.0, handletextpad=0.3)


# --------------------------------------------------------------------------- the bars


@_literal_text
def ranking_bars(source: Any, *, top: int = 30) -> Figure:  # noqa: ANN401
    """The top ``top`` clusters' scores as horizontal bars stacked by metric (each metric's
    weight × share, in the fixed colour order), labelled ``rank name (economy)``, 180 mm
    wide; 0 draws every ranked cluster."""
    data = source if isinstance(source, RunFigureData) else load_run_data(source)
    clusters = _top_clusters(data, top)
    credit = _wrapped(attribution_text(data))
    subtitle = _subtitle(data, "Each bar's parts: the metrics' weighted shares.")
    width_in = FIGURE_WIDTH_MM / _MM_PER_INCH
    bars_h = 0.16 * len(clusters) + 0.1
    head_h = 0.08 + _header_height(data, len(subtitle)) + 0.1
    credit_h = _credit_height(credit)
    height_in = head_h + bars_h + 0.45 + credit_h + 0.05
    fig = _new_figure(width_in, height_in)
    _header(fig, data, 0.08, f"The top {len(clusters)} science and technology clusters "
            "by score", subtitle)
    left_in = 1.9
    ax = fig.add_axes((left_in / width_in, 1 - (head_h + bars_h) / height_in,
                       (width_in - left_in - 0.45) / width_in, bars_h / height_in),
                      gid="bars")
    _draw_bars(ax, data, clusters)
    _fit_left_margin(ax, width_in, right_in=0.45)
    _credit(fig, credit, 0.05)
    return fig


def _fit_left_margin(ax: Any, width_in: float, *, right_in: float) -> None:  # noqa: ANN401
    """Move the bars' left edge to just past their widest label (inches → figure units)."""
    renderer = ax.figure.canvas.get_renderer()
    widest_px = max((t.get_window_extent(renderer).width for t in ax.get_yticklabels()),
                    default=0.0)
    left_in = widest_px / ax.figure.dpi + 0.2  # the tick pad and a margin
    box = ax.get_position()
    ax.set_position((left_in / width_in, box.y0, (width_in - left_in - right_in) / width_in,
                     box.height))


def _draw_bars(ax: Any, data: RunFigureData,  # noqa: ANN401 - Axes
               clusters: Sequence[dict[str, Any]]) -> None:
    """Stacked bars (one container per metric, in colour order), scores at their ends,
    `rank  name (economy)` labels, the metric legend."""
    y = np.arange(len(clusters), dtype=float)
    parts = np.array([data.score_parts(c) for c in clusters], dtype=float).reshape(
        len(clusters), len(data.metrics))
    left = np.zeros(len(clusters))
    for i, metric in enumerate(data.metrics):
        ax.barh(y, parts[:, i], left=left, height=0.72, color=METRIC_COLOURS[
            i % len(METRIC_COLOURS)], edgecolor="none", label=metric, gid=f"bars-{metric}")
        left += parts[:, i]
    scores = [float(c["score_pct"] or 0.0) for c in clusters]
    top_score = max(scores) or 1.0
    for yi, s in zip(y, scores):
        ax.text(s + 0.01 * top_score, yi, f"{s:.2f}", va="center", ha="left",
                fontsize=_FONT_PT["tick"], color="#333333")
    ax.set_yticks(y, [f"{c['rank']}  {_short(c['name'], 34)} ({c['economy'] or '?'})"
                      for c in clusters])
    ax.set_ylim(len(clusters) - 0.5, -0.5)
    ax.set_xlim(0, top_score * 1.1)
    ax.set_xlabel("score (%)", fontsize=_FONT_PT["legend"])
    ax.tick_params(labelsize=_FONT_PT["tick"] + 0.5, length=2, width=0.4, pad=1.5)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color="#dddddd", linewidth=0.4)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_linewidth(0.5)
    ax.legend(handles=_metric_handles(data), loc="best", fontsize=_FONT_PT["legend"],
              frameon=False, title="weight × share of", title_fontsize=_FONT_PT["legend"],
              handlelength=1.2)


# --------------------------------------------------------------------------- writing


def save_figure(fig: Figure, out: Path, stem: str, *, dpi: int = 300,
                formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """``<stem>.<format>`` for each format, atomically, without dates or software
    metadata and with a fixed SVG hash salt (the same figure gives the same bytes).

    Parameters
    ----------
    dpi : int
        Resolution of the PNG, dots per inch (the SVG is vector).
    """
    import matplotlib as mpl  # noqa: PLC0415

    meta = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
    paths = []
    for ext in formats:
        path = out / f"{stem}.{ext}"
        try:
            with mpl.rc_context({"svg.hashsalt": "stclusters", "svg.fonttype": "none",
                                 **_LITERAL_TEXT}), \
                    atomic_path(path) as tmp:
                fig.savefig(tmp, format=ext, metadata=meta[ext], dpi=dpi, facecolor="white")
        except OSError as exc:
            raise OutputWriteError(path, exc) from exc
        paths.append(path)
    return paths


FORMATS: tuple[str, ...] = ("png", "svg")


def parse_formats(text: str) -> tuple[str, ...]:
    """``png``, ``svg`` or both, comma-separated, in that order.

    Raises
    ------
    ParameterError
        An unknown or empty format list.
    """
    asked = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    bad = [f for f in asked if f not in FORMATS]
    if bad or not asked:
        raise ParameterError(f"--format {text!r}: png, svg or png,svg",
                             hint="e.g. --format svg")
    return tuple(f for f in FORMATS if f in asked)


def write_figures(run_dir: str | Path, *, out: str | Path | None = None, top: int = 30,
                  labels: int = 10, extent: str | tuple[float, float, float, float] = "world",
                  dpi: int = 300, formats: Sequence[str] = FORMATS, force: bool = False
                  ) -> list[Path]:
    """Write ``footprints_map`` and ``ranking_bars`` (each format) of a run folder into
    ``out`` (default ``RUN_DIR/figures``); returns the paths written.

    Raises
    ------
    StclustersError
        Not a run folder, an empty ranking, bad parameters (:class:`ParameterError`), or an
        output folder holding other files (unless ``force``).
    """
    from stclusters.analysis._output import prepare_dir  # noqa: PLC0415

    if not 30 <= dpi <= 1200:
        raise ParameterError(f"--dpi {dpi}: between 30 and 1200", hint="e.g. --dpi 300")
    if isinstance(extent, str):
        extent = parse_extent(extent)
    data = load_run_data(run_dir)
    target = Path(out) if out is not None else Path(run_dir) / "figures"
    figures = (("footprints_map", footprint_map(data, top=top, labels=labels, extent=extent)),
               ("ranking_bars", ranking_bars(data, top=top)))
    target = prepare_dir(target, [f"{stem}.{ext}" for stem in FIGURE_STEMS for ext in FORMATS],
                         force=force)
    paths: list[Path] = []
    for stem, fig in figures:
        paths += save_figure(fig, target, stem, dpi=dpi, formats=formats)
    return paths


@dataclass(frozen=True)
class Written:
    """What :func:`write_figures_any` wrote: the files, and the editions skipped (why)."""

    paths: list[Path]
    skipped: list[str]


def write_figures_any(folder: str | Path, *, out: str | Path | None = None,
                      **kw: Any) -> Written:  # noqa: ANN401 - write_figures' options
    """:func:`write_figures` for a run folder, or for each edition of an editions folder
    (``editions.json``; into ``<edition>/figures``, or ``out/<edition>``). An edition whose
    ranking is empty is skipped and said so; a run folder's empty ranking is an error."""
    folder = Path(folder)
    listing = folder / "editions.json"
    if not listing.is_file() or (folder / "ranking.parquet").is_file():
        return Written(write_figures(folder, out=out, **kw), [])
    try:
        editions = [e["folder"] for e in json.loads(listing.read_text(encoding="utf-8"))
                    .get("editions", [])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StclustersError(f"{listing}: cannot read the editions' list ({exc})",
                              hint="rerun `stclusters editions` into this folder") from exc
    paths: list[Path] = []
    skipped: list[str] = []
    for name in editions:
        target = Path(out) / name if out is not None else None
        try:
            paths += write_figures(folder / name, out=target, **kw)
        except EmptyRankingError as exc:
            skipped.append(f"edition {name}: {exc}")
    return Written(paths, skipped)
