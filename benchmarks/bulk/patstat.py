"""SYNTHETIC PATSTAT Global CSV exports in the published layout, at any size (streamed).

Layout (``shared/spec/formats.md`` §3): per-table zips ``tlsNNN_partNN.zip``, each holding
``tlsNNN_partNN.csv`` ([N] EPO "How to load PATSTAT data", v1.14; the file list of
[N2] ``SHA512_for_PATSTAT_Global_unzipped_files.txt``, 2020 Autumn, where ``tls201`` and
``tls206`` come in several parts); one header row of bare column names, in the order of
the EPO create scripts [O] (2020 Autumn: tls201 27 columns, tls206 16, tls207 4, tls209 7,
tls226 22); UTF-8, CR/LF, comma, **strings in double quotes** (never a quote inside),
numbers and dates bare, line breaks inside a value written `` \\n ``; no NULLs, defaults
instead (``''``, ``0``, ``9999-12-31``, ``9999``; ``nuts_level`` 9). Whether ``''`` is
written ``""`` or left empty is not confirmed (✘): ``empty_as`` picks, ``""`` by default.

The world is the engine's synthetic one (:mod:`stclusters.synthetic`: patent activity
drawn around GeoNames places of ≥ 15,000 inhabitants, team sizes 1–8): every inventor
lives at a place, with a free-text address in the postal style of its country (street,
postal code of the country's shape, the place's name). Nothing here is real: no real
person, application or address (GeoNames names: geonames.org, CC BY 4.0).

Edge cases at fixed positions (so even the small fixture has each): the dummy
``appln_id`` 0 and an artificial application (> 900,000,000), national applications
(``appln_kind = 'A'``) with inventors, a PCT application not published (year 9999),
applicant-only links (``invt_seq_nr = 0``), an inventor who is also the applicant, inventors
without any address (unlocated), Korean, Australian and Taiwanese inventors with an empty
``person_address`` whose city and postal code are in ``tls226_person_orig`` (formats.md §3.3:
empty for KR, AU, TW), a country left empty but written at the end of the address, and
inventors shared by several applications.

:func:`peer_sql` is the DuckDB query a user would write instead (``read_csv`` over the
unzipped members: DuckDB does not read ``.zip``; :func:`unzip` extracts them first).
"""

from __future__ import annotations

import bisect
import random
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from stclusters import synthetic

#: Column order of each table (formats.md §3.2–3.6, EPO create scripts [O], 2020 Autumn).
LAYOUT: dict[str, tuple[str, ...]] = {
    "tls201": ("appln_id", "appln_auth", "appln_nr", "appln_kind", "appln_filing_date",
               "appln_filing_year", "appln_nr_epodoc", "appln_nr_original", "ipr_type",
               "receiving_office", "internat_appln_id", "int_phase", "reg_phase", "nat_phase",
               "earliest_filing_date", "earliest_filing_year", "earliest_filing_id",
               "earliest_publn_date", "earliest_publn_year", "earliest_pat_publn_id",
               "granted", "docdb_family_id", "inpadoc_family_id", "docdb_family_size",
               "nb_citing_docdb_fam", "nb_applicants", "nb_inventors"),
    "tls206": ("person_id", "person_name", "person_name_orig_lg", "person_address",
               "person_ctry_code", "nuts", "nuts_level", "doc_std_name_id", "doc_std_name",
               "psn_id", "psn_name", "psn_level", "psn_sector", "han_id", "han_name",
               "han_harmonized"),
    "tls207": ("person_id", "appln_id", "applt_seq_nr", "invt_seq_nr"),
    "tls209": ("appln_id", "ipc_class_symbol", "ipc_class_level", "ipc_version", "ipc_value",
               "ipc_position", "ipc_gener_auth"),
    "tls226": ("person_orig_id", "person_id", "source", "source_version", "name_freeform",
               "person_name_orig_lg", "last_name", "first_name", "middle_name",
               "address_freeform", "address_1", "address_2", "address_3", "address_4",
               "address_5", "street", "city", "zip_code", "state", "person_ctry_code",
               "residence_ctry_code", "role"),
}

#: Numeric and date columns: written bare (formats.md §3.1). Everything else is a string.
_BARE = frozenset({
    "appln_id", "appln_filing_date", "appln_filing_year", "internat_appln_id",
    "earliest_filing_date", "earliest_filing_year", "earliest_filing_id",
    "earliest_publn_date", "earliest_publn_year", "earliest_pat_publn_id", "docdb_family_id",
    "inpadoc_family_id", "docdb_family_size", "nb_citing_docdb_fam", "nb_applicants",
    "nb_inventors", "person_id", "nuts_level", "doc_std_name_id", "psn_id", "psn_level",
    "han_id", "han_harmonized", "applt_seq_nr", "invt_seq_nr", "ipc_version",
    "person_orig_id"})

#: Countries whose ``person_address`` is empty (formats.md §3.3 [V]): tls226 has the city.
EMPTY_ADDRESS_COUNTRIES = frozenset({"KR", "AU", "TW"})
#: Share of inventors elsewhere with no address at all (unlocated), and of those whose
#: country is left empty but written at the end of the address (every 50th / 25th person).
_NO_ADDRESS_SHARE = 0.02
_COUNTRY_IN_TEXT_SHARE = 0.04
#: Share of addresses printed without their town (a street and a postal code only): a
#: postal code alone places nothing offline, so these stay at country precision.
_NO_TOWN_SHARE = 0.03
#: The first applications are led from these countries, so that even a small fixture has
#: each address style (and the KR/AU/TW tls226 fallback).
_FORCED_LEAD = ("KR", "AU", "TW", "JP", "CN", "GB", "NL", "SE", "CA", "CH", "FR", "IN", "DE",
                "US")
#: Share of PCT applications among the applications drawn (the others: national ``A``).
_PCT_SHARE = 0.7
#: Share of inventors that are a person seen before at the same place (prolific inventors).
_REPEAT_SHARE = 0.2

_STREETS = ("Linden", "Park", "Station", "Garden", "River", "Oak", "Hill", "Lake", "Mill",
            "Market", "Church", "Forest", "Maple", "Cedar", "Bridge", "Castle")
_FIRST = ("Wei", "Maria", "John", "Yuki", "Anna", "Rahul", "Li", "Sophie", "Jin", "Carlos")
_LAST = ("Zhang", "Muller", "Smith", "Sato", "Kim", "Rossi", "Garcia", "Larsen", "Patel")
_SUBCLASSES = ("H01L", "G06F", "H04L", "A61K", "H04W", "G06N", "A61B", "B60L", "C07D",
               "G01N", "H01M", "G06Q", "C12N", "F02D", "B29C", "H04N")
# GeoNames' numeric first-level codes → the postal abbreviations printed in addresses.
_CA_PROV = {"01": "AB", "02": "BC", "03": "MB", "04": "NB", "05": "NL", "07": "NS",
            "08": "ON", "09": "PE", "10": "QC", "11": "SK", "12": "YT", "13": "NT", "14": "NU"}
_AU_STATE = {"01": "ACT", "02": "NSW", "03": "NT", "04": "QLD", "05": "SA", "06": "TAS",
             "07": "VIC", "08": "WA"}
_COUNTRY_NAMES = {"DE": "Germany", "FR": "France", "US": "USA", "JP": "Japan",
                  "CN": "China", "GB": "United Kingdom", "CH": "Switzerland"}


# CSV quoting of PATSTAT strings (a double quote around the value, never one inside).
_CSV_QUOTE = '"'
_NO_CSV_QUOTE = str.maketrans("", "", _CSV_QUOTE)

#: Date written on every zip member (the 2020 Autumn files' "last write" day, [N2]).
_MEMBER_DATE = (2020, 10, 20, 9, 45, 42)


class _Out:
    """One part file: a zip holding one CSV member, written as a stream (CR/LF)."""

    def __init__(self, out_dir: Path, table: str, part: int, *, empty_as: str) -> None:
        self.name = f"{table}_part{part:02d}"
        self.path = out_dir / f"{self.name}.zip"
        self._zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED)
        # A fixed member date, so that the same seed gives the same bytes.
        member = zipfile.ZipInfo(f"{self.name}.csv", date_time=_MEMBER_DATE)
        member.compress_type = zipfile.ZIP_DEFLATED
        self._f = self._zip.open(member, "w", force_zip64=True)
        columns = LAYOUT[table]
        # Per column: is it bare, and what an absent value is written as (its default).
        self._spec = [(c, c in _BARE, str(_default(c)) if c in _BARE else empty_as)
                      for c in columns]
        self._buf: list[str] = []
        self._f.write((",".join(columns) + "\r\n").encode("utf-8"))

    def row(self, values: dict[str, object]) -> None:
        get = values.get
        cells = []
        for c, bare, default in self._spec:
            v = get(c)
            if v is None or v == "":
                cells.append(default)
            else:
                cells.append(str(v) if bare else _CSV_QUOTE + str(v) + _CSV_QUOTE)
        self._buf.append(",".join(cells))
        if len(self._buf) >= 20_000:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self._f.write(("\r\n".join(self._buf) + "\r\n").encode("utf-8"))
            self._buf.clear()

    def close(self) -> Path:
        self.flush()
        self._f.close()
        self._zip.close()
        return self.path


def _default(column: str) -> object:
    """PATSTAT's default of a bare column: 9999-12-31 for dates, 9999 years, 9 NUTS level,
    0 otherwise (formats.md §3.1)."""
    if column.endswith("_date"):
        return "9999-12-31"
    if column.endswith("_year"):
        return 9999
    return 9 if column == "nuts_level" else 0


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randrange(10 ** n)).zfill(n)


def _postcode(cc: str, rng: random.Random) -> str | None:
    """A postal code of the country's shape (random digits: no real code is meant)."""
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    if cc in ("US", "DE", "FR", "IT", "ES", "FI", "KR", "MX", "TR", "TW"):
        return str(rng.randrange(1, 10)) + _digits(rng, 4)
    if cc == "JP":
        return f"{rng.randrange(100, 1000)}-{_digits(rng, 4)}"
    if cc in ("CN", "RU", "SG"):
        return str(rng.randrange(1, 10)) + _digits(rng, 5)
    if cc == "IN":
        return f"{rng.randrange(100, 1000)} {_digits(rng, 3)}"
    if cc in ("CH", "AT", "DK", "BE", "NO", "AU", "NZ", "HU"):
        return str(rng.randrange(1000, 10000))
    if cc == "NL":
        number = rng.randrange(1000, 10000)  # drawn first: the same bytes for a seed
        return f"{number} {letters[rng.randrange(0, 20)]}{letters[rng.randrange(0, 20)]}"
    if cc in ("SE", "CZ", "GR"):
        return f"{rng.randrange(100, 1000)} {_digits(rng, 2)}"
    if cc == "GB":
        return (f"{letters[rng.randrange(0, 20)]}{letters[rng.randrange(0, 20)]}"
                f"{rng.randrange(1, 10)} {rng.randrange(1, 10)}{letters[rng.randrange(0, 20)]}"
                f"{letters[rng.randrange(0, 20)]}")
    if cc == "CA":
        return (f"K{rng.randrange(0, 10)}{letters[rng.randrange(0, 20)]} "
                f"{rng.randrange(0, 10)}{letters[rng.randrange(0, 20)]}{rng.randrange(0, 10)}")
    if cc == "IL":
        return _digits(rng, 7)
    return None


def _address(cc: str, city: str, admin1: str, rng: random.Random) -> tuple[str, str | None]:
    """(address line in the country's postal style, its postal code)."""
    street, n = _STREETS[rng.randrange(0, len(_STREETS))], int(rng.randrange(1, 200))
    code = _postcode(cc, rng)
    if cc == "US":
        return f"{n} {street} St \\n {city}, {admin1} {code}", code
    if cc == "CA":
        return f"{n} {street} Ave, {city}, {_CA_PROV.get(admin1, 'ON')} {code}", code
    if cc == "AU":
        return f"{n} {street} Rd, {city} {_AU_STATE.get(admin1, 'NSW')} {code}", code
    if cc == "JP":
        return f"{n}-{rng.randrange(1, 9)}-{rng.randrange(1, 30)}, Chuo-ku, {city} {code}", code
    if cc in ("CN", "KR", "TW", "IN", "SG", "RU"):
        return f"No. {n} {street} Road, {city} {code}", code
    if cc in ("GB", "IE"):
        return f"{n} {street} Road, {city} {code}" if code else f"{n} {street} Road, {city}", code
    if code is None:
        return f"{street} Street {n}, {city}", None
    if cc == "DE":
        return f"{street}str. {n} \\n D-{code} {city}", code
    if cc == "SE":
        return f"{street}vägen {n}, SE-{code} {city}", code
    # postal code before the town (most of Europe)
    return f"{street} {n}, {code} {city}", code


def _apps(n_rows: int, seed: int) -> Iterator[dict]:
    """Applications, each with its inventors (place, person ids) and applicant."""
    pl = synthetic.load_places()
    # the engine's activity model, not a copy
    w = synthetic._activity(pl, "patent", np.random.default_rng(seed))
    cdf = np.cumsum(w).tolist()
    # Per-row draws from Python's generator: a numpy call per scalar costs ~10x more.
    rng = random.Random(seed)
    team_cdf = np.cumsum(synthetic._TEAM_P["patent"] / synthetic._TEAM_P["patent"].sum()).tolist()

    def place() -> int:
        return min(bisect.bisect_right(cdf, rng.random() * cdf[-1]), len(cdf) - 1)
    last_person: dict[int, int] = {}
    next_person = 1000
    rows, k = 0, 0
    while rows < n_rows:
        k += 1
        appln_id = 100_000 + 7 * k  # gaps, as real ids have
        size = min(bisect.bisect_right(team_cdf, rng.random()), len(team_cdf) - 1) + 1
        lead = place()
        if k <= len(_FORCED_LEAD):
            mask = pl.country == _FORCED_LEAD[k - 1]
            sub = np.cumsum(w[mask])
            lead = int(np.flatnonzero(mask)[min(int(np.searchsorted(sub, rng.random() * sub[-1])),
                                                len(sub) - 1)])
        inventors = []
        for s in range(size):
            at = lead if s == 0 or rng.random() > 0.12 else place()
            if (at in last_person and rng.random() < _REPEAT_SHARE
                    and all(last_person[at] != p for p, _, _ in inventors)):
                pid, new = last_person[at], False
            else:
                next_person += 1
                pid, new = next_person, True
                last_person[at] = pid
            inventors.append((pid, at, new))
        next_person += 1
        yield {"k": k, "appln_id": appln_id, "pct": rng.random() < _PCT_SHARE,
               "year": int(rng.randrange(2019, 2024)), "inventors": inventors,
               "applicant": next_person, "inventor_applicant": rng.random() < 0.15,
               "rng": rng, "places": pl}
        rows += size + 1


def generate(out_dir: Path, *, n_rows: int, seed: int = 0, empty_as: str = '""',
             parts: int = 2) -> list[Path]:
    """Write a SYNTHETIC PATSTAT bundle of about ``n_rows`` ``tls207`` rows.

    Parameters
    ----------
    out_dir : Path
        Created if missing.
    n_rows : int
        ``tls207_pers_appln`` rows to write (about; whole applications).
    seed : int
        Same seed, same bytes.
    empty_as : {'""', ''}
        How an empty string is written (formats.md §3.1: not confirmed, so both exist).
    parts : int
        ``tls201`` and ``tls206`` are split into this many parts (as the real ones are).

    Returns
    -------
    list of Path
        The zip files written, in name order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outs = {t: _Out(out_dir, t, 1, empty_as=empty_as) for t in LAYOUT}
    extra = {t: [_Out(out_dir, t, p, empty_as=empty_as) for p in range(2, parts + 1)]
             for t in ("tls201", "tls206")}
    _fixed_rows(outs)
    orig_id = 0
    for app in _apps(n_rows, seed):
        k, rng, pl = app["k"], app["rng"], app["places"]
        part201 = ([outs["tls201"], *extra["tls201"]])[k % parts] if parts > 1 else outs["tls201"]
        year = app["year"] if k % 97 != 5 else None  # a PCT application not yet published
        kind = "W" if app["pct"] or k in (1, 2, 3) else "A"
        part201.row({
            "appln_id": app["appln_id"],
            "appln_auth": "WO" if kind == "W" else pl.country[app["inventors"][0][1]],
            "appln_nr": f"{app['year']}{pl.country[app['inventors'][0][1]]}{k:06d}",
            "appln_kind": kind, "appln_filing_date": f"{app['year'] - 1}-06-{1 + k % 28:02d}",
            "appln_filing_year": app["year"] - 1, "appln_nr_epodoc": f"WO{app['year']}XX{k:06d}",
            "appln_nr_original": f"PCT/XX{app['year']}/{k:06d}", "ipr_type": "PI",
            "receiving_office": pl.country[app["inventors"][0][1]] if kind == "W" else None,
            "int_phase": "Y" if kind == "W" else "N", "reg_phase": "N", "nat_phase": "N",
            "earliest_filing_year": app["year"] - 1,
            "earliest_publn_date": None if year is None else f"{year}-01-{1 + k % 28:02d}",
            "earliest_publn_year": year, "docdb_family_id": 5_000_000 + k,
            "inpadoc_family_id": 5_000_000 + k, "docdb_family_size": 1 + k % 5,
            "nb_applicants": 1, "nb_inventors": len(app["inventors"]), "granted": "N"})
        for j in range(1 + k % 3):  # IPC rows: the first inventive symbol is the field
            sub = _SUBCLASSES[(k + j) % len(_SUBCLASSES)]
            group = f"{1 + (k * 7 + j) % 99:>4d}/{(k + j) % 100:02d}"
            outs["tls209"].row({"appln_id": app["appln_id"], "ipc_class_symbol": f"{sub}{group}",
                                "ipc_class_level": "A", "ipc_version": "2006-01-01",
                                "ipc_value": "I" if j == 0 or k % 4 == 0 else "N",
                                "ipc_position": "F" if j == 0 else "L",
                                "ipc_gener_auth": "EP"})
        both = app["inventor_applicant"]
        for seq, (pid, place, new) in enumerate(app["inventors"], start=1):
            outs["tls207"].row({"person_id": pid, "appln_id": app["appln_id"],
                                "applt_seq_nr": 1 if both and seq == 1 else 0,
                                "invt_seq_nr": seq})
            if new:
                orig_id += 1
                _person(outs, extra, pid, place, pl, rng, orig_id, parts)
        if not both:
            outs["tls207"].row({"person_id": app["applicant"], "appln_id": app["appln_id"],
                                "applt_seq_nr": 1, "invt_seq_nr": 0})
            cc = pl.country[app["inventors"][0][1]]
            part = ([outs["tls206"], *extra["tls206"]])[app["applicant"] % parts]
            part.row({"person_id": app["applicant"], "person_name": f"SYNTHETIC CORP {k}",
                      "person_address": "", "person_ctry_code": cc, "nuts_level": 9,
                      "psn_sector": "COMPANY"})
    paths = [o.close() for o in outs.values()] + [o.close() for os_ in extra.values() for o in os_]
    return sorted(paths)


def _person(outs: dict[str, _Out], extra: dict[str, list[_Out]], pid: int, place: int, pl,
            rng: random.Random, orig_id: int, parts: int) -> None:
    """One inventor: a tls206 row, and a tls226 row where tls206 has no address."""
    cc, city, admin1 = str(pl.country[place]), str(pl.name[place]), str(pl.admin1[place])
    city = city.translate(_NO_CSV_QUOTE)  # PATSTAT strings never hold a quote
    address, code = _address(cc, city, admin1, rng)
    ctry = cc
    if cc in EMPTY_ADDRESS_COUNTRIES:
        orig = {"person_orig_id": orig_id, "person_id": pid, "source": "DOCDB",
                "name_freeform": f"{_LAST[pid % 9]}, {_FIRST[pid % 10]}",
                "city": city, "zip_code": code or "", "person_ctry_code": cc,
                "residence_ctry_code": cc, "role": "I"}
        if rng.random() < 0.15:
            orig["city"] = orig["zip_code"] = ""  # nothing to locate it by
        outs["tls226"].row(orig)
        address = ""
    elif pid % round(1 / _NO_ADDRESS_SHARE) == 3:
        address = ""
    elif cc in _COUNTRY_NAMES and pid % round(1 / _COUNTRY_IN_TEXT_SHARE) == 7:
        address, ctry = f"{address}, {_COUNTRY_NAMES[cc]}", ""
    elif pid % round(1 / _NO_TOWN_SHARE) == 11:
        address = address.replace(city, "").rstrip(" ,")  # as printed: no town to place it

    part = ([outs["tls206"], *extra["tls206"]])[pid % parts] if parts > 1 else outs["tls206"]
    part.row({"person_id": pid, "person_name": f"{_LAST[pid % 9]}, {_FIRST[pid % 10]}",
              "person_address": address, "person_ctry_code": ctry, "nuts_level": 9,
              "psn_sector": "INDIVIDUAL"})


def _fixed_rows(outs: dict[str, _Out]) -> None:
    """The dummy application 0 and an artificial one (> 900,000,000), as in PATSTAT."""
    outs["tls201"].row({"appln_id": 0, "appln_kind": "", "ipr_type": ""})
    outs["tls201"].row({"appln_id": 900_000_123, "appln_auth": "XX", "appln_kind": "D2",
                        "ipr_type": "PI", "earliest_publn_year": 2020})


def unzip(paths: Sequence[Path], out_dir: Path) -> list[Path]:
    """Extract each zip's CSV member into ``out_dir`` (DuckDB's ``read_csv`` reads no zip)."""
    out = []
    for p in paths:
        with zipfile.ZipFile(p) as z:
            name = z.namelist()[0]
            z.extract(name, out_dir)
            out.append(Path(out_dir) / name)
    return out


def peer_sql(paths: Sequence[Path]) -> tuple[str, list]:
    """The query a user would write instead: PCT applications' inventor rows with their
    country and address, straight from the unzipped CSVs (no validation, no quarantine,
    no geocoding: the address text is what a user gets before geocoding it).

    Parameters
    ----------
    paths : sequence of Path
        The bundle's files; a ``.zip`` stands for its member unzipped beside it
        (``tls201_part01.zip`` → ``tls201_part01.csv``; see :func:`unzip`).

    Returns
    -------
    (sql, params)
        Run with ``con.execute(sql, params)``.
    """
    def csvs(table: str) -> list[str]:
        return sorted(str(p.with_suffix(".csv") if p.suffix == ".zip" else p)
                      for p in map(Path, paths) if p.name.startswith(table))

    sql = """
        SELECT a.appln_id, a.earliest_publn_year AS year, l.invt_seq_nr,
               p.person_ctry_code AS country,
               replace(p.person_address, ' \\n ', ', ') AS address_raw
        FROM read_csv(?, header = true, all_varchar = true) a
        JOIN read_csv(?, header = true, all_varchar = true) l ON l.appln_id = a.appln_id
        LEFT JOIN read_csv(?, header = true, all_varchar = true) p ON p.person_id = l.person_id
        WHERE a.appln_kind = 'W' AND CAST(a.appln_id AS BIGINT) BETWEEN 1 AND 900000000
          AND a.earliest_publn_year <> '9999' AND CAST(l.invt_seq_nr AS INTEGER) > 0"""
    return sql, [csvs("tls201"), csvs("tls207"), csvs("tls206")]
