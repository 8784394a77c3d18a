"""Arrow schemas of the tables that flow through the pipeline.

``sources → geocode → contributions → points → clusters → ranking → reports``

* ``RAW_CONTRIBUTION`` is what every reader in :mod:`stclusters.sources` yields: one row per
  (document, contributor, address), with address fields as printed and, where the source
  already located it, a coordinate.
* ``CONTRIBUTION`` is the canonical located table of methodology §1 (after geocoding).
* ``DOCUMENT`` is one row per input document (patent, work, or document of a generic table).
* ``QUARANTINE`` keeps every record that could not be used, with where it came from and why.
"""

from __future__ import annotations

import re

import pyarrow as pa

#: Location precision, finest first. Only ``point``/``postcode``/``city`` cluster by default.
PRECISIONS: tuple[str, ...] = ("point", "postcode", "city", "admin2", "admin1", "country")

#: Plausible years of a record (grant, publication), inclusive. Older or later years are
#: data errors (OpenAlex has ``publication_year`` -5 and 2**40), quarantined by every reader.
YEAR_RANGE: tuple[int, int] = (1500, 2100)

#: Longest text a reader accepts in a field, characters (``address_raw``: a whole affiliation
#: line, which can list several institutions). Longer values are data errors (a 50 MB city)
#: and would cost the geocoder ~1.3 s per MB: the record is quarantined, naming the field.
MAX_TEXT_CHARS: int = 1000
MAX_ADDRESS_CHARS: int = 10_000

#: Fields that identify a record: no control characters (U+0000-U+001F, U+007F) allowed.
ID_FIELDS: tuple[str, ...] = ("doc_id", "source", "institution_id")

#: The built-in metrics (methodology §1): the ones the readers of patent and publication
#: formats produce and the default parameters configure. A generic table may name any other
#: metric (:func:`metric_name_problem`), e.g. ``vc_deal`` for venture-capital deals.
SOURCES: tuple[str, ...] = ("patent", "publication")

#: A metric's name becomes column names (``<name>_weight``, ``<name>_share_pct``), option
#: names (``--metric NAME:...``) and JSON keys: lowercase ASCII letters, digits and ``_``,
#: a letter first, at most 32 characters.
METRIC_NAME_PATTERN = r"[a-z][a-z0-9_]{0,31}"

#: Names a metric cannot take: the lookups of the readers (they locate other records and
#: count nothing: OpenAlex institutions and merged ids, the bulk bundles' location,
#: classification, applicant and person tables), the accounting's ``unknown`` source of a
#: record rejected before its source was known, and ``all`` (a word of the options).
RESERVED_METRIC_NAMES: frozenset[str] = frozenset({
    "institution", "merged_id", "location", "classification", "applicant", "person",
    "person_orig", "unknown", "all"})


def metric_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a metric, or None when it can.

    Examples
    --------
    >>> metric_name_problem("vc_deal") is None
    True
    >>> metric_name_problem("VC deal")
    "'VC deal' is not a metric name (lowercase letters, digits and _, a letter first, at most 32 characters)"
    """
    if not isinstance(name, str) or not re.fullmatch(METRIC_NAME_PATTERN, name):
        return (f"{name!r} is not a metric name (lowercase letters, digits and _, a letter "
                "first, at most 32 characters)")
    if name in RESERVED_METRIC_NAMES:
        return f"{name!r} is reserved (a lookup or a word of the options), not a metric name"
    return None

RAW_CONTRIBUTION = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # 'patent' | 'publication' | …
        pa.field("year", pa.int32()),  # publication / grant / filing year used for windows
        pa.field("contributor_seq", pa.int32(), nullable=False),  # 0-based order on the document
        pa.field("address_seq", pa.int32(), nullable=False),  # 0-based, >0 only for extra addresses
        pa.field("city", pa.string()),
        pa.field("admin1", pa.string()),  # state / province, as printed (US: 2-letter code)
        pa.field("country", pa.string()),  # ISO 3166-1 alpha-2 where known
        pa.field("postcode", pa.string()),
        pa.field("address_raw", pa.string()),  # free text (OpenAlex raw affiliation string)
        pa.field("org", pa.string()),  # institution / organisation name
        pa.field("institution_id", pa.string()),
        pa.field("applicant", pa.string()),
        pa.field("tech_field", pa.string()),
        pa.field("lat", pa.float64()),  # degrees, only when the source gives a coordinate
        pa.field("lon", pa.float64()),
        pa.field("precision", pa.string()),  # one of PRECISIONS when lat/lon are given
        pa.field("record_ref", pa.string(), nullable=False),  # "<file>:<position>" of the record
    ]
)

DOCUMENT = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("year", pa.int32()),
        pa.field("doc_type", pa.string()),  # e.g. 'utility', 'article', 'journal-article'
        pa.field("n_contributors", pa.int32(), nullable=False),
        pa.field("record_ref", pa.string(), nullable=False),
        # ISO 8601 date of this version of the record (OpenAlex ``updated_date``), null when
        # the input has none: of two versions of a document the newer one is kept.
        pa.field("updated_date", pa.string()),
        # OpenAlex topic domain of a work (``primary_topic.domain.display_name``, e.g.
        # 'Physical Sciences'); null for patents, tables and works without a primary topic.
        pa.field("domain", pa.string()),
    ]
)

#: What the geocoder adds to a raw contribution.
GEOCODE_FIELDS = pa.schema(
    [
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("precision", pa.string()),
        pa.field("geoname_id", pa.int64()),
        pa.field("geocode_status", pa.string()),  # 'given', 'matched:<how>' or 'unmatched:<why>'
    ]
)

CONTRIBUTION = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("year", pa.int32()),
        pa.field("contributor_seq", pa.int32(), nullable=False),
        pa.field("address_seq", pa.int32(), nullable=False),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        pa.field("precision", pa.string()),
        pa.field("country", pa.string()),
        pa.field("admin1", pa.string()),
        pa.field("city", pa.string()),
        pa.field("org", pa.string()),
        pa.field("tech_field", pa.string()),
        pa.field("applicant", pa.string()),
        pa.field("institution_id", pa.string()),
        pa.field("geoname_id", pa.int64()),
        pa.field("geocode_status", pa.string()),
        pa.field("record_ref", pa.string(), nullable=False),
    ]
)

QUARANTINE = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("position", pa.string(), nullable=False),  # "line 12", "document 3 (line 40)"
        pa.field("source", pa.string()),
        pa.field("field", pa.string()),  # the offending field, where one is to blame
        pa.field("reason", pa.string(), nullable=False),  # short, stable, groupable text
        pa.field("excerpt", pa.string()),  # at most ~200 characters of the record
    ]
)


def document_status_sql(status: str = "c.status") -> str:
    """SQL of a document's status from its contributions' ``status`` column (aggregate: use
    with GROUP BY document): the first reason that matches wins, for the accounting of every
    reader. ``status`` is a column expression chosen by the caller's code, never user text."""
    return """CASE
    WHEN bool_or({0} = 'used') THEN 'used'
    WHEN count({0}) = 0 THEN 'no_contributors'
    WHEN bool_or({0} = 'source_excluded') THEN 'source_excluded'
    WHEN bool_or({0} = 'metric_not_configured') THEN 'metric_not_configured'
    WHEN bool_or({0} = 'out_of_window') THEN 'out_of_window'
    WHEN bool_or({0} = 'merged_away') THEN 'merged_away'
    WHEN bool_or({0} = 'doc_type_excluded') THEN 'doc_type_excluded'
    WHEN bool_or({0} = 'domain_excluded') THEN 'domain_excluded'
    WHEN bool_or({0} = 'country_mismatch') THEN 'country_mismatch'
    ELSE 'no_located_contributor' END""".format(status)


#: :func:`document_status_sql` of ``c.status``.
DOCUMENT_STATUS_SQL = document_status_sql()


def max_chars(field: str) -> int:
    """Longest accepted text of ``field``, characters (see :data:`MAX_TEXT_CHARS`)."""
    return MAX_ADDRESS_CHARS if field == "address_raw" else MAX_TEXT_CHARS


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema``."""
    return schema.empty_table()
