"""Fit ``eps_km`` and the thresholds per metric to a reference ranking (methodology §8).

A reference table (``gii2023_top34.csv``: rank, cluster name, economy, shares…) and
must-merge / must-not-merge pairs of places are compared with our ranking under every
setting of a grid, re-clustering one run's points without recounting
(:mod:`stclusters.analysis._evaluate`).

**Matching (reference cluster → ours).** The reference name is split into places
(``Shenzhen–Hong Kong–Guangzhou`` → three; a trailing ``, CA`` is the place's state, and
the last place's state applies to the places before it that have none). Each place is
geocoded offline by the project's gazetteer in the economies of the row (``CN/HK``: CN,
then HK; the first city match wins). A place lies in our cluster whose footprint holds it
(within ``merge_eps_km`` of one of its core points, the footprint rule of methodology §5).
The reference cluster is matched to our cluster holding its first place (the name's lead
place); if that place lies in no footprint, to the cluster holding most of its other places
(first in name order on ties); else it is *unmatched*. Two reference clusters may match
the same cluster of ours (a merge the reference does not make): both keep that rank.

**Objective** (lower is better, 0 = perfect), per setting::

    loss = w_rank · (1 − ρ) / 2  +  w_share · mean_s WAPE_s  +  w_pairs · (1 − held)
           +  w_match · unmatched

ρ: Spearman's rank correlation between the reference ranks and our ranks of the matched
clusters (ours among all our clusters; ρ taken as −1 below 3 matched clusters). WAPE_s:
Σ |our share − reference share| / Σ reference share over the matched clusters, per source
with reference shares (counts scale with the data set, so shares (%) are compared).
held: share of the pairs held (pairs whose places the gazetteer cannot find are reported
and left out). unmatched: share of reference clusters unmatched. Weights default to 1.

**Verdict**, said plainly: ``good`` when ρ ≥ 0.9, mean WAPE ≤ 0.2, every pair held and at
most 10 % unmatched; ``fair`` when ρ ≥ 0.6, mean WAPE ≤ 0.5, at least two thirds of the
pairs held and at most 25 % unmatched; ``poor`` otherwise, naming the criteria missed.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from stclusters.analysis import _output
from stclusters.reports._tables import labelled
from stclusters.analysis._evaluate import Evaluation, Evaluator, spearman
from stclusters.clusters.dbscan import nearest_core
from stclusters.errors import InputFormatError, ParameterError
from stclusters.params import RankParams

__all__ = ["CalibrationGrid", "CalibrationReport", "Objective", "Pair", "Place",
           "Reference", "calibrate", "default_pairs", "read_pairs", "read_reference"]

DEFAULT_EPS_KM_GRID: tuple[float, ...] = (8.0, 10.0, 13.0, 16.0, 20.0)
DEFAULT_SHARE_PCT_GRID: tuple[float, ...] = (0.005, 0.01, 0.02, 0.04, 0.08)
#: Runners-up listed beside the best setting.
N_RUNNERS_UP = 5

#: Reference column aliases: the GII's printed names for the two metrics.
_SHARE_ALIASES = {"patent": ("patent_share_pct", "pct_share_pct"),
                  "publication": ("publication_share_pct", "pub_share_pct")}
_COUNT_ALIASES = {"patent": ("patent_count", "pct_applications"),
                  "publication": ("publication_count", "publications")}
_STATE = re.compile(r"^(?P<city>.*?),\s*(?P<admin1>[^,]+?)\s*$")
_PLACE_SEP = re.compile(r"\s*[–—]\s*")  # en and em dashes: "Tokyo–Yokohama"

OUTPUT_NAMES = tuple(f"calibration{s}.{e}" for s in ("", "_settings", "_pairs")
                     for e in ("csv", "parquet")) + ("calibration.json", "calibration.png",
                                                     "calibration.svg")


# ----------------------------------------------------------------------------- inputs

@dataclass(frozen=True)
class Place:
    """A named place (``name``, optional ``admin1``) in one of ``economies`` (ISO-2)."""

    name: str
    admin1: str | None
    economies: tuple[str, ...]

    def label(self) -> str:
        return self.name + (f", {self.admin1}" if self.admin1 else "")


def parse_place(text: str, economies: Sequence[str]) -> Place:
    """``"San Francisco, CA"`` → Place("San Francisco", "CA", economies)."""
    m = _STATE.match(text.strip())
    if m and m.group("city"):
        return Place(m.group("city").strip(), m.group("admin1").strip(), tuple(economies))
    return Place(text.strip(), None, tuple(economies))


def name_places(name: str, economies: Sequence[str]) -> list[Place]:
    """Places of a cluster name; the last place's state applies to earlier ones without."""
    places = [parse_place(p, economies) for p in _PLACE_SEP.split(name.strip()) if p.strip()]
    last_state = places[-1].admin1 if places else None
    return [Place(p.name, p.admin1 or last_state, p.economies) for p in places]


@dataclass(frozen=True)
class ReferenceRow:
    rank: int
    name: str
    economy: str
    shares_pct: dict[str, float]
    places: tuple[Place, ...]


@dataclass(frozen=True)
class Reference:
    """A reference ranking: rows in rank order, the sources with shares, where it came from."""

    rows: tuple[ReferenceRow, ...]
    sources: tuple[str, ...]
    path: str
    notes: tuple[str, ...] = ()


def _ref_error(path: str, detail: str) -> InputFormatError:
    return InputFormatError(path, "a reference table", detail,
                            hint="columns and format: docs/calibration.md (reference table)")


def _number(path: str, line: int, field_name: str, value: str | None, *, integer: bool = False
            ) -> float:
    try:
        x = int(value) if integer else float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise _ref_error(path, f"line {line}: field {field_name!r} "
                               f"is not a number: {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise _ref_error(path,
                               f"line {line}: field {field_name!r} must be >= 0, got {value!r}")
    return x


def _csv_rows(path: str | Path, error) -> tuple[list[dict[str, str]], list[str]]:
    """Rows and header of a small UTF-8 CSV (a BOM is fine); ``error(path, message)`` makes
    the exception raised for a missing or unreadable file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except FileNotFoundError:
        raise error(str(path), "no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise error(str(path), f"not a UTF-8 CSV ({exc})") from None
    return rows, header


def read_reference(path: str | Path) -> Reference:
    """Read a reference ranking (CSV, UTF-8, header row).

    Columns: ``rank``, ``cluster`` (places joined by en dashes, ``, ST`` states), ``economy``
    (ISO-2 codes joined by ``/``), and per metric its share of the world (%) —
    ``patent_share_pct`` / ``publication_share_pct``, or the GII's ``pct_share_pct`` /
    ``pub_share_pct`` — and optionally its count (``patent_count`` / ``publication_count``,
    or the GII's ``pct_applications`` / ``publications``). With both, the printed shares
    (rounded to 0.1) are refined from the counts: the world total is worked back as
    Σ counts / Σ shares, and each share is count / total.

    Raises
    ------
    InputFormatError
        Missing file or column, a bad number (naming the line and field), no rows.
    """
    p = str(path)
    rows, header = _csv_rows(path, _ref_error)
    if not rows:
        raise _ref_error(p, "no rows")
    missing = [c for c in ("rank", "cluster", "economy") if c not in header]
    if missing:
        raise _ref_error(p, f"missing column(s) {', '.join(missing)}")
    share_col = {s: next((c for c in cols if c in header), None) for s, cols in _SHARE_ALIASES.items()}
    share_col.update({c[: -len("_share_pct")]: c for c in header
                      if c.endswith("_share_pct") and not any(c in v for v in _SHARE_ALIASES.values())})
    share_col = {s: c for s, c in share_col.items() if c}
    if not share_col:
        raise _ref_error(p, "no share column (patent_share_pct, "
                               "publication_share_pct, <source>_share_pct or the GII's "
                               "pct_share_pct / pub_share_pct)")
    out, notes = [], []
    for i, r in enumerate(rows, start=2):
        name = (r.get("cluster") or "").strip()
        economy = (r.get("economy") or "").strip()
        if not name or not economy:
            raise _ref_error(p,
                                   f"line {i}: field {'cluster' if not name else 'economy'!r} is empty")
        economies = [e.strip().upper() for e in economy.split("/") if e.strip()]
        shares = {s: _number(p, i, c, r.get(c)) for s, c in share_col.items()}
        out.append(ReferenceRow(int(_number(p, i, "rank", r.get("rank"), integer=True)), name,
                                economy, shares, tuple(name_places(name, economies))))
    for s, c in share_col.items():
        count_col = next((c2 for c2 in _COUNT_ALIASES.get(s, (f"{s}_count",)) if c2 in header), None)
        if count_col is None:
            continue
        counts = [_number(p, i, count_col, r.get(count_col)) for i, r in enumerate(rows, start=2)]
        total_share = sum(row.shares_pct[s] for row in out)
        if total_share > 0 and sum(counts) > 0:
            world = sum(counts) / total_share * 100
            for row, n in zip(out, counts):
                row.shares_pct[s] = n / world * 100
            notes.append(f"{s}: shares refined from {count_col} (world total worked back: "
                         f"{world:,.0f})")
    out.sort(key=lambda row: (row.rank, row.name))
    return Reference(tuple(out), tuple(sorted(share_col)), p, tuple(notes))


@dataclass(frozen=True)
class Pair:
    """Two places that must be in one cluster (``merge``) or must not (``apart``)."""

    rule: str
    a: Place
    b: Place
    note: str = ""

    def label(self) -> str:
        return f"{self.a.label()} {'with' if self.rule == 'merge' else 'apart from'} {self.b.label()}"


def _pairs_error(path: str, detail: str) -> InputFormatError:
    return InputFormatError(path, "a pairs table", detail,
                            hint="columns and format: docs/calibration.md (pairs file)")


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs file (CSV): ``rule`` (merge/apart), ``place_a``, ``economy_a``, ``place_b``,
    ``economy_b`` and an optional ``source`` note. Places as in reference names
    (``"San Jose, CA"``, ``"Suzhou, Jiangsu"``)."""
    p = str(path)
    rows, header = _csv_rows(path, _pairs_error)
    need = ("rule", "place_a", "economy_a", "place_b", "economy_b")
    missing = [c for c in need if c not in header]
    if not rows or missing:
        raise _pairs_error(p, f"missing column(s) {', '.join(missing)}"
                               if missing else "no rows")
    out = []
    for i, r in enumerate(rows, start=2):
        rule = (r.get("rule") or "").strip().lower()
        if rule not in ("merge", "apart"):
            raise _pairs_error(p,
                                   f"line {i}: field 'rule' must be merge or apart, got {rule!r}")
        for c in need[1:]:
            if not (r.get(c) or "").strip():
                raise _pairs_error(p, f"line {i}: field {c!r} is empty")
        out.append(Pair(rule, parse_place(r["place_a"], r["economy_a"].upper().split("/")),
                        parse_place(r["place_b"], r["economy_b"].upper().split("/")),
                        (r.get("source") or "").strip()))
    return out


def default_pairs() -> list[Pair]:
    """The pairs of methodology §8 (``calibration_pairs.csv`` shipped in the package)."""
    with resources.as_file(resources.files("stclusters.analysis") / "calibration_pairs.csv") as f:
        return read_pairs(f)


# ----------------------------------------------------------------------------- grid

def _grid_values(name: str, values: Sequence[float], *, upper: float) -> tuple[float, ...]:
    vals = tuple(float(v) for v in values)
    bad = [v for v in vals if not (math.isfinite(v) and 0 < v <= upper)]
    if not vals or bad:
        raise ParameterError(f"{name} must be numbers in (0, {upper:g}], got "
                             f"{', '.join(map(str, bad)) or 'none'}")
    return tuple(sorted(set(vals)))


@dataclass(frozen=True)
class CalibrationGrid:
    """Settings searched: each ``eps_km`` (every source alike, or each source on its own
    with ``per_source_eps``) × each source's ``min_weight_share_pct`` (% of its world total).

    Defaults: eps 8, 10, 13, 16, 20 km × shares 0.005, 0.01, 0.02, 0.04, 0.08 % per source
    (125 settings with two sources).
    """

    eps_km: tuple[float, ...] = DEFAULT_EPS_KM_GRID
    min_weight_share_pct: tuple[float, ...] = DEFAULT_SHARE_PCT_GRID
    per_source_eps: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps_km", _grid_values("eps_km grid", self.eps_km, upper=999))
        object.__setattr__(self, "min_weight_share_pct", _grid_values(
            "min_weight_share_pct grid", self.min_weight_share_pct, upper=100))

    def settings(self, base: RankParams, sources: Sequence[str]) -> list[RankParams]:
        """Every setting (radius outermost: settings of one radius share clusterings)."""
        eps_axes = [self.eps_km] * (len(sources) if self.per_source_eps else 1)
        out = []
        for eps in _product(eps_axes):
            for shares in _product([self.min_weight_share_pct] * len(sources)):
                p = base.replace(merge_eps_km=None)
                for k, s in enumerate(sources):
                    p = p.with_source(s, eps_km=eps[k if self.per_source_eps else 0],
                                      min_weight=None, min_weight_share_pct=shares[k])
                out.append(p)
        return out


def _product(axes: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    out: list[tuple[float, ...]] = [()]
    for axis in axes:
        out = [t + (v,) for t in out for v in axis]
    return out


@dataclass(frozen=True)
class Objective:
    """Weights of the loss terms (see the module docstring)."""

    rank: float = 1.0
    share: float = 1.0
    pairs: float = 1.0
    match: float = 1.0

    def __post_init__(self) -> None:
        bad = [f"{k}={v}" for k, v in vars(self).items() if not (math.isfinite(v) and v >= 0)]
        if bad:
            raise ParameterError(f"objective weights must be >= 0, got {', '.join(bad)}")


# ----------------------------------------------------------------------------- fit

@dataclass
class _Geocoded:
    """Geocoded places: coordinates (NaN when not found) and how each was found."""

    lat: np.ndarray
    lon: np.ndarray
    found: list[str]


def _geocode(places: Sequence[Place], geocoder) -> _Geocoded:  # noqa: ANN001
    lat, lon, found = np.full(len(places), np.nan), np.full(len(places), np.nan), []
    for i, pl in enumerate(places):
        how = "not found"
        for cc in pl.economies or (None,):
            res = geocoder.geocode(pl.name, pl.admin1, cc)
            if res.precision == "city":
                lat[i], lon[i], how = res.lat, res.lon, f"{cc}: {res.status}"
                break
        found.append(how)
    return _Geocoded(lat, lon, found)


def _clusters_at(lat: np.ndarray, lon: np.ndarray, ev: Evaluator, e: Evaluation) -> np.ndarray:
    """Our cluster (``stc``) whose footprint holds each place: -1 for none, -2 for a place
    the gazetteer did not find."""
    ok = np.isfinite(lat)
    out = np.where(ok, -1, -2).astype(np.int64)
    core = np.flatnonzero(e.labels.is_core)
    if ok.any() and len(core):
        out[ok], _ = nearest_core(lat[ok], lon[ok], ev.lat[core], ev.lon[core],
                                  e.labels.stc[core], eps_km=e.params.footprint_eps_km)
    return out


@dataclass
class _Counts:
    """What is kept of a setting's evaluation that is not the best: its cluster count and
    thresholds (the settings table's columns)."""

    n_clusters: int
    min_weight: dict[str, float]

    @classmethod
    def of(cls, e: Evaluation) -> _Counts:
        return cls(e.n_clusters, dict(e.min_weight))


@dataclass
class _Fit:
    """One setting's comparison with the reference."""

    params: RankParams
    evaluation: Evaluation | _Counts
    match: np.ndarray  # per reference row: our stc, -1 unmatched
    spearman: float
    wape: dict[str, float]
    pairs_held: list[bool | None]  # None: a place not found
    loss: float

    @property
    def n_matched(self) -> int:
        return int((self.match >= 0).sum())

    def held_fraction(self) -> float:
        known = [h for h in self.pairs_held if h is not None]
        return sum(known) / len(known) if known else 1.0


def _match_rows(place_stc: np.ndarray, row_of_place: np.ndarray, first_place: np.ndarray,
                n_rows: int) -> np.ndarray:
    """Reference row → our cluster (the module's rule: lead place, else most places)."""
    match = np.full(n_rows, -1, dtype=np.int64)
    for r in range(n_rows):
        lead = place_stc[first_place[r]]
        if lead >= 0:
            match[r] = lead
            continue
        mine = place_stc[row_of_place == r]
        mine = mine[mine >= 0]
        if len(mine):
            vals, first_at, counts = np.unique(mine, return_index=True, return_counts=True)
            best = np.lexsort((first_at, -counts))[0]
            match[r] = vals[best]
    return match


def _wape(ours: np.ndarray, ref: np.ndarray) -> float:
    denom = float(ref.sum())
    return float(np.abs(ours - ref).sum() / denom) if denom > 0 else float(np.abs(ours).sum() > 0)


def verdict(spearman: float, mean_wape: float, held: float, unmatched: float
            ) -> tuple[str, list[str]]:
    """``good``/``fair``/``poor`` and the criteria of ``good`` that are missed."""
    missed = [m for ok, m in ((spearman >= 0.9, f"rank correlation {spearman:.2f} < 0.9"),
                              (mean_wape <= 0.2, f"share error (WAPE) {mean_wape:.2f} > 0.2"),
                              (held >= 1.0, f"pairs held {held:.0%} < 100%"),
                              (unmatched <= 0.1, f"unmatched {unmatched:.0%} > 10%")) if not ok]
    if not missed:
        return "good", missed
    fair = spearman >= 0.6 and mean_wape <= 0.5 and held >= 2 / 3 - 1e-12 and unmatched <= 0.25
    return ("fair" if fair else "poor"), missed


@dataclass
class CalibrationReport:
    """The fit in full: per setting, per reference cluster, per pair (Arrow tables)."""

    settings: pa.Table  # every setting, best first
    clusters: pa.Table  # every reference row at the best setting
    pairs: pa.Table  # every pair at the best setting
    best_params: RankParams
    summary: dict[str, Any]
    label: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return self.summary["best"]["verdict"]

    def lines(self) -> list[str]:
        """The fit summary as printed by ``stclusters calibrate``."""
        b = self.summary["best"]
        out = [f"Fit to {self.summary['reference']['path']} ({self.summary['reference']['rows']} "
               f"clusters, {len(self.summary['pairs'])} pairs) over "
               f"{self.summary['n_settings']} settings"
               + (f" [{self.label}]" if self.label else "") + ":",
               f"best: {b['setting']}",
               f"  verdict: {b['verdict'].upper()}"
               + (f" ({'; '.join(b['missed'])})" if b["missed"] else ""),
               f"  rank correlation (Spearman, {b['n_matched']} matched): "
               + (f"{b['spearman']:.3f}" if b["n_matched"] >= 3 else
                  "n/a (fewer than 3 matched; counted as -1 in the loss)"),
               "  share error (WAPE): " + ", ".join(f"{s} {v:.3f}" for s, v in b["wape"].items()),
               f"  pairs held: {b['pairs_held']}/{b['pairs_known']}"
               + (f" ({b['pairs_unresolved']} with a place not found)" if b["pairs_unresolved"] else ""),
               f"  unmatched reference clusters: {len(b['unmatched'])}"
               + (f" ({', '.join(b['unmatched'][:6])}{'…' if len(b['unmatched']) > 6 else ''})"
                  if b["unmatched"] else ""),
               f"  loss: {b['loss']:.4f}"]
        for r in self.summary["runners_up"]:
            out.append(f"runner-up: {r['setting']}: loss {r['loss']:.4f}, ρ {r['spearman']:.3f}, "
                       f"{r['verdict']}")
        return out

    def write(self, out_dir: str | Path, *, force: bool = False) -> list[Path]:
        """``calibration.csv/.parquet`` (per reference cluster), ``calibration_settings``,
        ``calibration_pairs``, ``calibration.json`` and a figure (reference vs our rank)."""
        import matplotlib.pyplot as plt  # noqa: PLC0415

        out = _output.prepare_dir(out_dir, OUTPUT_NAMES, force=force)
        paths: list[Path] = []
        for stem, t in (("calibration", self.clusters), ("calibration_settings", self.settings),
                        ("calibration_pairs", self.pairs)):
            paths += _output.write_table(labelled(t, self.label), out, stem)
        fig = _figure(self)
        try:
            paths += _output.save_figure(fig, out, "calibration")
        finally:
            plt.close(fig)
        paths.append(_output.write_json({"data_label": self.label, **self.summary},
                                        out / "calibration.json"))
        return paths


def _setting_text(p: RankParams, sources: Sequence[str]) -> str:
    return "; ".join(f"{s} eps_km {p.source(s).eps_km:g}, min_weight_share_pct "
                     f"{p.source(s).min_weight_share_pct:g}" for s in sources)


def calibrate(located, reference: Reference | str | Path, *,  # noqa: ANN001 - Located
              params: RankParams | None = None, pairs: Sequence[Pair] | None = None,
              grid: CalibrationGrid | None = None, objective: Objective | None = None,
              label: str | None = None, name_best: bool = True, base=None,  # noqa: ANN001
              progress: Callable[[int, int], None] | None = None) -> CalibrationReport:
    """Search the grid for the setting that best reproduces ``reference`` and the pairs.

    Parameters
    ----------
    located : Located
        Records read once (:func:`stclusters.read`); ranked once with ``params`` for its
        points, then re-clustered per setting; the best setting is ranked in full (names).
    reference : Reference or path
        See :func:`read_reference`.
    params : RankParams, optional
        Everything but the searched parameters (windows, counting, weights…).
    pairs : sequence of Pair, optional
        Default: :func:`default_pairs` (methodology §8); ``[]`` for none.
    grid : CalibrationGrid, optional
    objective : Objective, optional
        Weights of the loss terms.
    name_best : bool
        Rank the best setting in full to name our clusters in the report (a full run).
    base : RankResult, optional
        A ranking of ``located`` already made (with ``params``): its points are reused
        instead of ranking once more.

    Returns
    -------
    CalibrationReport

    Examples
    --------
    >>> located = stclusters.read(["world.parquet"])                          # doctest: +SKIP
    >>> rep = calibrate(located, "gii2023_top34.csv")                        # doctest: +SKIP
    >>> print("\\n".join(rep.lines()))                                        # doctest: +SKIP
    """
    import time  # noqa: PLC0415

    from stclusters.pipeline import _geocoder  # noqa: PLC0415 - the run's cached gazetteer

    t0 = time.perf_counter()
    ref = reference if isinstance(reference, Reference) else read_reference(reference)
    pairs = default_pairs() if pairs is None else list(pairs)
    grid, objective = grid or CalibrationGrid(), objective or Objective()
    params = params or RankParams()
    ev = Evaluator.from_result(base if base is not None else located.rank(params, label=label))
    if not ev.names:
        raise ParameterError("no located records to calibrate on",
                             hint="check the run's accounting (stclusters rank)")
    # Reference places first, then the pairs' places: one geocoding, one lookup per setting.
    places = [pl for row in ref.rows for pl in row.places]
    row_of_place = np.array([r for r, row in enumerate(ref.rows) for _ in row.places], np.int64)
    first_place = np.concatenate([[0], np.cumsum([len(r.places) for r in ref.rows])[:-1]])
    pair_places = [pl for pr in pairs for pl in (pr.a, pr.b)]
    geo = _geocode(places + pair_places, _geocoder())
    sources = [s for s in ref.sources if s in ev.names]
    ref_shares = {s: np.array([row.shares_pct[s] for row in ref.rows]) for s in sources}
    ref_rank = np.array([row.rank for row in ref.rows], dtype=float)
    # A metric of weight 0 is not clustered (clusters.st.not_clustered): nothing to search.
    settings = grid.settings(params, [s for s in ev.names if params.is_scored(s)])
    ev.plan(settings)  # one sweep per (source, radius) serves all its thresholds
    fits: list[_Fit] = []
    best_j = -1
    for j, p in enumerate(settings):
        e = ev.evaluate(p)
        at = _clusters_at(geo.lat, geo.lon, ev, e)
        match = _match_rows(at[: len(places)], row_of_place, first_place, len(ref.rows))
        fits.append(_score(p, e, match, at[len(places):], pairs, ref_rank, ref_shares,
                           objective, n_rows=len(ref.rows)))
        # Only the best setting's whole evaluation is needed afterwards (~25 bytes per point
        # each: 125 settings at 1M points held 3 GB); the others keep their counts.
        if best_j < 0 or fits[j].loss < fits[best_j].loss:
            if best_j >= 0:
                fits[best_j].evaluation = _Counts.of(fits[best_j].evaluation)
            best_j = j
        else:
            fits[j].evaluation = _Counts.of(e)
        if progress:
            progress(j + 1, len(settings))
    order = sorted(range(len(fits)), key=lambda i: (fits[i].loss, i))
    best = fits[order[0]]
    named = located.rank(best.params, label=label) if name_best else None
    report = CalibrationReport(
        _settings_table(fits, order, ev.names, ref),
        _clusters_table(ref, best, geo, named, sources),
        _pairs_table(pairs, best, geo, len(places)),
        best.params,
        _summary(ref, pairs, grid, objective, fits, order, ev.names, geo, len(places)),
        label)
    report.timings_s["total"] = round(time.perf_counter() - t0, 3)
    return report


def _score(p: RankParams, e: Evaluation, match: np.ndarray, pair_stc: np.ndarray,
           pairs: Sequence[Pair], ref_rank: np.ndarray, ref_shares: dict[str, np.ndarray],
           objective: Objective, *, n_rows: int) -> _Fit:
    ok = match >= 0
    ours_rank = e.rank[match[ok]].astype(float) if ok.any() else np.zeros(0)
    rho = spearman(ref_rank[ok], ours_rank)
    rho = -1.0 if rho is None else rho  # no correlation to be had: the worst, in the loss
    wape = {s: _wape(e.shares_pct[s][match[ok]], ref[ok]) if ok.any() else 1.0
            for s, ref in ref_shares.items()}
    held: list[bool | None] = []
    for k, pr in enumerate(pairs):
        a, b = int(pair_stc[2 * k]), int(pair_stc[2 * k + 1])
        if a == -2 or b == -2:
            held.append(None)
        elif pr.rule == "merge":
            held.append(a >= 0 and a == b)
        else:
            held.append(not (a >= 0 and a == b))
    fit = _Fit(p, e, match, rho, wape, held, 0.0)
    mean_wape = float(np.mean(list(wape.values()))) if wape else 0.0
    fit.loss = (objective.rank * (1 - rho) / 2 + objective.share * mean_wape
                + objective.pairs * (1 - fit.held_fraction())
                + objective.match * (1 - fit.n_matched / n_rows))
    return fit


def _fit_summary(f: _Fit, sources: Sequence[str], ref: Reference) -> dict[str, Any]:
    mean_wape = float(np.mean(list(f.wape.values()))) if f.wape else 0.0
    unmatched = 1 - f.n_matched / len(ref.rows)
    v, missed = verdict(f.spearman, mean_wape, f.held_fraction(), unmatched)
    known = [h for h in f.pairs_held if h is not None]
    return {"setting": _setting_text(f.params, sources), "loss": round(f.loss, 6),
            "spearman": round(f.spearman, 6), "wape": {s: round(w, 6) for s, w in f.wape.items()},
            "mean_wape": round(mean_wape, 6), "n_matched": f.n_matched,
            "unmatched": [row.name for row, m in zip(ref.rows, f.match) if m < 0],
            "pairs_held": int(sum(known)), "pairs_known": len(known),
            "pairs_unresolved": len(f.pairs_held) - len(known),
            "n_clusters": f.evaluation.n_clusters, "verdict": v, "missed": missed,
            "parameters": {s: {"eps_km": f.params.source(s).eps_km,
                               "min_weight_share_pct": f.params.source(s).min_weight_share_pct,
                               "min_weight": f.evaluation.min_weight[s]} for s in sources}}


def _summary(ref: Reference, pairs: Sequence[Pair], grid: CalibrationGrid, objective: Objective,
             fits: list[_Fit], order: list[int], sources: Sequence[str], geo: _Geocoded,
             n_ref_places: int) -> dict[str, Any]:
    best = fits[order[0]]
    ties = [i for i in order if fits[i].loss == best.loss]
    return {
        "reference": {"path": ref.path, "rows": len(ref.rows), "sources": list(ref.sources),
                      "compared": [s for s in ref.sources if s in sources],
                      "notes": list(ref.notes) + [
                          f"{s}: in the reference, not in the data: not compared"
                          for s in ref.sources if s not in sources]},
        "grid": {"eps_km": list(grid.eps_km), "min_weight_share_pct": list(grid.min_weight_share_pct),
                 "per_source_eps": grid.per_source_eps},
        "objective": vars(objective) | {
            "formula": "rank*(1-spearman)/2 + share*mean(WAPE) + pairs*(1-held) + match*unmatched"},
        "n_settings": len(fits),
        "best": _fit_summary(best, sources, ref),
        "n_settings_with_best_loss": len(ties),
        "runners_up": [_fit_summary(fits[i], sources, ref) for i in order[1:1 + N_RUNNERS_UP]],
        "pairs": [{"pair": pr.label(), "rule": pr.rule, "note": pr.note,
                   "a_found": geo.found[n_ref_places + 2 * k],
                   "b_found": geo.found[n_ref_places + 2 * k + 1]} for k, pr in enumerate(pairs)],
        "reference_places_not_found": [
            pl.label() for pl, how in zip([pl for row in ref.rows for pl in row.places],
                                          geo.found[:n_ref_places]) if how == "not found"],
    }


def _settings_table(fits: list[_Fit], order: list[int], sources: Sequence[str],
                    ref: Reference) -> pa.Table:
    rows = []
    for pos, i in enumerate(order, start=1):
        f = fits[i]
        s = _fit_summary(f, sources, ref)
        row: dict[str, Any] = {"fit_rank": pos, "setting_id": i}
        for src in sources:
            row[f"{src}_eps_km"] = float(f.params.source(src).eps_km)
            row[f"{src}_min_weight_share_pct"] = float(f.params.source(src).min_weight_share_pct)
            row[f"{src}_min_weight"] = float(f.evaluation.min_weight[src])
        row |= {"n_clusters": f.evaluation.n_clusters, "n_matched": f.n_matched,
                "spearman": s["spearman"], **{f"{src}_wape": w for src, w in s["wape"].items()},
                "pairs_held": s["pairs_held"], "pairs_known": s["pairs_known"],
                "loss": s["loss"], "verdict": s["verdict"]}
        rows.append(row)
    return pa.Table.from_pylist(rows)


def _clusters_table(ref: Reference, best: _Fit, geo: _Geocoded, named,  # noqa: ANN001
                    sources: Sequence[str]) -> pa.Table:
    e = best.evaluation
    names: dict[str, str] = {}
    if named is not None and named.table("clusters").num_rows:
        cl = named.table("clusters")
        names = dict(zip(cl.column("cluster_id").to_pylist(), cl.column("name").to_pylist()))
    rows, k = [], 0
    for r, row in enumerate(ref.rows):
        c = int(best.match[r])
        found = geo.found[k: k + len(row.places)]
        k += len(row.places)
        out: dict[str, Any] = {
            "ref_rank": row.rank, "ref_name": row.name, "ref_economy": row.economy,
            "places_found": sum(f != "not found" for f in found), "places": len(row.places),
            "rank": int(e.rank[c]) if c >= 0 else None,
            "cluster_id": e.cluster_id[c] if c >= 0 else None,
            "name": names.get(e.cluster_id[c]) if c >= 0 else None,
            "matched": c >= 0}
        for s in sources:
            ours = float(e.shares_pct[s][c]) if c >= 0 else None
            out[f"ref_{s}_share_pct"] = row.shares_pct[s]
            out[f"{s}_share_pct"] = ours
            out[f"{s}_share_error_pct"] = None if ours is None else ours - row.shares_pct[s]
        rows.append(out)
    return pa.Table.from_pylist(rows)


def _pairs_table(pairs: Sequence[Pair], best: _Fit, geo: _Geocoded, n_ref_places: int) -> pa.Table:
    rows = []
    for k, pr in enumerate(pairs):
        held = best.pairs_held[k]
        ia, ib = n_ref_places + 2 * k, n_ref_places + 2 * k + 1
        rows.append({"rule": pr.rule, "place_a": pr.a.label(), "place_b": pr.b.label(),
                     "lat_a": _num(geo.lat[ia]), "lon_a": _num(geo.lon[ia]),
                     "lat_b": _num(geo.lat[ib]), "lon_b": _num(geo.lon[ib]),
                     "held": held, "note": pr.note})
    return pa.Table.from_pylist(rows)


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


def _figure(rep: CalibrationReport):
    """Reference rank vs our rank at the best setting, one dot per matched cluster."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    c = rep.clusters.to_pydict()
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    xs = [x for x, m in zip(c["ref_rank"], c["matched"]) if m]
    ys = [y for y, m in zip(c["rank"], c["matched"]) if m]
    ax.scatter(xs, ys, s=14, color="#3182bd")
    for x, y, nm, m in zip(c["ref_rank"], c["rank"], c["ref_name"], c["matched"]):
        if m:
            ax.annotate(nm, (x, y), fontsize=6, xytext=(3, 2), textcoords="offset points")
    hi = max(xs + ys + [2])
    ax.plot([1, hi], [1, hi], color="grey", lw=0.8, ls="--")
    # Log axes: the top ranks, where the reference is read, get the room.
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.8, hi * 1.3)
    ax.set_ylim(0.8, hi * 1.3)
    b = rep.summary["best"]
    label = f"{rep.label}: " if rep.label else ""
    ax.set_title(f"{label}fit {b['verdict'].upper()}: ρ {b['spearman']:.2f}, pairs "
                 f"{b['pairs_held']}/{b['pairs_known']}, {len(b['unmatched'])} unmatched",
                 fontsize=9)
    ax.set_xlabel("reference rank (log)")
    ax.set_ylabel("our rank at the best setting (log)")
    fig.tight_layout()
    return fig
