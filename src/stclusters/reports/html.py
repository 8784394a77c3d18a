"""The offline report: one self-contained HTML file of a finished run (``stclusters report``).

The page holds everything it needs inline: the vendored script and style
(``reports/assets``, built by ``frontend/build.sh``), the Natural Earth country outlines
(``data/outlines/countries-110m.json`` or ``-50m``, TopoJSON, decoded in the page) and the run's data as
one JSON payload. It loads nothing from the network: its Content-Security-Policy forbids every
fetch and allows only the inline script whose sha256 it names. The same run gives the same
bytes. With a region (``--region GBA``) the page has a region tab: indicators with their
sources, the run's computed indicators, integration figures and claims (``reports/_region``).
See ``docs/report.md``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from importlib import resources
from pathlib import Path, PurePosixPath, PureWindowsPath
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters._run_folder import open_run
from stclusters._sql import identifier
from stclusters.contributions import fx_to_weight
from stclusters.errors import OutputWriteError, ParameterError, StclustersError
from stclusters.reports._atomic import write_text
from stclusters.reports._outlines import OUTLINES_CREDIT
from stclusters.reports.figures import metric_order, score_weights

#: Footprint and point coordinates are sent as delta-encoded integers of 1/COORD_SCALE degree
#: (≈ 111 m at 1000): finer than a footprint's outline needs, and a few characters per
#: vertex where the run's floats take two dozen.
COORD_SCALE = 1000
#: Most places and economies listed per cluster in the cluster panel.
TOP_PLACES = 8
#: Most rows per profile facet and source in the cluster panel.
TOP_PROFILE_ROWS = 5
#: Points beyond this many (the heaviest kept) are left out of the map's point layer.
MAX_POINTS = 200_000
#: Natural Earth scales of the shipped country outlines (``data/outlines``).
OUTLINE_SCALES = ("110m", "50m")
#: Profile facets the panel shows (the economy split is computed from the contributions).
_PROFILE_FACETS = ("applicant", "institution", "tech_field", "sci_field")

#: The outlines' credit, the figures' own (``reports._outlines.OUTLINES_CREDIT``).
NATURAL_EARTH_CREDIT = OUTLINES_CREDIT + "."
GEONAMES_CREDIT = "Place names: GeoNames (geonames.org), CC BY 4.0."

_HINT = "give the --out folder of a finished `stclusters rank` run"


def write_report(run_dir: str | Path, out_html: str | Path | None = None, *,
                 top_n: int | None = None, max_points: int = MAX_POINTS,
                 outlines: str = "110m", region: Any = None, claims: Any = None,
                 indicators: Sequence[str | Path] = ()) -> Path:
    """Write the run's report as one HTML file, atomically.

    Parameters
    ----------
    run_dir : path
        A finished run folder (``stclusters rank --out``; an edition's folder of
        ``stclusters editions`` also shows previous rank and move).
    out_html : path, optional
        The file to write; default ``run_dir/report.html``.
    top_n : int, optional
        Show only the clusters ranked 1..top_n (default: every ranked cluster of the run).
    max_points : int
        Most weighted points (of the shown clusters) drawn on the map; the heaviest are kept.
    outlines : {"110m", "50m"}
        Natural Earth scale of the country outlines: 1:110 million (108 KB, the world
        view) or 1:50 million (756 KB, coasts that still fit when zoomed to one city).
    region : str or Region, optional
        Add a region page: ``GBA``, ``PRD-9``, ``HK-MO`` or a region file
        (``file.yaml[#GROUP]``); see :func:`stclusters.reports._region.region_payload`.
    claims : str, path, list of Claim or False, optional
        With ``region``: the claims to check (a claim file or a shipped set, ``gba``);
        default the shipped set of a shipped region; ``False`` none.
    indicators : sequence of paths
        With ``region``: users' indicator CSV files read after the shipped rows.

    Returns
    -------
    Path
        The HTML file written.

    Raises
    ------
    StclustersError
        Not a run folder, or its footprints cannot be read.
    OutputWriteError
        The file cannot be written (no space, read-only, permission).
    """
    run_dir = Path(run_dir)
    out = Path(out_html) if out_html is not None else run_dir / "report.html"
    if out.is_dir():
        raise StclustersError(f"{out}: the output is a folder",
                              hint="give a file name with --out, e.g. report.html")
    if outlines not in OUTLINE_SCALES:
        raise ParameterError(f"--outlines {outlines}: must be one of "
                              f"{', '.join(OUTLINE_SCALES)}", hint="e.g. --outlines 50m")
    page = render_html(build_payload(run_dir, top_n=top_n, max_points=max_points,
                                     region=region, claims=claims, indicators=indicators),
                       outlines=outlines)
    try:
        write_text(out, page)
    except OSError as exc:
        raise OutputWriteError(out, exc) from exc
    return out


def build_payload(run_dir: str | Path, *, top_n: int | None = None,
                  max_points: int = MAX_POINTS, region: Any = None, claims: Any = None,
                  indicators: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The report's data (what the page's script reads): clusters with footprints, details
    per cluster, points, manifest and attributions, and with ``region`` the region page's
    data (``region``; ``None`` without). Deterministic for a given run folder and inputs."""
    if top_n is not None and top_n < 1:
        raise ParameterError(f"--top {top_n}: must be at least 1", hint="e.g. --top 100")
    if region is None and (claims not in (None, False) or indicators):
        raise ParameterError("--claims and --indicators go with --region",
                             hint="e.g. --region GBA --claims gba")
    run_dir = Path(run_dir)
    region_data = None
    if region is not None:  # first: a bad region or file fails before the map's work
        from stclusters.reports._region import region_payload  # noqa: PLC0415

        region_data = region_payload(run_dir, region, claims=claims, indicators=indicators)
    con, manifest, label = open_run(run_dir)
    try:
        metrics = _metrics(con)
        clusters = _clusters(con, metrics, top_n)
        _attach_footprints(clusters, run_dir / "footprints.geojson")
        _attach_moves(clusters, run_dir)
        ids = [c["cluster_id"] for c in clusters]
        con.register("_report_ids", _ids_table(ids))
        details = _details(con, ids)
        points = _points(con, max_points)
    finally:
        con.close()
    manifest = manifest or {}
    return {
        "version": 1,
        "title": f"stclusters report · {run_dir.resolve().name}",
        "label": label or manifest.get("data_label"),
        "metrics": metrics,
        "score_weights": score_weights(manifest, metrics),
        "coord_scale": COORD_SCALE,
        "clusters": clusters,
        "details": details,
        "points": points,
        "manifest": public_manifest(manifest),
        "attribution": _attribution(manifest, region_data),
        "region": region_data,
    }


def _metrics(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Metrics of the ranking in the figures' colour order (``patent``, ``publication``,
    the others by name), from its ``<metric>_share_pct`` columns."""
    cols = _columns(con, "ranking")
    return list(metric_order(c[: -len("_share_pct")] for c in cols if c.endswith("_share_pct")))


def public_manifest(manifest: Any) -> Any:
    """The manifest as the page shows it: every absolute path reduced to its base name.

    Parameters
    ----------
    manifest : dict
        The run's manifest (or any part of it).

    Returns
    -------
    dict
        A copy in which each string that is an absolute path (POSIX or Windows), such as
        ``inputs[].path``, is its last component, so that no local folder leaves the machine.
    """
    if isinstance(manifest, dict):
        return {k: public_manifest(v) for k, v in manifest.items()}
    if isinstance(manifest, list):
        return [public_manifest(v) for v in manifest]
    if isinstance(manifest, str) and "\n" not in manifest and (
            PurePosixPath(manifest).is_absolute() or PureWindowsPath(manifest).is_absolute()):
        path = PureWindowsPath(manifest) if "\\" in manifest else PurePosixPath(manifest)
        return path.name or manifest
    return manifest


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of the run's view ``table``, in order."""
    return [d[0] for d in con.execute(f"SELECT * FROM {identifier(table)} LIMIT 0").description]


def _num(value: Any, digits: int = 6) -> float | None:
    """A float rounded for the payload (NaN and missing → None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits)


def _clusters(con: duckdb.DuckDBPyConnection, metrics: list[str],
              top_n: int | None) -> list[dict[str, Any]]:
    """The ranked clusters (rank order) as payload rows, without footprints yet."""
    cols = set(_columns(con, "ranking"))
    limit = top_n if top_n is not None else 2**62
    cur = con.execute("SELECT * FROM ranking WHERE rank <= ? ORDER BY rank, cluster_id", [limit])
    names = [d[0] for d in cur.description]
    table = [dict(zip(names, row)) for row in cur.fetchall()]

    def per_metric(row: dict[str, Any], suffix: str) -> dict[str, float | None]:
        return {m: _num(row.get(f"{m}{suffix}")) for m in metrics if f"{m}{suffix}" in cols}

    return [{
        "rank": int(r["rank"]), "cluster_id": r["cluster_id"], "name": r.get("name"),
        "economy": r.get("economy"), "lat": _num(r.get("lat"), 5), "lon": _num(r.get("lon"), 5),
        "score_pct": _num(r.get("score_pct")), "n_core_points": r.get("n_core_points"),
        "population": r.get("population"), "population_basis": r.get("population_basis"),
        "weight": per_metric(r, "_weight"), "share_pct": per_metric(r, "_share_pct"),
        "per_million_pop": per_metric(r, "_per_million_pop"),
        "prev_rank": None, "move": None, "status": None, "footprint": [],
    } for r in table]


def encode_ring(ring: Sequence[Sequence[float]], scale: int = COORD_SCALE) -> list[int]:
    """A ring as the pages send it (the report and ``stclusters serve``; decoded by
    ``frontend/src/data.js`` ``decodeRing``).

    Parameters
    ----------
    ring : sequence of [lon, lat, ...]
        The ring's vertices, degrees (a closing repeat of the first is allowed).
    scale : int
        Units per degree (default :data:`COORD_SCALE`, ≈ 111 m a unit).

    Returns
    -------
    list of int
        ``[x0, y0, dx1, dy1, …]`` in 1/``scale`` degree; vertices equal after rounding to
        the previous one and the closing repeat are dropped.
    """
    out: list[int] = []
    px = py = 0
    first: tuple[int, int] | None = None
    for lon, lat, *_ in ring:
        x, y = round(lon * scale), round(lat * scale)
        if first is not None and (x, y) == (px, py):
            continue
        out += [x - px, y - py]
        px, py = x, y
        first = first or (x, y)
    if len(out) > 2 and first == (px, py):
        del out[-2:]
    return out


def encode_geometry(geom: dict[str, Any], scale: int = COORD_SCALE) -> list[list[list[int]]]:
    """A GeoJSON Polygon or MultiPolygon as a list of polygons of :func:`encode_ring` rings.

    Parameters
    ----------
    geom : dict
        ``{"type": "Polygon" | "MultiPolygon", "coordinates": ...}``, degrees.
    scale : int
        Units per degree.

    Returns
    -------
    list
        Polygons, each a list of encoded rings (outer first).

    Raises
    ------
    KeyError
        Neither a Polygon nor a MultiPolygon.
    """
    polys = {"Polygon": lambda c: [c], "MultiPolygon": lambda c: c}[geom["type"]](
        geom["coordinates"])
    return [[encode_ring(ring, scale) for ring in poly] for poly in polys]


def _attach_footprints(clusters: list[dict[str, Any]], path: Path) -> None:
    """Each cluster's footprint polygons from the run's ``footprints.geojson``."""
    try:
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
    except FileNotFoundError as exc:
        raise StclustersError(f"{path}: missing (the run's footprints)", hint=_HINT) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StclustersError(f"{path}: not a footprints GeoJSON ({exc})", hint=_HINT) from exc
    by_id: dict[str, list[list[list[int]]]] = {}
    for i, feat in enumerate(features):
        try:
            by_id[feat["properties"]["cluster_id"]] = encode_geometry(feat["geometry"] or {})
        except (KeyError, TypeError, ValueError) as exc:
            raise StclustersError(f"{path}: feature {i + 1}: no polygon footprint with a "
                                  f"cluster_id ({exc!r})", hint=_HINT) from exc
    for c in clusters:
        c["footprint"] = by_id.get(c["cluster_id"], [])


def _attach_moves(clusters: list[dict[str, Any]], run_dir: Path) -> None:
    """Previous rank, move and status when ``run_dir`` is an edition of an editions folder
    (its parent holds ``editions.parquet`` with rows of edition ``run_dir.name``)."""
    table_path = run_dir.resolve().parent / "editions.parquet"
    if not table_path.is_file():
        return
    try:
        rows = pq.read_table(table_path, columns=["edition", "cluster_id", "prev_rank", "move",
                                                  "status"]).to_pylist()
    except (OSError, ValueError, KeyError) as exc:
        raise StclustersError(f"{table_path}: cannot read the editions table ({exc})",
                              hint="rerun `stclusters editions`") from exc
    edition = run_dir.resolve().name
    moves = {r["cluster_id"]: r for r in rows if r["edition"] == edition}
    for c in clusters:
        r = moves.get(c["cluster_id"])
        if r:
            c["prev_rank"], c["move"], c["status"] = r["prev_rank"], r["move"], r["status"] or None


def _ids_table(ids: list[str]) -> pa.Table:
    return pa.table({"cluster_id": pa.array(ids, pa.string())})


#: SQL: the used contributions of the shown clusters' points (``cluster_id, city, country,
#: weight_fx``); a contribution belongs to the cluster of its point (source, lat, lon).
_CLUSTER_CONTRIBUTIONS = """
    SELECT k.cluster_id, coalesce(ct.city, '(no city given)') AS city,
           coalesce(ct.country, '??') AS country, ct.weight_fx
    FROM _report_ids k
    JOIN clusters c ON c.cluster_id = k.cluster_id
    JOIN points p ON p.stc = c.stc
    JOIN contributions ct ON ct.source = p.source AND ct.lat = p.lat AND ct.lon = p.lon
    WHERE ct.status = 'used'
"""


def _shares(con: duckdb.DuckDBPyConnection, keys: str, top: int) -> dict[str, list[list[Any]]]:
    """Per cluster: the top ``keys`` groups (a fixed column list of this module, never user
    text) of its contributions by weight, with their share of
    the cluster's weight (%), heaviest first, ties by key."""
    sql = f"""
        WITH g AS (
            SELECT cluster_id, {keys}, sum(weight_fx) AS fx
            FROM ({_CLUSTER_CONTRIBUTIONS}) GROUP BY ALL),
        s AS (
            SELECT *, fx / sum(fx) OVER (PARTITION BY cluster_id) * 100 AS share_pct,
                   row_number() OVER (PARTITION BY cluster_id ORDER BY fx DESC, {keys}) AS n
            FROM g)
        SELECT cluster_id, {keys}, {fx_to_weight('fx')} AS weight, share_pct
        FROM s WHERE n <= ? ORDER BY cluster_id, n
    """
    out: dict[str, list[list[Any]]] = {}
    for row in con.execute(sql, [top]).fetchall():
        out.setdefault(row[0], []).append([*row[1:-2], _num(row[-2]), _num(row[-1], 3)])
    return out


def _profile(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, list[list[Any]]]]:
    """Per cluster and facet: the profile's top rows ``[source, label, weight, share %]``
    (rows that name no value, such as a facet missing from a source, are left out)."""
    present = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_catalog = current_database()").fetchall()}
    if "profiles" not in present:
        return {}
    facets = ", ".join("?" for _ in _PROFILE_FACETS)
    rows = con.execute(f"""
        SELECT p.cluster_id, p.facet, p.source, coalesce(p.label, p.key), p.weight, p.share_pct
        FROM profiles p JOIN _report_ids k ON k.cluster_id = p.cluster_id
        WHERE p.facet IN ({facets}) AND p.weight IS NOT NULL AND p.item <= ?
          AND NOT starts_with(coalesce(p.key, '('), '(')
        ORDER BY p.cluster_id, p.facet, p.source, p.item
    """, [*_PROFILE_FACETS, TOP_PROFILE_ROWS]).fetchall()
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for cid, facet, source, label, weight, share in rows:
        out.setdefault(cid, {}).setdefault(facet, []).append(
            [source, label, _num(weight), _num(share, 3)])
    return out


def _details(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The cluster panel's data per cluster: top places, weight by economy, profile."""
    places = _shares(con, "city, country", TOP_PLACES)
    economies = _shares(con, "country", TOP_PLACES)
    profile = _profile(con)
    return {cid: {"places": places.get(cid, []), "economies": economies.get(cid, []),
                  "profile": profile.get(cid, {})} for cid in ids}


def _points(con: duckdb.DuckDBPyConnection, max_points: int) -> dict[str, Any]:
    """The weighted points of the shown clusters, merged over sources at 1/COORD_SCALE degree,
    as one delta-encoded ``[x, y, …]`` list ordered by cluster rank, lon, lat; the heaviest
    ``max_points`` when there are more."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _report_points AS
        SELECT round(p.lon * {COORD_SCALE})::BIGINT AS x, round(p.lat * {COORD_SCALE})::BIGINT
               AS y, sum(p.weight_fx) AS fx, min(r.rank) AS rank
        FROM points p JOIN clusters c ON c.stc = p.stc
        JOIN ranking r ON r.cluster_id = c.cluster_id
        JOIN _report_ids k ON k.cluster_id = c.cluster_id
        GROUP BY x, y
    """)
    total = con.execute("SELECT count(*) FROM _report_points").fetchone()[0]
    # Cluster by cluster (then by position): consecutive points are neighbours, so the
    # deltas stay short.
    rows = con.execute("SELECT x, y FROM (SELECT x, y, rank FROM _report_points "
                       "ORDER BY fx DESC, x, y LIMIT ?) ORDER BY rank, x, y",
                       [max(0, max_points)]).fetchall()
    flat: list[int] = []
    px = py = 0
    for x, y in rows:
        flat += [x - px, y - py]
        px, py = x, y
    return {"scale": COORD_SCALE, "xy": flat, "shown": len(rows), "total": int(total)}


def _attribution(manifest: dict[str, Any], region: dict[str, Any] | None = None) -> list[str]:
    """The credits shown at the foot of the page: the manifest's (each source's own), then
    GeoNames unless the manifest credits it already, the region page's (statistics offices,
    indicator publishers, published ranks), then Natural Earth."""
    from stclusters.reports.figures import source_credit  # noqa: PLC0415 - matplotlib

    lines = [c for c in [source_credit(manifest)] if c]
    lines += [str(a) for a in manifest.get("attribution") or []]
    if not any("GeoNames" in a for a in lines):
        lines.append(GEONAMES_CREDIT)
    lines += [c for c in (region or {}).get("credits", []) if "GeoNames" not in c]
    return [*lines, NATURAL_EARTH_CREDIT]


def script_json(data: Any) -> str:
    """``data`` as JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` escaped
    (no ``</script>`` can close the element early) and U+2028/U+2029 escaped."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      allow_nan=False)
    for char, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, esc)
    return text


def _asset(name: str) -> str:
    return resources.files("stclusters").joinpath("reports", "assets", name).read_text("utf-8")


def _outlines(scale: str) -> Any:
    return json.loads(resources.files("stclusters").joinpath(
        "data", "outlines", f"countries-{scale}.json").read_text("utf-8"))


def _html_attr(value: str) -> str:
    """An HTML attribute value, quoted and escaped."""
    return '"' + html.escape(value, quote=True) + '"'


def render_html(payload: dict[str, Any], *, outlines: str = "110m") -> str:
    """The whole page: style, payload, outlines and script inline; a CSP that allows no
    network request and only this script (by its sha256)."""
    js = _asset("report.js").replace("</script", "<\\/script")
    css = _asset("report.css").replace("</style", "<\\/style")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
           "img-src data:; base-uri 'none'; form-action 'none'")
    title = html.escape(payload["title"])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content={_html_attr(csp)}>\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"generator\" content=\"stclusters report\">\n"
        f"<title>{title}</title>\n<style>{css}</style>\n</head>\n<body>\n"
        "<noscript>This report needs JavaScript to draw its map and table.</noscript>\n"
        "<div id=\"app\"></div>\n"
        f"<script type=\"application/json\" id=\"stc-data\">{script_json(payload)}</script>\n"
        f"<script type=\"application/json\" id=\"stc-outlines\">{script_json(_outlines(outlines))}"
        "</script>\n"
        f"<script>{js}</script>\n</body>\n{_licence_comment()}</html>\n"
    )


def _licence_comment() -> str:
    """The licences of the inlined third-party code and outlines (d3-geo, d3-array,
    topojson-client, world-atlas: ``assets/THIRD_PARTY.txt``) as one HTML comment, so that
    they travel with the single-file page."""
    text = _asset("THIRD_PARTY.txt").replace("--", "- -").strip()
    return f"<!--\nThird-party licences of the code and data inlined in this page:\n\n{text}\n-->\n"


__all__ = ["COORD_SCALE", "NATURAL_EARTH_CREDIT", "build_payload", "encode_geometry", "encode_ring",
           "public_manifest", "render_html", "script_json", "write_report"]
