"""Claims checked against data: sentences such as "PRD-9 R&D expenditure 2021 > 3600 亿元" or
"the cluster containing Shenzhen ranks ≤ 2 in editions 2020 and 2021", each with its source,
judged ``held``, ``not held`` or ``not enough data`` with the evidence (the figures compared,
their flags, bounds and sources) and, where the data cannot decide, why.

The vocabulary, the verdict rules and the output columns are in ``docs/claims.md``.

Examples
--------
>>> from stclusters.regions.claims import check_claims, load_claims     # doctest: +SKIP
>>> res = check_claims(load_claims("gba"))                               # doctest: +SKIP
>>> res.table.to_pandas()[["id", "verdict", "why"]]                      # doctest: +SKIP
>>> res.write("claims-out/")                                             # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import ParameterError
from stclusters.regions import _claims_rank as rank_data
from stclusters.regions._claims_logic import (NOT_HELD, OPS, UNDECIDED, VERDICTS,
                                              Interval, combine_all, combine_sources, decide,
                                              rounding_half_unit, written_half_unit)
from stclusters.regions._format import is_province, number, unit_base
from stclusters.regions.definitions import _DATA
from stclusters.regions.indicators import _YEARS as _INDICATOR_YEARS
from stclusters.regions.indicators import CREDITS_TEXT

__all__ = ["BASES", "CLAIM_COLUMNS", "Claim", "ClaimCheck", "ClaimResults", "DECIDING_FLAGS",
           "VERDICTS", "check_claims", "load_claims", "parse_claims", "SHIPPED_CLAIMS"]

#: Shipped claim files by name (``stclusters check gba``).
SHIPPED_CLAIMS: dict[str, Path] = {"gba": _DATA / "gba_claims.yaml"}
#: Bodies of data a claim may be decided by.
BASES: tuple[str, ...] = ("indicators", "run", "editions", "published")
_RANK_BASES = ("run", "editions", "published")
#: Indicator flags that can decide a claim (:data:`stclusters.regions.indicators.FLAGS`). An
#: ``estimate`` (an official "expected" figure) is no outcome and decides nothing; an
#: unknown flag decides nothing either.
DECIDING_FLAGS: tuple[str, ...] = ("official final", "revised", "provisional",
                                   "secondary-source", "computed")
_COMMON_KEYS = {"id", "text", "source", "basis", "note"}
_INDICATOR_KEYS = {"indicator", "region", "year", "op", "value", "unit"}
_RANK_KEYS = {"cluster_containing", "country", "rank", "editions", "metrics",
              "published_name"}
_OP_TEXT = {"<": "<", "<=": "≤", "=": "=", ">=": "≥", ">": ">"}
_TOP_KEYS = {"claims", "title", "note"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The years a claim may name: those of the indicator files (1900–2100).
YEARS: tuple[int, int] = _INDICATOR_YEARS
#: Output files of ``ClaimResults.write``.
OUTPUT_FILES = ("claims.csv", "claims.parquet", "claims.json")
#: The credits shown with the verdicts (the same as every regions command's).
CREDITS = CREDITS_TEXT


@dataclass(frozen=True)
class Claim:
    """One checkable sentence.

    ``kind`` is ``indicator`` (``indicator``, ``region``, ``year``, ``op``, ``value``,
    ``unit``) or ``rank`` (``place``, ``country``, ``op``, ``value`` of the rank,
    ``editions``, ``metrics``). ``basis`` is the data allowed to decide it (``None``: every
    body of data given that applies).
    """

    id: str
    text: str
    kind: str
    op: str
    value: float
    source: dict[str, str] = field(default_factory=dict)
    basis: tuple[str, ...] | None = None
    indicator: str | None = None
    region: str | None = None
    year: int | None = None
    unit: str | None = None
    place: str | None = None
    country: str | None = None
    editions: tuple[str, ...] = ()
    metrics: tuple[str, ...] | None = None
    published_name: str | None = None

    def statement(self) -> str:
        """The checkable form, e.g. ``PRD-9 rd_expenditure 2021 > 3,600 CNY 100 million``."""
        op = _OP_TEXT[self.op]
        if self.kind == "indicator":
            unit = f" {self.unit}" if self.unit else ""
            return (f"{self.region} {self.indicator} {self.year} {op} "
                    f"{Interval.of(self.value).text()}{unit}")
        eds = f" in edition{'s' if len(self.editions) > 1 else ''} {', '.join(self.editions)}" \
            if self.editions else ""
        with_m = f" with metrics {', '.join(self.metrics)}" if self.metrics else ""
        printed = f" (published as {self.published_name})" if self.published_name else ""
        return (f"the cluster containing {self.place}{printed} ranks "
                f"{op + ' ' if op != '=' else ''}{Interval.of(self.value).text()}{eds}{with_m}")


# ------------------------------------------------------------------ reading a claim file

def load_claims(claims: str | Path) -> list[Claim]:
    """Claims from a YAML file, or a shipped set by name (``"gba"``).

    Raises
    ------
    ParameterError
        Unreadable file, or a file with problems: every problem in one message, each naming
        the claim id (or position) and the field.
    """
    import yaml  # noqa: PLC0415

    key = str(claims).casefold()
    path = SHIPPED_CLAIMS.get(key, Path(claims))
    if not path.is_file():
        raise ParameterError(f"{claims}: no such claim file",
                             hint="give a YAML claim file or a shipped set: "
                                  + ", ".join(SHIPPED_CLAIMS))
    try:
        with open(path, encoding="utf-8") as fh:
            # libyaml's safe loader when installed (20,000 claims: 5 s, not 30 s)
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ParameterError(f"{path}: cannot read the claim file: "
                             f"{str(exc).splitlines()[0]}",
                             hint="a claim file is UTF-8 YAML (docs/claims.md)") from exc
    return parse_claims(data, origin=path.name if key in SHIPPED_CLAIMS else str(path))


def parse_claims(data: Any, *, origin: str = "claims") -> list[Claim]:
    """Claims from parsed YAML: a list of claims, or a mapping with a ``claims`` list.

    Raises
    ------
    ParameterError
        Every problem of the file in one message.
    """
    items = data.get("claims") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ParameterError(f"{origin}: a claim file is a list of claims (or a mapping with "
                             "a 'claims' list)", hint="see docs/claims.md for the layout")
    problems: list[str] = []
    if isinstance(data, dict) and set(data) - _TOP_KEYS:
        problems.append(f"{', '.join(sorted(map(str, set(data) - _TOP_KEYS)))}: not a field "
                        f"of a claim file ({', '.join(sorted(_TOP_KEYS))})")
    claims = [c for i, item in enumerate(items) if (c := _parse_one(item, i, problems))]
    dup = sorted(i for i, n in Counter(c.id for c in claims).items() if n > 1)
    if dup:
        problems.append(f"id: given twice: {', '.join(dup)}")
    if problems:
        raise ParameterError(f"{origin}: {len(problems)} problem(s) in the claim file: "
                             + "; ".join(problems), hint="see docs/claims.md for the layout")
    return claims


def _parse_one(item: Any, i: int, problems: list[str]) -> Claim | None:
    if not isinstance(item, dict):
        problems.append(f"claim #{i + 1}: a claim is a mapping (id, text, source, …)")
        return None
    cid = item.get("id")
    name = f"claim {cid}" if isinstance(cid, str) and cid else f"claim #{i + 1}"
    found: list[str] = []
    if not isinstance(cid, str) or not _ID.match(cid):
        found.append("id: a short name (letters, digits, . _ -)")
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        found.append("text: the sentence as stated")
    source = _source(item.get("source"), found)
    is_rank = "cluster_containing" in item
    kind_keys = _RANK_KEYS if is_rank else _INDICATOR_KEYS
    unknown = sorted(set(item) - _COMMON_KEYS - kind_keys)
    if unknown:
        found.append(f"{', '.join(map(str, unknown))}: not a field of a "
                     f"{'rank' if is_rank else 'indicator'} claim")
    basis = _basis(item.get("basis"), is_rank, found)
    fields = _rank_fields(item, found) if is_rank else _indicator_fields(item, found)
    problems.extend(f"{name}: {p}" for p in found)
    if found:
        return None
    return Claim(id=cid, text=text.strip(), kind="rank" if is_rank else "indicator",
                 source=source, basis=basis, **fields)


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def _source(value: Any, found: list[str]) -> dict[str, str]:
    keys = ("publisher", "title", "url", "date")
    if not isinstance(value, dict) or not isinstance(value.get("publisher"), str):
        found.append("source: a mapping with publisher (and title, url, date)")
        return {}
    extra = sorted(set(value) - set(keys))
    if extra:
        found.append(f"source.{extra[0]}: not a source field ({', '.join(keys)})")
    return {k: _text(value[k]) for k in keys if value.get(k) is not None}


def _basis(value: Any, is_rank: bool, found: list[str]) -> tuple[str, ...] | None:
    if value is None or value == "all":
        return None
    listed = [value] if isinstance(value, str) else value
    allowed = _RANK_BASES if is_rank else ("indicators",)
    if not isinstance(listed, list) or not listed or any(b not in allowed for b in listed):
        found.append(f"basis: one or more of {', '.join(allowed)} (or all), got {value!r:.60}")
        return None
    return tuple(dict.fromkeys(listed))


def _number(value: Any, where: str, found: list[str]) -> float | None:
    """A finite number (``.inf`` and ``.nan`` are no figure a claim can state)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        found.append(f"{where}: a finite number, got {value!r:.40}")
        return None
    return float(value)


def _op(value: Any, where: str, found: list[str]) -> str | None:
    if value not in OPS:
        found.append(f"{where}: one of {' '.join(OPS)}, got {value!r:.20}")
        return None
    return value


def _indicator_fields(item: dict[str, Any], found: list[str]) -> dict[str, Any]:
    for key in ("indicator", "region"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            found.append(f"{key}: required (text)")
    year = item.get("year")
    if isinstance(year, bool) or not isinstance(year, int):
        found.append(f"year: an integer year, got {year!r:.20}")
    elif not YEARS[0] <= year <= YEARS[1]:
        found.append(f"year: {year} outside {YEARS[0]}–{YEARS[1]} (as in indicator files)")
    unit = item.get("unit")
    if unit is not None and not isinstance(unit, str):
        found.append("unit: text, as the indicator table writes it")
    return {"indicator": str(item.get("indicator", "")).strip(),
            "region": str(item.get("region", "")).strip(), "year": year,
            "op": _op(item.get("op"), "op", found),
            "value": _number(item.get("value"), "value", found), "unit": unit}


def _rank_fields(item: dict[str, Any], found: list[str]) -> dict[str, Any]:
    place = item.get("cluster_containing")
    if not isinstance(place, str) or not place.strip():
        found.append("cluster_containing: a place name")
    rank = item.get("rank")
    if isinstance(rank, dict):
        op, value = _op(rank.get("op"), "rank.op", found), _number(rank.get("value"),
                                                                   "rank.value", found)
    else:
        op, value = "=", _number(rank, "rank", found)
    if value is not None and (value < 1 or not float(value).is_integer()):
        found.append(f"rank: a positive whole rank, got {value:g}")
    editions = item.get("editions")
    editions = [editions] if isinstance(editions, (int, str)) else (editions or [])
    if not isinstance(editions, list) or not all(isinstance(e, (int, str)) and
                                                 not isinstance(e, bool) for e in editions):
        found.append("editions: a list of editions (years or names)")
        editions = []
    metrics = item.get("metrics")
    if metrics is not None and (not isinstance(metrics, list) or not metrics
                                or not all(isinstance(m, str) for m in metrics)):
        found.append("metrics: a list of metric names (patent, publication, vc_deal …)")
        metrics = None
    country = item.get("country")
    if country is not None and not isinstance(country, str):
        found.append("country: an ISO-2 code or a country name")
    printed = item.get("published_name")
    if printed is not None and (not isinstance(printed, str) or not printed.strip()):
        found.append("published_name: the cluster's name as the published table prints it")
        printed = None
    return {"place": str(place or "").strip(), "country": country, "op": op, "value": value,
            "editions": tuple(str(e) for e in editions),
            "metrics": tuple(sorted(set(metrics))) if metrics else None,
            "published_name": printed.strip() if printed else None}


# ------------------------------------------------------------------ results

@dataclass
class ClaimCheck:
    """One claim's verdict, the bodies of data that decided it, the evidence and why."""

    claim: Claim
    verdict: str
    decided_by: tuple[str, ...]
    evidence: str
    why: str
    items: list[dict[str, Any]]
    data_label: str | None = None


#: Columns of the claims table (``docs/claims.md``).
CLAIM_COLUMNS = ("id", "kind", "statement", "verdict", "decided_by", "evidence", "why",
                 "text", "claim_publisher", "claim_title", "claim_url", "claim_date",
                 "evidence_sources", "data_label")


@dataclass
class ClaimResults:
    """Every claim's check, in file order."""

    checks: list[ClaimCheck]
    inputs: dict[str, Any]

    @property
    def counts(self) -> dict[str, int]:
        """Claims per verdict (every verdict listed, zeros included)."""
        return {v: sum(c.verdict == v for c in self.checks) for v in VERDICTS}

    @property
    def table(self) -> pa.Table:
        rows = [_row(c) for c in self.checks]
        return pa.table({k: pa.array([r[k] for r in rows], pa.string()) for k in CLAIM_COLUMNS})

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts, "inputs": self.inputs, "credits": CREDITS,
                "rules": "docs/claims.md",
                "claims": [{**_row(c), "source": c.claim.source, "basis": c.claim.basis,
                            "items": c.items} for c in self.checks]}

    def write(self, out_dir: str | Path, *, force: bool = False) -> dict[str, Path]:
        """``claims.csv``/``.parquet`` (:data:`CLAIM_COLUMNS`) and ``claims.json`` (the same
        with each figure's details) in ``out_dir``; atomic, byte-identical for the same
        input. A folder holding other files is refused unless ``force``."""
        from stclusters.analysis._output import write_outputs  # noqa: PLC0415

        paths = write_outputs(out_dir, {"claims": self.table}, self.to_dict(),
                              stem_json="claims", label=self.inputs.get("data_label"),
                              force=force)
        return {p.name: p for p in paths}


def _row(c: ClaimCheck) -> dict[str, Any]:
    sources = dict.fromkeys(" — ".join(x for x in (i.get("publisher"), i.get("title"),
                                                   i.get("url")) if x)
                            for i in c.items if i.get("publisher"))
    src = c.claim.source
    return {"id": c.claim.id, "kind": c.claim.kind, "statement": c.claim.statement(),
            "verdict": c.verdict, "decided_by": ", ".join(c.decided_by) or None,
            "evidence": c.evidence or None, "why": c.why or None, "text": c.claim.text,
            "claim_publisher": src.get("publisher"), "claim_title": src.get("title"),
            "claim_url": src.get("url"), "claim_date": src.get("date"),
            "evidence_sources": " | ".join(s for s in sources if s) or None,
            "data_label": c.data_label}


# ------------------------------------------------------------------ checking

def check_claims(claims: list[Claim] | str | Path, *, indicators: Any = None,
                 run: str | Path | None = None, editions: str | Path | None = None,
                 published: str | Path | None | bool = True,
                 geocoder: Any = None, run_edition: str | int | None = None,
                 computed: bool = True) -> ClaimResults:
    """Judge every claim against the data given.

    Parameters
    ----------
    claims : list of Claim, or a claim file path, or a shipped set name (``"gba"``)
    indicators : pyarrow.Table or sequence of paths, optional, keyword-only
        The indicator table (:func:`stclusters.regions.indicators.read_indicators` columns);
        paths are user indicator files (CSV or Parquet) read with the shipped rows. Default:
        the shipped rows.
    run : path, optional, keyword-only
        A run folder (``stclusters rank --out``) for rank claims and, with ``computed``, the
        indicators counted from its records.
    editions : path, optional, keyword-only
        An editions folder (``stclusters editions --out``): one run folder per edition.
    published : path or bool, keyword-only
        A published ranks CSV (``edition, rank, cluster``); ``True``: the shipped GII table;
        ``False``/``None``: none.
    geocoder : stclusters.geocode.Geocoder, optional, keyword-only
        Places the rank claims' place (loaded when a run or editions are given).
    run_edition : str or int, optional, keyword-only
        The edition ``run`` is (when its manifest names none).
    computed : bool, keyword-only
        With ``run``: add the indicators computed from its records (flag ``computed``,
        :func:`stclusters.regions.indicators.computed_indicators`, every shipped region).

    Returns
    -------
    ClaimResults
        ``.table`` (:data:`CLAIM_COLUMNS`), ``.counts``, ``.write(out)``.
    """
    if not isinstance(claims, list):
        claims = load_claims(claims)
    # Every input folder and file is named by its resolved path, however it was typed, so
    # the evidence and the outputs are the same bytes for ../run and /abs/run.
    run, editions, indicators = _resolved(run), _resolved(editions), (
        indicators if isinstance(indicators, pa.Table) else
        [_resolved(p) for p in indicators or ()])
    table = _indicator_table(indicators)
    rows = table.to_pylist()  # a few hundred hand-curated figures: plain Python suffices
    pub_path = (rank_data.SHIPPED_PUBLISHED if published is True else
                _resolved(published) if published else None)
    pub = rank_data.read_published(pub_path) if pub_path else None
    eds = rank_data.editions_runs(editions) if editions is not None else None
    if geocoder is None and (run is not None or eds) and any(c.kind == "rank" for c in claims):
        from stclusters.geocode import Geocoder  # noqa: PLC0415

        geocoder = Geocoder.load()
    run_label = None
    if run is not None and computed and any(c.kind == "indicator" for c in claims):
        extra, run_label = _computed_rows(run, geocoder)
        rows += extra
    ctx = _Context(rows, run, eds, pub, pub_path.name if pub_path else None, geocoder,
                   str(run_edition).strip() if run_edition is not None else None)
    index = _RowIndex(rows)
    checks = [_check_indicator(c, index) if c.kind == "indicator" else _check_rank(c, ctx)
              for c in claims]
    inputs = {"indicators": "given table" if isinstance(indicators, pa.Table) else
              ["shipped", *map(str, indicators or ())],
              "run": str(run) if run is not None else None,
              "run_edition": ctx.run_edition,
              "editions": str(editions) if editions is not None else None,
              "published": str(pub_path) if isinstance(published, (str, Path)) else
              (pub_path.name if pub_path else None),
              "data_label": run_label or next((c.data_label for c in checks if c.data_label),
                                              None)}
    return ClaimResults(checks, inputs)


def _resolved(path: str | Path | None) -> Path | None:
    """``path`` resolved (absolute, ``..`` and links followed); None stays None."""
    return Path(path).resolve() if path is not None else None


def _indicator_table(indicators: Any) -> pa.Table:
    if isinstance(indicators, pa.Table):
        return indicators
    from stclusters.regions.indicators import read_indicators  # noqa: PLC0415

    return read_indicators(paths=tuple(indicators or ()), shipped=True)


def _computed_rows(run: str | Path, geocoder: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The indicators counted from ``run``'s records for every shipped region (members,
    the region, its groups), each row carrying the run's data label; and that label."""
    from stclusters._run_folder import open_run  # noqa: PLC0415
    from stclusters.regions._located import add_region_contributions  # noqa: PLC0415
    from stclusters.regions.definitions import load_region, shipped_regions  # noqa: PLC0415
    from stclusters.regions.indicators import computed_indicators  # noqa: PLC0415

    con, _manifest, label = open_run(run, need=("contributions", "points", "clusters"))
    try:
        regions = [load_region(k) for k in sorted(shipped_regions())]
        rows = []
        for region in (r for r in regions if not r.include):  # whole regions, not groups
            add_region_contributions(con, region, geocoder=geocoder)
            table = computed_indicators(con, region, placed=True,
                                        origin=f"computed from run {Path(run).name}")
            rows += [{**r, "data_label": label} for r in table.to_pylist()]
    finally:
        con.close()
    return rows, label


@dataclass
class _Context:
    rows: list[dict[str, Any]]
    run: str | Path | None
    editions: dict[str, Path] | None
    published: dict[str, list[tuple[int, str]]] | None
    published_name: str | None
    geocoder: Any
    run_edition: str | None = None


# ------------------------------------------------------------------ indicator claims

def _unit_factor(row_unit: Any, claim_unit: str | None) -> float | None:
    """What a row's value is multiplied by to be in the claim's unit: ``CNY billion`` to
    ``CNY 100 million`` is 10 (:func:`~stclusters.regions._format.unit_base`); 1.0 when the
    claim names no unit; None for another base unit (another currency, another count).
    Units compare without case, spacing or a parenthesised gloss."""
    if not claim_unit:
        return 1.0
    row_base, row_scale = unit_base(_unit_text(row_unit))
    claim_base, claim_scale = unit_base(_unit_text(claim_unit))
    if _norm_unit(row_base) != _norm_unit(claim_base):
        return None
    return row_scale / claim_scale


def _unit_text(unit: Any) -> str:
    """A unit as :func:`unit_base` reads it: spacing collapsed, a leading currency code in
    capitals and the rest in lower case (``cny 100 Million`` → ``CNY 100 million``)."""
    text = " ".join(str(unit or "").split())
    m = re.match(r"^([A-Za-z]{3})\b(.*)$", text)
    return m.group(1).upper() + m.group(2).lower() if m else text


def _norm_unit(unit: Any) -> str:
    """``% of GDP (R&D)`` and ``% of gdp`` compare equal: the parenthesis is a gloss, case
    and spacing are not meaning."""
    return " ".join(str(unit or "").split("(")[0].casefold().split())


def _norm_url(url: Any) -> str:
    text = str(url or "").strip().casefold()
    return re.sub(r"^https?://(www\.)?", "", text).rstrip("/")


def _figure(r: dict[str, Any], factor: float = 1.0) -> Interval:
    """The values a row allows, in the claim's unit (``factor``): its bound, and ± half its
    rounding unit when its note says it is rounded (:func:`rounding_half_unit`)."""
    value = float(r["value"])
    half = rounding_half_unit(r.get("note"), value)
    return Interval.of(value * factor, r.get("bound") or None).widened(half * factor)


def _figure_text(r: dict[str, Any]) -> str:
    """``> 3,600``, or ``23,000 (rounded: 22,500..23,500)`` for a rounded figure."""
    value = float(r["value"])
    text = number(value, bound=r.get("bound") or None)
    if rounding_half_unit(r.get("note"), value):
        text += f" (rounded: {_figure(r).text()})"
    return text


def _item(r: dict[str, Any], *, verdict: str, why: str = "") -> dict[str, Any]:
    return {"basis": "indicators", "region": r["region"], "year": r["year"],
            "indicator": r["indicator"], "value": float(r["value"]), "bound": r.get("bound"),
            "rounding_half_unit": rounding_half_unit(r.get("note"), float(r["value"])),
            "unit": r.get("unit"), "flag": r.get("flag"), "publisher": r.get("source_publisher"),
            "title": r.get("source_title"), "url": r.get("source_url"),
            "origin": r.get("origin"), "verdict": verdict, "why": why}


def _evidence_line(r: dict[str, Any], claim_unit: str | None) -> str:
    where = " — ".join(x for x in (r.get("source_publisher"), r.get("source_title"),
                                    r.get("source_url")) if x)
    factor = _unit_factor(r.get("unit"), claim_unit)
    converted = (f" (= {_figure(r, factor).text()} {claim_unit})"
                 if factor not in (None, 1.0) else "")
    label = f"{r['data_label']} " if r.get("data_label") else ""
    return (f"{label}{r['region']} {r['indicator']} {r['year']}: {_figure_text(r)} "
            f"{r.get('unit') or ''}{converted} [{r.get('flag') or 'no flag'}] ({where})")


def _same_statement(claim: Claim, r: dict[str, Any]) -> bool:
    """The row records the very statement the claim makes: the same address, or the same
    publisher on the same date, whoever reported it (a press conference seen in two papers)."""
    src = claim.source
    if src.get("url") and _norm_url(r.get("source_url")) == _norm_url(src["url"]):
        return True
    publisher, date = src.get("publisher", "").casefold().strip(), src.get("date", "")
    row_publisher = str(r.get("source_publisher") or "").casefold()
    return bool(publisher and date and row_publisher.startswith(publisher)
                and date in f"{r.get('source_publisher')} {r.get('source_title')}")


def _why_not(claim: Claim, r: dict[str, Any], unit: str | None) -> str | None:
    """Every reason this figure may not decide the claim read in ``unit`` (``None``: it
    may)."""
    reasons = []
    if _unit_factor(r.get("unit"), unit) is None:
        reasons.append(f"the figure is in {r.get('unit')}, the claim in {unit}: "
                       "another unit, no conversion is made")
    if _same_statement(claim, r):
        reasons.append("the figure is the claim's own statement (same source), which cannot "
                       "corroborate itself")
    flag = r.get("flag")
    if flag == "estimate":
        reasons.append("the figure is an estimate (an 'expected' figure), not an outcome")
    elif flag not in DECIDING_FLAGS:
        reasons.append(f"the figure's flag {flag!r} is not one that decides "
                       f"({', '.join(DECIDING_FLAGS)})")
    return "; ".join(reasons) or None


def _other_years(claim: Claim, same: list[dict[str, Any]]) -> str:
    """The claim's figure in other years, with flag and publisher (shown, never used)."""
    others = sorted((r for r in same if r["year"] != claim.year), key=lambda r: r["year"])
    return ", ".join(f"{r['year']}: {_figure_text(r)} [{r.get('flag')}, "
                     f"{r.get('source_publisher')}]" for r in others)


def _judge_row(claim: Claim, r: dict[str, Any], unit: str | None) -> str:
    """What the row gives taken as it stands (its unit converted to ``unit`` when it can
    be)."""
    factor = _unit_factor(r.get("unit"), unit) or 1.0
    return decide(_figure(r, factor), claim.op, claim.value,
                  half_unit=written_half_unit(claim.value))


def _implied_unit(this_year: list[dict[str, Any]]) -> str | None:
    """The unit a claim that gives none is read in: the figures' most common unit (ties:
    the first in sorted order), when all are one base unit (:func:`unit_base`: ``CNY
    billion`` and ``CNY 100 million`` are both CNY); None when their base units differ."""
    units = Counter(str(r.get("unit") or "") for r in this_year)
    bases = {_norm_unit(unit_base(_unit_text(u))[0]) for u in units}
    if len(bases) > 1:
        return None
    return min(units, key=lambda u: (-units[u], u))


def _units_differ(claim: Claim, this_year: list[dict[str, Any]]) -> ClaimCheck:
    """A claim without a unit, figures in several base units: nothing decides it."""
    units = sorted({str(r.get("unit") or "no unit") for r in this_year})
    why = (f"units differ: the claim gives no unit and the figures are in {'; '.join(units)} "
           "(give the claim's unit:)")
    return ClaimCheck(claim, UNDECIDED, (), " | ".join(_evidence_line(r, None)
                                                       for r in this_year), why,
                      [_item(r, verdict=UNDECIDED, why=why) for r in this_year])


class _RowIndex:
    """The indicator rows with a value, indexed once (a claim file may hold thousands of
    claims): by ``(region, indicator)``, and the regions that have each indicator."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_region: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.regions: dict[str, set[str]] = {}
        for r in rows:
            if r.get("value") is None:
                continue
            self.by_region.setdefault((r["region"], r["indicator"]), []).append(r)
            self.regions.setdefault(r["indicator"], set()).add(str(r["region"]))
        self.provinces = {ind: sorted(n for n in names if is_province(n))
                          for ind, names in self.regions.items()}

    def provinces_with(self, indicator: str, year: int) -> list[str]:
        """The provincial regions with a figure of ``indicator`` in ``year``."""
        return [n for n in self.provinces.get(indicator, ())
                if any(r["year"] == year for r in self.by_region[(n, indicator)])]


def _check_indicator(claim: Claim, index: _RowIndex) -> ClaimCheck:
    """The claim judged on the rows of exactly its region (case-sensitive, as ``region``
    and row replacement match names), indicator and year, in its unit (or, when it gives
    none, the figures' unit: :func:`_implied_unit`)."""
    same = index.by_region.get((claim.region, claim.indicator), [])
    this_year = sorted((r for r in same if r["year"] == claim.year),
                       key=lambda r: (str(r.get("origin")), str(r.get("source_url"))))
    if not this_year:
        return ClaimCheck(claim, UNDECIDED, (), "", _why_missing(claim, index, same), [])
    unit = claim.unit or _implied_unit(this_year)
    if unit is None:
        return _units_differ(claim, this_year)
    items, lines, whys = [], [], []
    for r in this_year:
        lines.append(_evidence_line(r, unit))
        would = _judge_row(claim, r, unit)
        reason = _why_not(claim, r, unit)
        if reason:
            whys.append(f"{reason} (taken as it stands it would give: {would})")
            items.append(_item(r, verdict=UNDECIDED, why=reason))
        elif would == UNDECIDED:
            factor = _unit_factor(r.get("unit"), unit)
            shown = (_figure_text(r) if factor == 1.0 else
                     f"{_figure(r, factor).text()} {unit}")
            why = (f"{shown} does not settle "
                   f"{_OP_TEXT[claim.op]} {Interval.of(claim.value).text()}")
            whys.append(why)
            items.append(_item(r, verdict=UNDECIDED, why=why))
        else:
            items.append(_item(r, verdict=would))
    verdict, disagree = combine_sources([i["verdict"] for i in items])
    if disagree:
        whys = ["the figures disagree: " + "; ".join(
            f"{i['origin'] or 'table'} gives {i['verdict']}" for i in items)]
    elif verdict == UNDECIDED and (others := _other_years(claim, same)):
        whys.append(f"other years, not used for {claim.year}: {others}")
    label = next((r["data_label"] for r, i in zip(this_year, items)
                  if r.get("data_label") and i["verdict"] != UNDECIDED), None)
    if not claim.unit and len({r.get("unit") for r in this_year}) > 1:
        lines.append(f"the claim gives no unit: read in {unit}, the figures' most common")
    return ClaimCheck(claim, verdict, ("indicators",) if verdict != UNDECIDED else (),
                      " | ".join(lines), "" if verdict != UNDECIDED else "; ".join(whys), items,
                      label)


def _why_missing(claim: Claim, index: _RowIndex, same: list[dict[str, Any]]) -> str:
    """Why no figure decides: the region or year is missing; a provincial figure is named
    but never substituted for a city or city-group claim."""
    if same:
        held = ", ".join(f"{r['year']}: {_figure_text(r)} [{r.get('flag')}]"
                         for r in sorted(same, key=lambda r: r["year"]))
        why = f"no {claim.indicator} figure for {claim.region} in {claim.year} (held: {held})"
    else:
        why = (f"no {claim.indicator} figure for {claim.region} in any year; "
               + _regions_with(claim.indicator, index))
    if not is_province(claim.region):
        prov = index.provinces_with(claim.indicator, claim.year)
        if prov:
            why += (f"; {', '.join(prov)} has one for {claim.year}, a provincial figure, "
                    "never substituted for a city or city group")
    return why


def _regions_with(indicator: str, index: _RowIndex, most: int = 20) -> str:
    """The regions that have ``indicator`` (names match exactly, case included)."""
    names = sorted(index.regions.get(indicator, ()))
    if not names:
        return f"no region has {indicator}"
    shown = ", ".join(names[:most])
    more = f", … ({len(names)} in all)" if len(names) > most else ""
    return f"regions with {indicator}: {shown}{more} (names match exactly, case included)"


# ------------------------------------------------------------------ rank claims

def _check_rank(claim: Claim, ctx: _Context) -> ClaimCheck:
    available = {"run": ctx.run is not None, "editions": ctx.editions is not None,
                 "published": ctx.published is not None}
    wanted = claim.basis or _RANK_BASES
    given = [b for b in wanted if available[b]]
    if not given:
        return ClaimCheck(claim, UNDECIDED, (), "", "no data of its basis given ("
                          + ", ".join(wanted) + ")", [])
    per_basis: dict[str, str] = {}
    observations: list[rank_data.Observation] = []
    located = _locate(claim, ctx) if {"run", "editions"} & set(given) else None
    for basis in given:
        obs = _observe(claim, ctx, basis, located)
        observations.extend(obs)
        per_basis[basis] = combine_all([_verdict(claim, o) for o in obs])
    verdict, disagree = combine_sources(list(per_basis.values()))
    decided = tuple(b for b, v in per_basis.items() if v == verdict) if verdict != UNDECIDED \
        else ()
    whys = [f"{o.basis}: {o.why}" for o in observations if o.why]
    if disagree:
        whys = ["the data disagree: " + "; ".join(f"{b} gives {v}"
                                                  for b, v in per_basis.items())]
    items = [{"basis": o.basis, "edition": o.edition, "rank": o.interval.text()
              if o.interval else None, "no_cluster": o.no_cluster,
              "verdict": _verdict(claim, o), "why": o.why, "evidence": o.evidence,
              **{k: o.source.get(k) for k in ("publisher", "title", "url")}}
             for o in observations]
    label = next((o.data_label for o in observations if o.data_label), None)
    evidence = " | ".join(f"{o.evidence} ({o.source.get('publisher')})"
                          for o in observations if o.evidence)
    return ClaimCheck(claim, verdict, decided, evidence,
                      "" if verdict != UNDECIDED else "; ".join(whys), items, label)


def _verdict(claim: Claim, obs: rank_data.Observation) -> str:
    if obs.no_cluster:
        return NOT_HELD  # the data cover the place and no cluster holds it
    if obs.interval is None:
        return UNDECIDED
    return decide(obs.interval, claim.op, claim.value)


def _locate(claim: Claim, ctx: _Context) -> tuple[float, float] | str:
    """The place's GeoNames coordinate (degrees), or why there is none."""
    found = ctx.geocoder.geocode(claim.place, None, claim.country)
    if found.lat is None:
        return f"{claim.place} is not a GeoNames place ({found.status})"
    return float(found.lat), float(found.lon)


def _observe(claim: Claim, ctx: _Context, basis: str,
             located: tuple[float, float] | str | None) -> list[rank_data.Observation]:
    editions = list(claim.editions) or [None]
    if basis == "published":
        obs = [rank_data.published_rank(ctx.published, claim.place, e,
                                         origin=ctx.published_name,
                                         published_name=claim.published_name,
                                         country=claim.country)
               for e in editions]
        if claim.metrics:
            for o in obs:
                if o.interval is not None:
                    o.interval, o.evidence = None, ""
                    o.why = "the published table does not say which metrics ranked it"
        return obs
    if isinstance(located, str):
        return [rank_data.Observation(basis, e, why=located) for e in editions]
    lat, lon = located
    if basis == "run":
        return [_observe_run(claim, ctx.run, lat, lon, ctx.run_edition)]
    out = []
    for e in editions:
        folder = ctx.editions.get(e) if e is not None else None
        if folder is None:
            why = (f"edition {e} is not in the editions folder (editions: "
                   f"{', '.join(ctx.editions)})" if e is not None else
                   "the claim names no edition")
            out.append(rank_data.Observation(basis, e, why=why))
        else:
            out.append(rank_data.run_rank(folder, claim.place, lat, lon, basis=basis,
                                          edition=e, metrics=claim.metrics))
    return out


def _observe_run(claim: Claim, run: str | Path, lat: float, lon: float,
                 run_edition: str | None) -> rank_data.Observation:
    """A single run is one ranking: it decides a claim about no edition, or about one
    edition when the run is known to be that edition (its manifest's ``edition`` or
    ``edition <name>`` note, else ``run_edition`` as the user says)."""
    from stclusters._run_folder import read_manifest  # noqa: PLC0415

    if len(claim.editions) > 1:
        return rank_data.Observation("run", None, why=(
            f"a run is one ranking, the claim is about {len(claim.editions)} editions "
            "(give an editions folder)"))
    edition = claim.editions[0] if claim.editions else None
    own = own_named = rank_data.run_edition(read_manifest(run))
    if own is not None and run_edition is not None and own != run_edition:
        return rank_data.Observation("run", edition, why=(
            f"{run} is edition {own} (its manifest), not {run_edition} as given"))
    own = own if own is not None else run_edition
    if edition is not None and own is None:
        return rank_data.Observation("run", edition, why=(
            f"{run} names no edition: say which edition it is (--run-edition) to judge a "
            f"claim about edition {edition}"))
    if edition is not None and own != edition:
        return rank_data.Observation("run", edition, why=f"{run} is edition {own}, not {edition}")
    obs = rank_data.run_rank(run, claim.place, lat, lon, basis="run", edition=edition,
                             metrics=claim.metrics)
    if edition is not None and own_named is None and obs.evidence:
        obs.evidence += f"; edition {edition} as the user says (--run-edition)"
    return obs
