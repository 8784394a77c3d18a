"""The report's region page data (``stclusters report RUN_DIR --region GBA``).

Everything shown on the page comes from the regions API, unchanged but for rounding:
the indicator table with its sources, flags and bounds
(:func:`stclusters.regions.indicators.read_indicators`), the indicators computed from the
run's records and each city's S&T cluster (``computed_indicators``, ``city_clusters``),
the integration shares and collaboration matrices (:mod:`stclusters.regions.integration`)
and the claims with their verdicts (:func:`stclusters.regions.claims.check_claims`).
See ``docs/report.md`` § The region page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from stclusters.errors import ParameterError

#: Shipped claim sets shown by default with a shipped region file's regions.
_DEFAULT_CLAIMS = {"gba.yaml": "gba"}
#: Most decimals of a number in the region tables (indicator values, shares, weights).
_DIGITS = 6
#: The counting rules, as the page states them under the integration figures
#: (``stclusters.regions.integration``, ``docs/integration.md``).
RULES = {
    "shares": "A document is the focal side's when one of its used contributions is there; "
              "it is made with the partner when one of its used contributions is in the "
              "partner and not in the focal side (CN: anywhere in mainland China).",
    "whole": "Whole counting: the share of the focal side's documents made with the "
             "partner. Matrix: off the diagonal, the documents with used contributions in "
             "both cities; on the diagonal, the documents whose contributions are all in "
             "that city.",
    "fractional": "Fractional counting: the share of the focal side's fractional weight "
                  "on documents made with the partner. Matrix: a document adds "
                  "w_i·w_j / W to cell (i, j), diagonal included (Batagelj & Cerinšek "
                  "2013); a row sums to the city's fractional count.",
}


def default_claims(region: Any) -> str | None:
    """The shipped claim set that goes with ``region`` (``"gba"`` for the shipped GBA file
    and its groups), or ``None``."""
    return _DEFAULT_CLAIMS.get(getattr(region, "source", ""))


def region_payload(run_dir: str | Path, region: Any, *, claims: Any = None,
                   indicators: Sequence[str | Path] = ()) -> dict[str, Any]:
    """The region page's data for a run folder.

    Parameters
    ----------
    run_dir : path
        A finished run folder.
    region : str or Region
        ``GBA``, ``PRD-9``, ``HK-MO``, a region file (``file.yaml[#GROUP]``) or a loaded
        :class:`~stclusters.regions.Region`.
    claims : str, path, list of Claim, False or None, keyword-only
        A claim file, a shipped set (``gba``) or parsed claims, checked against the shipped
        and given indicators, the run (and its editions folder when the run is one edition)
        and the shipped published GII ranks. ``None``: the shipped set of a shipped region
        (``gba`` for the GBA and its groups), none otherwise. ``False``: no claims.
    indicators : sequence of paths, keyword-only
        Users' indicator CSV files read after the shipped rows (a later row replaces an
        earlier one of the same region, year, indicator and unit).

    Returns
    -------
    dict
        ``{id, name, source, members, groups, label, indicators, population_indicators,
        computed, city_clusters, integration, claims, credits, publishers}``; tables as
        :func:`table_payload`.

    Raises
    ------
    StclustersError
        An unknown region, a bad indicator or claim file, or a folder that is not a run.
    """
    from stclusters.geocode import Geocoder  # noqa: PLC0415
    from stclusters.regions import load_region  # noqa: PLC0415
    from stclusters.regions.indicators import (POPULATION_INDICATORS,  # noqa: PLC0415
                                               read_indicators, rows_of_region)

    if isinstance(region, (str, Path)):
        region = load_region(str(region))
    files = tuple(indicators or ())
    table = rows_of_region(read_indicators(files), region)
    if claims is None:
        claims = default_claims(region)
    parsed = _parse_claims(claims)  # a bad file fails before the run's work
    geocoder = Geocoder.load()  # one gazetteer for placing the records and the claims' places
    run_part = _from_run(Path(run_dir), region, geocoder)
    checked = (_claims(Path(run_dir), parsed, files, geocoder) if parsed is not None
               else None)
    if checked is not None:
        checked["file"] = None if isinstance(claims, list) else Path(str(claims)).name
    return {
        "id": region.id, "name": region.name, "source": region.source,
        "members": [[m.name, m.economy] for m in region.members
                    if m.name in region.member_names],
        # A list, not a mapping: the page keeps the file's order (payload keys are sorted).
        "groups": [[g, list(ms)] for g, ms in region.groups.items()
                   if g != region.id and set(ms) <= set(region.member_names)],
        "label": run_part.pop("label"),
        "indicators": table_payload(table),
        "population_indicators": list(POPULATION_INDICATORS),
        **run_part,
        "claims": checked,
        "credits": _credits(checked is not None),
        "publishers": sorted({p for p in table.column("source_publisher").to_pylist() if p}),
    }


def _from_run(run_dir: Path, region: Any, geocoder: Any) -> dict[str, Any]:
    """Computed indicators, each city's cluster, integration shares and matrices of the run
    (one placement of its records in the region's members, shared by all of them)."""
    from stclusters._run_folder import open_run  # noqa: PLC0415
    from stclusters.regions._integration_units import placed_contributions  # noqa: PLC0415
    from stclusters.regions.indicators import city_clusters, computed_indicators  # noqa: PLC0415
    from stclusters.regions.integration import (COUNTINGS,  # noqa: PLC0415
                                                collaboration_matrix, integration_shares)

    con, _manifest, label = open_run(run_dir, need=("contributions", "points", "clusters",
                                                    "ranking"))
    try:
        placed_contributions(con, region, geocoder=geocoder)  # makes region_contributions
        computed = computed_indicators(con, region, placed=True,
                                       origin=f"computed from run {run_dir.resolve().name}")
        cities = city_clusters(con, region, placed=True)
        try:
            shares, note = integration_shares(con, region, geocoder=geocoder), None
        except ParameterError as exc:  # a region without members on both sides
            shares, note = None, str(exc)
        matrices = {c: table_payload(collaboration_matrix(con, region, counting=c,
                                                          geocoder=geocoder))
                    for c in COUNTINGS}
    finally:
        con.close()
    return {"label": label, "computed": table_payload(computed),
            "city_clusters": table_payload(cities),
            "integration": {"shares": table_payload(shares) if shares is not None else None,
                            "note": note, "matrix": matrices, "rules": RULES}}


def _parse_claims(claims: Any) -> list[Any] | None:
    """Parsed claims (``None``: no claims shown)."""
    if claims is None or claims is False:
        return None
    if isinstance(claims, list):
        return claims
    from stclusters.regions.claims import load_claims  # noqa: PLC0415

    return load_claims(claims)


def _claims(run_dir: Path, parsed: list[Any], files: tuple[str | Path, ...],
            geocoder: Any) -> dict[str, Any]:
    """The claims' verdicts: against the shipped and given indicators, this run, its
    editions folder (when the run is one of its editions) and the shipped published ranks."""
    from stclusters.regions.claims import CREDITS, check_claims  # noqa: PLC0415

    parent = run_dir.resolve().parent
    editions = parent if (parent / "editions.json").is_file() else None
    res = check_claims(parsed, indicators=list(files) or None, run=run_dir,
                       editions=editions, published=True, geocoder=geocoder)
    return {"file": None, "counts": res.counts, "table": table_payload(res.table),
            "editions": editions.name if editions is not None else None,
            "credits": CREDITS}


def _credits(with_claims: bool) -> list[str]:
    """The region page's credits: the statistics offices, each indicator figure's
    publisher (listed apart, ``publishers``), GeoNames, and with claims the published
    ranks."""
    from stclusters.regions.indicators import CREDITS  # noqa: PLC0415

    lines = list(CREDITS)
    if with_claims:
        lines.append("Published ranks: WIPO, Global Innovation Index.")
    return list(dict.fromkeys(lines))


def _cell(value: Any) -> Any:
    """A JSON-ready cell: floats rounded (NaN → None), everything else as it is."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, _DIGITS)
    return value


def table_payload(table: pa.Table) -> dict[str, Any]:
    """An Arrow table as ``{columns, dict, rows}``, in the table's row order.

    Text columns are dictionary-encoded (a row holds the index into ``dict[column]``, the
    values in order of first appearance; null stays null): the indicator table repeats a
    few dozen publishers and notes over a thousand rows. Floats are rounded to 6 decimals.
    """
    columns = table.column_names
    text = [c for c in columns if pa.types.is_string(table.schema.field(c).type)
            or pa.types.is_large_string(table.schema.field(c).type)]
    lookup: dict[str, dict[str, int]] = {c: {} for c in text}
    data = [table.column(c).to_pylist() for c in columns]
    for name, values in zip(columns, data):
        if name in lookup:
            index = lookup[name]
            values[:] = [None if v is None else index.setdefault(v, len(index)) for v in values]
    rows = [[_cell(v) for v in row] for row in zip(*data)] if columns else []
    return {"columns": columns, "dict": {c: list(lookup[c]) for c in text}, "rows": rows}


def decode_table(encoded: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a :func:`table_payload` as dicts (the page's decoding, for tests and
    scripts reading the payload)."""
    columns, lookup = encoded["columns"], encoded["dict"]
    return [{c: (lookup[c][v] if c in lookup and v is not None else v)
             for c, v in zip(columns, row)} for row in encoded["rows"]]


__all__ = ["decode_table", "default_claims", "region_payload", "table_payload"]
