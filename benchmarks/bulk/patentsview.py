"""SYNTHETIC PatentsView bulk tables in the published layout, at any size (streamed).

The layout (file names, one ``<table>.tsv`` member per ``<table>.tsv.zip``, TAB, header
names in double quotes, text values quoted with ``""`` inside, numbers bare, LF) follows
``shared/spec/formats.md`` §1.1–1.2 (sources [A] PatentsView-Code-Snippets
``0-getting-started.ipynb`` for the quoting, [B] PatentsView-DB ``create_export_views.sql``
for the column names and order). Empty values are written as empty fields (✘ in the spec:
the reader also takes ``""``).

The world is the engine's synthetic one (:mod:`stclusters.synthetic`: patent activity drawn
around GeoNames places of ≥ 15,000 inhabitants, team sizes 1–8): each inventor row sits at
its place, and ``g_location_disambiguated`` holds one row per place used with the place's
own coordinates, as PatentsView's locations are city centroids. Nothing here is real
activity; GeoNames (geonames.org), CC BY 4.0.

Every edge case of the reader appears at fixed row/patent positions (so even a 60-row
fixture has each): design / plant / reissue ids (``D…``, ``PP…``, ``RE…``), withdrawn
patents, inventors with an empty or unknown ``location_id``, inventors of a patent that is
not in ``g_patent``, locations without coordinates (to be geocoded from their city), a
location whose coordinates lie outside its country (PatentsView's real "Limm, GB" at
11.1, 30.5167 in Africa, formats.md §4 sample), a patent whose first CPC row is
``additional``, patents with IPC only, individual first assignees.

:func:`peer_sql` is the DuckDB query a user would write instead (``read_csv`` over the
unzipped members, same joins and filters), for the benchmark harness.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Column order of each table (formats.md §1.2, source [B]).
LAYOUT: dict[str, tuple[str, ...]] = {
    "g_patent": ("patent_id", "patent_type", "patent_date", "patent_title", "wipo_kind",
                 "num_claims", "withdrawn", "filename"),
    "g_inventor_disambiguated": ("patent_id", "inventor_sequence", "inventor_id",
                                 "disambig_inventor_name_first", "disambig_inventor_name_last",
                                 "gender_code", "location_id"),
    "g_location_disambiguated": ("location_id", "disambig_city", "disambig_state",
                                 "disambig_country", "latitude", "longitude", "county",
                                 "state_fips", "county_fips"),
    "g_cpc_current": ("patent_id", "cpc_sequence", "cpc_section", "cpc_class", "cpc_subclass",
                      "cpc_group", "cpc_type"),
    "g_ipc_at_issue": ("patent_id", "ipc_sequence", "classification_level", "section",
                       "ipc_class", "subclass", "main_group", "subgroup",
                       "classification_value", "classification_status",
                       "classification_data_source", "action_date", "ipc_version_indicator"),
    "g_assignee_disambiguated": ("patent_id", "assignee_sequence", "assignee_id",
                                 "disambig_assignee_individual_name_first",
                                 "disambig_assignee_individual_name_last",
                                 "disambig_assignee_organization", "assignee_type",
                                 "location_id"),
    "pg_published_application": ("pgpub_id", "application_id", "filing_date", "patent_type",
                                 "filing_type", "published_date", "wipo_kind", "series_code",
                                 "application_title", "rule_47_flag", "filename"),
    "pg_inventor_disambiguated": ("pgpub_id", "inventor_sequence", "inventor_id",
                                  "disambig_inventor_name_first", "disambig_inventor_name_last",
                                  "gender_code", "location_id"),
    "pg_location_disambiguated": ("location_id", "disambig_city", "disambig_state",
                                  "disambig_country", "latitude", "longitude", "county",
                                  "state_fips", "county_fips"),
    "pg_cpc_current": ("pgpub_id", "cpc_sequence", "cpc_section", "cpc_class", "cpc_subclass",
                       "cpc_group", "cpc_type", "cpc_version_indicator"),
}

#: Columns written bare (numbers in the export: formats.md §1.1 "numeric values bare").
#: ``pgpub_id`` is a bigint in the current dictionary (quoting ✘): written bare here.
_BARE = frozenset({"num_claims", "withdrawn", "inventor_sequence", "latitude", "longitude",
                   "cpc_sequence", "ipc_sequence", "assignee_sequence", "assignee_type",
                   "rule_47_flag", "pgpub_id"})

_SUBCLASSES = ("H01L", "G06F", "H04L", "A61K", "H04W", "G06N", "A61B", "B60L", "C07D", "G01N",
               "H01M", "G06Q", "C12N", "F02D", "B29C", "H04N")
_FIRST = ("Wei", "Maria", "John", "Yuki", "Anna", "Rahul", "Li", "Sophie", "Jin", "Carlos")
_LAST = ("Zhang", "Smith", "Tanaka", "Müller", "Kim", "García", "Rossi", "Chen", "Dubois",
         "O\"Brien")  # a double quote inside a value: doubled in the file
_ORGS = ("Acme Semiconductor Co., Ltd.", "Globex Corporation", "Initech GmbH",
         "Umbrella Biotech, Inc.", "Hooli \"Labs\" LLC", "Stark Industries")

#: The real PatentsView geocoding defect kept in the spec's legacy sample (formats.md §4).
_LIMM = ("pv-limm-gb", "Limm", None, "GB", 11.1, 30.5167)
_FIXED_DATE = (2024, 6, 1, 0, 0, 0)  # zip member timestamp: same bytes on every run


def _quoted(values: pa.Array) -> pa.Array:
    """Text values in double quotes, ``"`` doubled; nulls stay null."""
    s = pc.replace_substring(values.cast(pa.string()), '"', '""')
    return pc.binary_join_element_wise('"', s, '"', "")


def _lines(table: str, columns: dict[str, pa.Array]) -> bytes:
    """TSV lines (LF) of one table's rows, columns in :data:`LAYOUT` order."""
    cells = []
    for name in LAYOUT[table]:
        values = columns[name]
        text = values.cast(pa.string()) if name in _BARE else _quoted(values)
        cells.append(pc.fill_null(text, ""))
    rows = pc.binary_join_element_wise(*cells, "\t")
    return ("\n".join(rows.to_pylist()) + "\n").encode("utf-8") if len(rows) else b""


def _header(table: str) -> bytes:
    names = _quoted(pa.array(LAYOUT[table], pa.string())).to_pylist()
    return ("\t".join(names) + "\n").encode("utf-8")


class _Out:
    """One output file: ``<table>.tsv.zip`` (one member), ``.tsv.gz`` or ``.tsv``, streamed."""

    def __init__(self, out_dir: Path, table: str, compress: str) -> None:
        import gzip  # noqa: PLC0415

        self.table = table
        self.path = out_dir / {"zip": f"{table}.tsv.zip", "gz": f"{table}.tsv.gz",
                               "none": f"{table}.tsv"}[compress]
        self._raw = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._zip = None
        if compress == "zip":
            self._zip = zipfile.ZipFile(self._raw, "w", compression=zipfile.ZIP_DEFLATED)
            info = zipfile.ZipInfo(f"{table}.tsv", date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            self._f = self._zip.open(info, "w", force_zip64=True)
        elif compress == "gz":
            self._f = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
        else:
            self._f = self._raw
        self._f.write(_header(table))

    def write(self, columns: dict[str, pa.Array]) -> None:
        self._f.write(_lines(self.table, columns))

    def close(self) -> None:
        if self._f is not self._raw:
            self._f.close()
        if self._zip is not None:
            self._zip.close()
        self._raw.close()


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    """``prefix`` followed by each number, as strings."""
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


def _strs(values: Sequence[str | None], index: np.ndarray) -> pa.Array:
    return pa.array(list(values), pa.string()).take(pa.array(index))


def _location_ids(place: np.ndarray) -> pa.Array:
    """Opaque location ids of places (formats.md: "an opaque id; do not parse it")."""
    scrambled = (place.astype(np.int64) * 2654435761) % (1 << 32)
    return pc.binary_join_element_wise("pv", pc.cast(pa.array(scrambled), pa.string()),
                                       pc.cast(pa.array(place.astype(np.int64)), pa.string()), "-")


class _World:
    """The places and drawing state shared by the chunks of one generation."""

    def __init__(self, seed: int) -> None:
        from stclusters import synthetic as syn  # noqa: PLC0415

        self.syn = syn
        self.pl = syn.load_places()
        self.rng = np.random.default_rng(seed)
        self.near = syn._nearest(self.pl, syn._NEAR_K)
        self.seat_a1 = syn._seat(self.pl, self.pl.country.astype(str) + "\x1f"
                                 + self.pl.admin1.astype(str))
        self.seat_c = syn._seat(self.pl, self.pl.country)
        self.used = np.zeros(self.pl.n, dtype=bool)  # places some inventor row sits at
        self.no_coord = np.zeros(self.pl.n, dtype=bool)  # places written without coordinates

    def rows(self, n: int) -> dict[str, np.ndarray]:
        return self.syn._source_rows(self.pl, "patent", n, (2018, 2022), self.rng, self.near,
                                     self.seat_a1, self.seat_c)


def _patent_ids(j: np.ndarray) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """``patent_id`` and ``patent_type`` of global patent numbers ``j`` (ids as PatentsView
    prints them: ``10000000``, ``D900004``, ``PP30009``, ``RE49002``), and a mask of designs."""
    kind = np.zeros(j.size, dtype=np.int8)  # utility
    kind[j % 43 == 2] = 3  # reissue
    kind[j % 37 == 9] = 2  # plant
    kind[j % 23 == 4] = 1  # design
    prefix = np.array(["", "D", "PP", "RE"], dtype=object)[kind]
    number = np.choose(kind, [10_000_000 + j, 900_000 + j, 30_000 + j, 49_000 + j])
    ids = pc.binary_join_element_wise(pa.array(prefix, pa.string()),
                                      pc.cast(pa.array(number), pa.string()), "")
    types = _strs(("utility", "design", "plant", "reissue"), kind)
    return ids, types, kind == 1


def _dates(year: np.ndarray, rng: np.random.Generator) -> pa.Array:
    month = rng.integers(1, 13, year.size)
    day = rng.integers(1, 29, year.size)
    text = [f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in zip(year.tolist(), month.tolist(),
                                                          day.tolist(), strict=True)]
    return pa.array(text, pa.string())


def _granted_chunk(w: _World, outs: dict[str, _Out], n: int, row0: int, doc0: int) -> int:
    """Write ``n`` inventor rows (and their patents, CPC, IPC, assignees); returns the
    number of patents written."""
    r = w.rows(n)
    n_docs = int(r["n_docs"])
    j = doc0 + np.arange(n_docs, dtype=np.int64)
    ids, types, design = _patent_ids(j)
    year = r["year"][np.searchsorted(r["doc"], np.arange(n_docs))]
    outs["g_patent"].write({
        "patent_id": ids, "patent_type": types, "patent_date": _dates(year, w.rng),
        "patent_title": pc.binary_join_element_wise("Synthetic invention no. ",
                                                    pc.cast(pa.array(j), pa.string()), ""),
        "wipo_kind": _strs(("B2", "S1", "P3", "E1"),
                           np.select([design, types.to_numpy(zero_copy_only=False) == "plant",
                                      types.to_numpy(zero_copy_only=False) == "reissue"],
                                     [1, 2, 3], 0)),
        "num_claims": pa.array(1 + (j * 7) % 30),
        "withdrawn": pa.array((j % 41 == 3).astype(np.int64)),
        "filename": pc.binary_join_element_wise("ipg", pc.cast(pa.array(year % 100 * 10000 + 101),
                                                               pa.string()), ".xml", ""),
    })
    i = row0 + np.arange(n, dtype=np.int64)
    place = r["place"]
    w.used[place] = True
    loc = _location_ids(place)
    # Edge cases at fixed row positions: empty / unknown location, a place without
    # coordinates, the Limm (GB) defect, an inventor of a patent not in g_patent.
    nocoord = i % 59 == 17
    w.no_coord[place[nocoord]] = True
    loc = pc.if_else(pa.array(nocoord), pc.binary_join_element_wise(loc, "n", ""), loc)
    loc = pc.if_else(pa.array(i % 71 == 19), _LIMM[0], loc)
    loc = pc.if_else(pa.array(i % 61 == 25),
                     _prefixed("pv-unknown-", i),
                     loc)
    loc = pc.if_else(pa.array(i % 53 == 22), pa.scalar(None, pa.string()), loc)
    patent = ids.take(pa.array(r["doc"]))
    orphan = i % 67 == 13
    patent = pc.if_else(pa.array(orphan),
                        pc.cast(pa.array(90_000_000 + i), pa.string()), patent)
    outs["g_inventor_disambiguated"].write({
        "patent_id": patent, "inventor_sequence": pa.array(r["seq"]),
        "inventor_id": _prefixed("fl:syn-", i * 7919 % 1_000_003),
        "disambig_inventor_name_first": _strs(_FIRST, i % len(_FIRST)),
        "disambig_inventor_name_last": _strs(_LAST, (i // 3) % len(_LAST)),
        "gender_code": _strs(("M", "F", None), i % 3),
        "location_id": loc,
    })
    _classifications(outs, ids, j, design)
    _assignees(outs, ids, j)
    return n_docs


def _classifications(outs: dict[str, _Out], ids: pa.Array, j: np.ndarray,
                     design: np.ndarray) -> None:
    """CPC rows (1–3 per patent; the first ``additional`` when ``j % 5 == 1``; none for
    designs and for ``j % 29 == 6``, which have IPC only) and one IPC row per non-design."""
    with_cpc = ~design & (j % 29 != 6)
    k = np.where(with_cpc, 1 + j % 3, 0)
    p = np.repeat(np.arange(j.size), k)
    seq = np.arange(p.size) - np.repeat(np.cumsum(k) - k, k)
    sub_i = (j[p] * 5 + seq) % len(_SUBCLASSES)
    sub = _strs(_SUBCLASSES, sub_i)
    additional = (seq == 0) & (j[p] % 5 == 1) | (seq >= 2)
    outs["g_cpc_current"].write({
        "patent_id": ids.take(pa.array(p)), "cpc_sequence": pa.array(seq),
        "cpc_section": pc.utf8_slice_codeunits(sub, 0, 1),
        "cpc_class": pc.utf8_slice_codeunits(sub, 0, 3), "cpc_subclass": sub,
        "cpc_group": pc.binary_join_element_wise(sub, "21/02", ""),
        "cpc_type": _strs(("inventional", "additional"), additional.astype(np.int8)),
    })
    q = np.flatnonzero(~design)
    sub = _strs(_SUBCLASSES, (j[q] * 3 + 1) % len(_SUBCLASSES))
    outs["g_ipc_at_issue"].write({
        "patent_id": ids.take(pa.array(q)), "ipc_sequence": pa.array(np.zeros(q.size, np.int64)),
        "classification_level": _strs(("A",), np.zeros(q.size, np.int64)),
        "section": pc.utf8_slice_codeunits(sub, 0, 1),
        "ipc_class": pc.utf8_slice_codeunits(sub, 1, 3),
        "subclass": pc.utf8_slice_codeunits(sub, 3, 4),
        "main_group": _strs(("21",), np.zeros(q.size, np.int64)),
        "subgroup": _strs(("02",), np.zeros(q.size, np.int64)),
        "classification_value": _strs(("I",), np.zeros(q.size, np.int64)),
        "classification_status": _strs(("B",), np.zeros(q.size, np.int64)),
        "classification_data_source": _strs(("H",), np.zeros(q.size, np.int64)),
        "action_date": _strs(("2006-01-01",), np.zeros(q.size, np.int64)),
        "ipc_version_indicator": _strs(("2006-01-01",), np.zeros(q.size, np.int64)),
    })


def _assignees(outs: dict[str, _Out], ids: pa.Array, j: np.ndarray) -> None:
    """No assignee when ``j % 4 == 0``; two (an individual first) when ``j % 11 == 5``."""
    k = np.where(j % 4 == 0, 0, np.where(j % 11 == 5, 2, 1))
    p = np.repeat(np.arange(j.size), k)
    seq = np.arange(p.size) - np.repeat(np.cumsum(k) - k, k)
    person = (seq == 0) & (k[p] == 2)
    org = pa.array([None if pers else _ORGS[int(x) % len(_ORGS)]
                    for pers, x in zip(person.tolist(), j[p].tolist(), strict=True)], pa.string())
    outs["g_assignee_disambiguated"].write({
        "patent_id": ids.take(pa.array(p)), "assignee_sequence": pa.array(seq),
        "assignee_id": pc.binary_join_element_wise("syn-a-", pc.cast(pa.array(j[p] % 997),
                                                                     pa.string()), ""),
        "disambig_assignee_individual_name_first": pa.array(
            np.where(person, "Pat", None), pa.string()),
        "disambig_assignee_individual_name_last": pa.array(
            np.where(person, "Owner", None), pa.string()),
        "disambig_assignee_organization": org,
        "assignee_type": pa.array(np.where(person, 4, 2)),
        "location_id": pa.nulls(p.size, pa.string()),
    })


def _pregrant_chunk(w: _World, outs: dict[str, _Out], n: int, row0: int, doc0: int) -> int:
    """Pre-grant publications: ``pgpub_id`` of 11 digits, inventor sequence 1-based."""
    r = w.rows(n)
    n_docs = int(r["n_docs"])
    j = doc0 + np.arange(n_docs, dtype=np.int64)
    year = r["year"][np.searchsorted(r["doc"], np.arange(n_docs))]
    ids = pc.cast(pa.array(year * 10_000_000 + 100_000 + j), pa.string())
    outs["pg_published_application"].write({
        "pgpub_id": ids,
        "application_id": _prefixed("17", 600_000 + j),
        "filing_date": _dates(year - 1, w.rng), "patent_type": _strs(("utility",), j * 0),
        "filing_type": _strs(("new",), j * 0), "published_date": _dates(year, w.rng),
        "wipo_kind": _strs(("A1",), j * 0), "series_code": _strs(("17",), j * 0),
        "application_title": pc.binary_join_element_wise("Synthetic application no. ",
                                                         pc.cast(pa.array(j), pa.string()), ""),
        "rule_47_flag": pa.array(j * 0), "filename": _strs(("ipa200102.xml",), j * 0),
    })
    i = row0 + np.arange(n, dtype=np.int64)
    place = r["place"]
    w.used[place] = True
    loc = pc.if_else(pa.array(i % 53 == 7), pa.scalar(None, pa.string()), _location_ids(place))
    outs["pg_inventor_disambiguated"].write({
        "pgpub_id": ids.take(pa.array(r["doc"])), "inventor_sequence": pa.array(r["seq"] + 1),
        "inventor_id": _prefixed("fl:syn-", i),
        "disambig_inventor_name_first": _strs(_FIRST, i % len(_FIRST)),
        "disambig_inventor_name_last": _strs(_LAST, (i // 3) % len(_LAST)),
        "gender_code": _strs(("F", "M", None), i % 3), "location_id": loc,
    })
    sub = _strs(_SUBCLASSES, j % len(_SUBCLASSES))
    outs["pg_cpc_current"].write({
        "pgpub_id": ids, "cpc_sequence": pa.array(j * 0),
        "cpc_section": pc.utf8_slice_codeunits(sub, 0, 1),
        "cpc_class": pc.utf8_slice_codeunits(sub, 0, 3), "cpc_subclass": sub,
        "cpc_group": pc.binary_join_element_wise(sub, "21/02", ""),
        "cpc_type": _strs(("inventional",), j * 0),
        "cpc_version_indicator": _strs(("2023-01-01",), j * 0),
    })
    return n_docs


def _write_locations(w: _World, out: _Out) -> None:
    """One row per place used (its own coordinates, 4 decimals), its coordinate-less twin
    (``…n``) where one was used, and the Limm (GB) defect row."""
    pl = w.pl
    idx = np.flatnonzero(w.used)
    twin = np.flatnonzero(w.no_coord)
    both = np.concatenate([idx, twin])
    has = np.concatenate([np.ones(idx.size, bool), np.zeros(twin.size, bool)])
    ids = pc.binary_join_element_wise(_location_ids(both),
                                      pa.array(np.where(has, "", "n"), pa.string()), "")
    us = pl.country[both] == "US"
    cols = {
        "location_id": ids, "disambig_city": pa.array(pl.name[both], pa.string()),
        "disambig_state": pa.array(np.where(us, pl.admin1[both], None), pa.string()),
        "disambig_country": pa.array(pl.country[both], pa.string()),
        "latitude": pa.array(np.round(pl.lat[both], 4), mask=~has),
        "longitude": pa.array(np.round(pl.lon[both], 4), mask=~has),
        "county": pa.nulls(both.size, pa.string()), "state_fips": pa.nulls(both.size, pa.string()),
        "county_fips": pa.nulls(both.size, pa.string()),
    }
    out.write(cols)
    lid, city, state, country, lat, lon = _LIMM
    out.write({"location_id": pa.array([lid]), "disambig_city": pa.array([city]),
               "disambig_state": pa.array([state], pa.string()),
               "disambig_country": pa.array([country]),
               "latitude": pa.array([lat]), "longitude": pa.array([lon]),
               "county": pa.nulls(1, pa.string()), "state_fips": pa.nulls(1, pa.string()),
               "county_fips": pa.nulls(1, pa.string())})


def generate(out_dir: Path, *, n_rows: int, seed: int = 0, pregrant: bool = False,
             compress: str = "zip", chunk_rows: int = 500_000) -> list[Path]:
    """Write SYNTHETIC PatentsView bulk tables into ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Created if missing.
    n_rows : int
        Rows of ``g_inventor_disambiguated`` (about 2.8 inventors per patent); the other
        tables follow (``pregrant``: ``n_rows // 2`` more pre-grant inventor rows).
    seed : int
        Same seed, same bytes.
    pregrant : bool
        Also write ``pg_published_application``, ``pg_inventor_disambiguated``,
        ``pg_location_disambiguated`` and ``pg_cpc_current``.
    compress : {"zip", "gz", "none"}
        ``<table>.tsv.zip`` as published, re-gzipped ``.tsv.gz``, or unzipped ``.tsv``.
    chunk_rows : int
        Inventor rows drawn and written at a time (memory bound, not content: the drawing
        continues one random stream, so the bytes depend on it; keep the default).

    Returns
    -------
    list of Path
        The files written, in name order.
    """
    if compress not in ("zip", "gz", "none"):
        raise ValueError(f"compress must be zip, gz or none, got {compress!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    w = _World(seed)
    tables = [t for t in LAYOUT if pregrant or not t.startswith("pg_")]
    outs = {t: _Out(out_dir, t, compress) for t in tables}
    try:
        done, docs = 0, 0
        while done < n_rows:
            n = min(chunk_rows, n_rows - done)
            docs += _granted_chunk(w, outs, n, done, docs)
            done += n
        if pregrant:
            done, docs, n_pg = 0, 0, max(n_rows // 2, 1)
            while done < n_pg:
                n = min(chunk_rows, n_pg - done)
                docs += _pregrant_chunk(w, outs, n, done, docs)
                done += n
            _write_locations(w, outs["pg_location_disambiguated"])
        _write_locations(w, outs["g_location_disambiguated"])
    finally:
        for o in outs.values():
            o.close()
    return sorted(o.path for o in outs.values())


def peer_sql(paths: Sequence[Path]) -> tuple[str, list]:
    """The DuckDB query a user would write instead of stclusters, and its parameters.

    DuckDB cannot read ``.zip``: pass the unzipped members (``generate(compress="none")``
    writes them, or ``unzip``), ``.tsv`` or ``.tsv.gz``. Needs ``g_patent``,
    ``g_inventor_disambiguated`` and ``g_location_disambiguated``; ``g_cpc_current``,
    ``g_ipc_at_issue`` and ``g_assignee_disambiguated`` are joined when given. The result
    has the rows and columns stclusters stages as located contributions: every inventor row
    of a patent that is in ``g_patent`` and not withdrawn, whose location has coordinates;
    with the grant year,
    0-based inventor rank, country, city, first inventional CPC subclass (else first CPC,
    else IPC) and first assignee organisation.
    """
    by_table: dict[str, str] = {}
    for p in paths:
        name = Path(p).name
        table = name.split(".", 1)[0]
        by_table[table] = str(p)
    opts = "delim='\t', header=true, quote='\"', escape='\"', all_varchar=true"
    params = [by_table["g_patent"], by_table["g_inventor_disambiguated"],
              by_table["g_location_disambiguated"]]
    cpc = asg = "NULL::VARCHAR"
    joins = ""
    tech = []
    if "g_cpc_current" in by_table:
        params.append(by_table["g_cpc_current"])
        joins += (f" LEFT JOIN (SELECT patent_id, arg_min(cpc_subclass, [(cpc_type <> "
                  f"'inventional')::INT, CAST(cpc_sequence AS INT)]) AS tf "
                  f"FROM read_csv(?, {opts}) GROUP BY patent_id) c USING (patent_id)")
        tech.append("c.tf")
    if "g_ipc_at_issue" in by_table:
        params.append(by_table["g_ipc_at_issue"])
        joins += (f" LEFT JOIN (SELECT patent_id, arg_min(section || ipc_class || subclass, "
                  f"CAST(ipc_sequence AS INT)) AS tf FROM read_csv(?, {opts}) GROUP BY patent_id) "
                  f"ipc USING (patent_id)")
        tech.append("ipc.tf")
    if tech:
        cpc = f"coalesce({', '.join(tech)})"
    if "g_assignee_disambiguated" in by_table:
        params.append(by_table["g_assignee_disambiguated"])
        joins += (f" LEFT JOIN (SELECT patent_id, arg_min(disambig_assignee_organization, "
                  f"CAST(assignee_sequence AS INT)) AS ap FROM read_csv(?, {opts}) "
                  f"WHERE disambig_assignee_organization IS NOT NULL GROUP BY patent_id) a "
                  f"USING (patent_id)")
        asg = "a.ap"
    sql = f"""
    WITH p AS (SELECT patent_id, patent_type, year(CAST(patent_date AS DATE)) AS year
               FROM read_csv(?, {opts}) WHERE coalesce(withdrawn, '0') <> '1'),
    i AS (SELECT patent_id, CAST(inventor_sequence AS INT) AS seq, location_id
          FROM read_csv(?, {opts})),
    l AS (SELECT location_id, CAST(latitude AS DOUBLE) AS lat, CAST(longitude AS DOUBLE) AS lon,
                 disambig_country AS country, disambig_city AS city
          FROM read_csv(?, {opts})),
    ip AS (SELECT i.*, p.year, p.patent_type,
                  row_number() OVER (PARTITION BY i.patent_id ORDER BY i.seq) - 1 AS rank0
           FROM i JOIN p USING (patent_id))
    SELECT ip.patent_id AS doc_id, ip.year, ip.patent_type AS doc_type,
           CAST(ip.rank0 AS INT) AS contributor_seq,
           l.lat, l.lon, l.country, l.city, {cpc} AS tech_field, {asg} AS applicant
    FROM ip JOIN l USING (location_id) {joins}
    WHERE l.lat IS NOT NULL"""
    return sql, params


if __name__ == "__main__":  # pragma: no cover - manual use
    import argparse
    import time

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pregrant", action="store_true")
    ap.add_argument("--compress", default="zip", choices=("zip", "gz", "none"))
    a = ap.parse_args()
    t0 = time.perf_counter()
    files = generate(a.out_dir, n_rows=a.rows, seed=a.seed, pregrant=a.pregrant,
                     compress=a.compress)
    print(f"{len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB, "
          f"{time.perf_counter() - t0:.1f} s")
