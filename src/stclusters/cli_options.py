"""The method's options of ``stclusters rank``, built from :class:`RankParams` in one place.

Every field of :class:`RankParams` and of each source's :class:`SourceParams` becomes an
option; its help is the first sentence of the field's docstring entry, so a new field shows
up in ``rank --help`` without a line here. Naming:

* a source field has an option for every source and one override per source:
  ``--eps-km`` and ``--eps-km-patent``; the window and the document types read as
  ``--patent-years 2019-2023`` and ``--publication-types all``;
* a run field is ``--`` + its name with dashes (``--merge-eps-km``, ``--min-precision``);
* a source's weight in the score is ``--weight-patent``;
* any metric (a generic table's ``source``, e.g. ``vc_deal``) is set in one repeatable
  option, ``--metric vc_deal:weight=1,eps_km=13,years=2019-2023`` (``vc_deal:off`` leaves
  it out of the run); see :func:`parse_metric`.

Values are checked here, all at once (each problem names its option), before
:class:`RankParams` checks the combination.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.markup import escape

from stclusters.errors import ParameterError
from stclusters.params import RankParams, SourceParams
from stclusters.schema import PRECISIONS, metric_name_problem


@dataclass(frozen=True)
class Bounds:
    """An allowed range of a number; ``None`` = unbounded on that side."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def text(self) -> str:
        """``0 < x < 1000``, ``x >= 1``: as shown in the help."""
        lo = "" if self.lo is None else f"{self.lo:g} {'<' if self.lo_open else '<='} "
        hi = "" if self.hi is None else f" {'<' if self.hi_open else '<='} {self.hi:g}"
        if self.lo is not None and self.hi is None:
            return f"x {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"{lo}x{hi}"

    def holds(self, value: float) -> bool:
        if value != value:  # NaN is in no range
            return False
        if self.lo is not None and (value < self.lo or self.lo_open and value == self.lo):
            return False
        return not (self.hi is not None and (value > self.hi or self.hi_open and value == self.hi))


#: Ranges of the fields, as :meth:`RankParams.__post_init__` checks them (repeated here so
#: that the help shows them and a problem names the option), plus those of fields it leaves
#: open. A field absent here is checked by RankParams alone.
BOUNDS: dict[str, Bounds] = {
    "eps_km": Bounds(0, 1000, lo_open=True, hi_open=True),
    "min_weight": Bounds(0, None, lo_open=True),
    "min_weight_share_pct": Bounds(0, 100, lo_open=True),
    "merge_eps_km": Bounds(0, 1000, lo_open=True, hi_open=True),
    "top_n": Bounds(1, None),
    "economy_min_share_pct": Bounds(0, 100, hi_open=True),
    "name_max_places": Bounds(1, 5),
    "name_min_share_pct": Bounds(0, 100),
    "name_min_population": Bounds(0, None),
    "weight": Bounds(0, None),
    "population_year": Bounds(1950, 2035),
}

#: Choices of text fields that have a closed set of values but a plain ``str`` annotation
#: (a ``Literal`` field's choices are read from its annotation).
CHOICES: dict[str, tuple[str, ...]] = {"min_precision": PRECISIONS}

#: Units shown as the value's placeholder.
_METAVARS = {"_km": "KM", "_pct": "PCT"}

_DOC_ENTRY = re.compile(r"^(\w[\w, ]*?) : [^\n]*\n((?:[ \t]+\S[^\n]*\n?)+)", re.MULTILINE)


def field_docs(cls: type) -> dict[str, str]:
    """Field name → first sentence of its entry in the numpy-style docstring of ``cls``."""
    out = {}
    for m in _DOC_ENTRY.finditer(inspect.getdoc(cls) or ""):
        text = re.sub(r":\w+:`~?([^`]+)`", r"\1", " ".join(m.group(2).split())).replace("``", "")
        sentence = re.split(r"(?<=[a-z)\]])\. ", text, maxsplit=1)[0].rstrip(".")
        sentence = re.sub(r"\bNone\b", "not given", sentence)  # an option is not given, not None
        for name in m.group(1).split(","):
            out[name.strip()] = sentence
    return out


def _choices(cls: type, name: str) -> tuple[str, ...] | None:
    """The values a field may take: its ``Literal[...]`` arguments, or :data:`CHOICES`."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(hint))
    return CHOICES.get(name)


def _is_list(cls: type, name: str) -> bool:
    """Is the field a tuple of values (``tuple[str, ...] | None``)?"""
    hint = typing.get_type_hints(cls)[name]
    return any(typing.get_origin(a) is tuple for a in (*typing.get_args(hint), hint))


def _value_type(cls: type, name: str) -> type:
    """int, float, str or bool from a field's annotation (``float | None`` → float)."""
    hint = typing.get_type_hints(cls)[name]
    if typing.get_origin(hint) is typing.Literal:
        return str
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    for t in (bool, int, float, str):
        if t in args:
            return t
    return str


@dataclass(frozen=True)
class Opt:
    """One option: its flag, the value's type and help, and where the value goes.

    ``target`` is ``("run", field)``, ``("source", field, source or None)`` (None: every
    source), ``("years", source or None)``, ``("types", source)`` or ``("weight", source)``.
    """

    flag: str
    kind: type
    help: str
    target: tuple
    default: Any = None
    bounds: Bounds | None = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def field(self) -> str:
        """The parameter it sets, as the manifest names it (``patent.eps_km``)."""
        if self.target[0] == "source":
            return f"{self.target[2]}.{self.target[1]}" if self.target[2] else self.target[1]
        if self.target[0] == "weight":
            return f"source_weights.{self.target[1]}"
        return self.target[-1] if self.target[0] == "run" else self.dest

    def parameter(self) -> inspect.Parameter:
        """The keyword parameter typer reads (the value is None when the option is not given)."""
        notes = []
        if self.choices:
            notes.append("one of " + ", ".join(self.choices))
        if self.bounds:
            notes.append("range " + self.bounds.text())
        if (shown := _shown_default(self.default)) is not None:
            notes.append("default " + shown)
        help_text = self.help + (f" ({'; '.join(notes)})" if notes else "") + "."
        panel = ("Method: each source's clustering, window and types"
                 if self.target[0] in ("source", "years", "types", "metric")
                 else "Method: run, score, names and population")
        info = typer.Option(self.flag, help=escape(help_text), metavar=self.metavar,
                            show_default=False, rich_help_panel=panel)
        annotation = Annotated[self.kind | None, info]
        return inspect.Parameter(self.dest, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=annotation)


def _shown_default(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _metavar(name: str, kind: type) -> str | None:
    for suffix, metavar in _METAVARS.items():
        if name.endswith(suffix):
            return metavar
    return {int: "N", float: "X"}.get(kind)


def _choice_metavar(choices: tuple[str, ...]) -> str:
    """``located|all``; a long list is named in the help instead."""
    joined = "|".join(choices)
    return joined if len(joined) <= 16 else "NAME"


def _source_options(defaults: RankParams) -> list[Opt]:
    docs = field_docs(SourceParams)
    sources = tuple(defaults.sources)
    out = []
    for f in dataclasses.fields(SourceParams):
        if f.name in ("first_year", "last_year", "doc_types"):
            continue
        kind = _value_type(SourceParams, f.name)
        common = {"kind": kind, "bounds": BOUNDS.get(f.name), "metavar": _metavar(f.name, kind)}
        flag = "--" + f.name.replace("_", "-")
        out.append(Opt(flag, help=docs.get(f.name, f.name) + ", every source",
                       target=("source", f.name, None), default=getattr(SourceParams(), f.name),
                       **common))
        out += [Opt(f"{flag}-{s}", help=f"{docs.get(f.name, f.name)}, {s}s; overrides {flag}",
                    target=("source", f.name, s), default=getattr(defaults.source(s), f.name),
                    **common) for s in sources]
    out.append(Opt("--years", str, "Window of years, every source: 2019-2023, 2019 (one year), "
                   "2019- or -2023 (open end), all", ("years", None), metavar="YEARS"))
    for s in sources:
        sp = defaults.source(s)
        window = (f"{sp.first_year or ''}-{sp.last_year or ''}"
                  if sp.first_year or sp.last_year else "all")
        out.append(Opt(f"--{s}-years", str, f"Window of years, {s}s; overrides --years",
                       ("years", s), default=window, metavar="YEARS"))
        out.append(Opt(f"--{s}-types", str, f"Document types kept, {s}s: comma-separated, or "
                       "all to keep every type", ("types", s),
                       default=sp.doc_types if sp.doc_types else "all", metavar="TYPES"))
    return out


def _run_options(defaults: RankParams) -> list[Opt]:
    docs = field_docs(RankParams)
    out = []
    for f in dataclasses.fields(RankParams):
        if f.name in ("sources", "source_weights"):
            continue
        kind = _value_type(RankParams, f.name)
        choices = _choices(RankParams, f.name)
        out.append(Opt("--" + f.name.replace("_", "-"), kind, docs.get(f.name, f.name),
                       ("run", f.name), default=getattr(defaults, f.name),
                       bounds=BOUNDS.get(f.name), choices=choices,
                       metavar=_choice_metavar(choices) if choices else _metavar(f.name, kind)))
    for s, w in defaults.source_weights.items():
        out.append(Opt(f"--weight-{s}", float, f"Weight of the {s} share in the score",
                       ("weight", s), default=w, bounds=BOUNDS["weight"], metavar="X"))
    return out


#: Help of ``--metric`` (its form is parsed by :func:`parse_metric`).
METRIC_HELP = (
    "Any metric by name (a table's source, e.g. vc_deal) with its parameters, repeatable: "
    "NAME:weight=X,eps_km=KM,min_weight=X,min_weight_share_pct=PCT,years=YEARS,types=TYPES "
    "(each key optional: weight 1 and the every-source options by default). A metric other "
    "than patent and publication counts only when named here. "
    "weight=0 keeps it out of the score (counted in the others' clusters, shaping none); "
    "NAME:off leaves it out of the run. Example: --metric vc_deal:weight=1,eps_km=13,"
    "min_weight_share_pct=0.02,years=2019-2023")


def _metric_option() -> Opt:
    return Opt("--metric", list[str], METRIC_HELP, ("metric",), metavar="NAME:KEY=VALUE,...")


def rank_options(defaults: RankParams | None = None) -> list[Opt]:
    """Every option of the method, source options first."""
    defaults = defaults or RankParams()
    return [*_source_options(defaults), _metric_option(), *_run_options(defaults)]


@dataclass(frozen=True)
class MetricSetting:
    """One ``--metric`` value: the metric's name, its :class:`SourceParams` changes, its
    weight in the score (None: not given) and whether it is left out of the run."""

    name: str
    changes: Mapping[str, Any]
    weight: float | None = None
    off: bool = False


#: Keys of ``--metric NAME:KEY=VALUE``: the SourceParams fields given as numbers.
_METRIC_NUMBERS = ("eps_km", "min_weight", "min_weight_share_pct")


def _metric_pairs(text: str) -> list[tuple[str, str | None]]:
    """``key=value`` pieces of a ``--metric`` text after ``NAME:``; ``off`` is a flag, any
    other piece without ``=`` continues the value before it (``types=article,preprint``)."""
    pairs: list[tuple[str, str | None]] = []
    for piece in (p.strip() for p in text.split(",")):
        if "=" in piece:
            key, value = piece.split("=", 1)
            pairs.append((key.strip().replace("-", "_"), value.strip()))
        elif piece != "off" and pairs and pairs[-1][1] is not None:
            pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]},{piece}")
        elif piece:
            pairs.append((piece, None))
    return pairs


def _metric_value(name: str, key: str, value: str | None) -> tuple[dict[str, Any], list[str]]:
    """``({field: value}, problems)`` of one ``key=value`` of metric ``name``."""
    where = f"--metric {name}:{key}"
    if key == "off" and value is None:
        return {"off": True}, []
    if value is None or value == "":
        return {}, [f"{where}: a value is missing (KEY=VALUE)"]
    try:
        if key == "years":
            first, last = parse_years(value)
            if first is not None and last is not None and first > last:
                return {}, [f"{where}: first_year {first} is after last_year {last}"]
            return {"first_year": first, "last_year": last}, []
        if key == "types":
            return {"doc_types": parse_types(value)}, []
        if key in (*_METRIC_NUMBERS, "weight"):
            number = float(value)
            bounds = BOUNDS[key]
            if not bounds.holds(number):
                return {}, [f"{where} must be in range {bounds.text()}, got {value}"]
            return {key: number}, []
    except ValueError:
        return {}, [f"{where}: cannot read {value!r} (see --help for the form)"]
    keys = ", ".join(("weight", *_METRIC_NUMBERS, "years", "types", "off"))
    return {}, [f"--metric {name}: unknown key {key!r} (one of {keys})"]


def parse_metric(text: str) -> tuple[MetricSetting | None, list[str]]:
    """Read one ``--metric`` value: ``NAME``, ``NAME:off`` or ``NAME:KEY=VALUE,...``.

    Keys: ``weight`` (≥ 0), ``eps_km`` (km), ``min_weight``, ``min_weight_share_pct`` (%),
    ``years`` (``2019-2023``, ``2019-``, ``all``…), ``types`` (comma-separated, or ``all``).

    Returns
    -------
    (MetricSetting or None, list of str)
        The setting (None when it cannot be read) and the problems found, each naming the
        option and the key.

    Examples
    --------
    >>> setting, problems = parse_metric("vc_deal:weight=0.5,eps_km=10,years=2019-2023")
    >>> setting.weight, dict(setting.changes), problems
    (0.5, {'eps_km': 10.0, 'first_year': 2019, 'last_year': 2023}, [])
    """
    name, _, rest = text.partition(":")
    name = name.strip()
    if (problem := metric_name_problem(name)) is not None:
        return None, [f"--metric {text!r}: {problem}"]
    changes: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in _metric_pairs(rest):
        update, found = _metric_value(name, key, value)
        problems += found
        if set(update) & set(changes):
            problems.append(f"--metric {name}: {key} given twice")
        changes.update(update)
    weight, off = changes.pop("weight", None), bool(changes.pop("off", False))
    return MetricSetting(name, changes, weight, off), problems


def _per_source_dests(name: str) -> dict[str, str]:
    """The per-source option of each --metric key for a built-in source (``eps_km`` →
    ``eps_km_patent``): a key given both ways is a conflict."""
    dests = {f: f"{f}_{name}" for f in _METRIC_NUMBERS}
    return {**dests, "first_year": f"{name}_years", "last_year": f"{name}_years",
            "doc_types": f"{name}_types", "weight": f"weight_{name}"}


def _metric_settings(values: Mapping[str, Any], problems: list[str]) -> dict[str, MetricSetting]:
    """Every ``--metric`` value by metric name; a metric set twice, or a key given also by
    a per-source option, is a problem."""
    out: dict[str, MetricSetting] = {}
    for text in values.get("metric") or []:
        setting, found = parse_metric(text)
        problems += found
        if setting is None:
            continue
        if setting.name in out:
            problems.append(f"--metric {setting.name} given twice (put its keys in one value)")
            continue
        given = [*setting.changes, *(["weight"] if setting.weight is not None else [])]
        clash = sorted({dest for key, dest in _per_source_dests(setting.name).items()
                        if key in given and values.get(dest) is not None})
        if clash:
            flags = ", ".join("--" + d.replace("_", "-") for d in clash)
            problems.append(f"--metric {setting.name}: also set by {flags} (give it once)")
        out[setting.name] = setting
    return out


def parse_years(text: str) -> tuple[int | None, int | None]:
    """``2019-2023`` → (2019, 2023); ``2019`` → (2019, 2019); ``2019-``/``-2023`` open one
    end; ``all`` → (None, None). Raises ValueError."""
    text = text.strip()
    if text.lower() == "all":
        return None, None
    m = re.fullmatch(r"(\d{4})?\s*(-)?\s*(\d{4})?", text)
    if not m or not (m.group(1) or m.group(3)) or (m.group(2) is None and m.group(3)):
        raise ValueError(text)
    first = int(m.group(1)) if m.group(1) else None
    last = int(m.group(3)) if m.group(3) else (None if m.group(2) else first)
    return first, last


def parse_types(text: str) -> tuple[str, ...] | None:
    """``utility,plant`` → ('utility', 'plant'); ``all`` → None (every type kept)."""
    types = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not types:
        raise ValueError(text)
    return None if types == ("all",) else types


def _check(opt: Opt, value: Any) -> str | None:
    if opt.choices and value not in opt.choices:
        return f"{opt.flag} must be one of {', '.join(opt.choices)}, got {value!r}"
    if opt.bounds and isinstance(value, int | float) and not opt.bounds.holds(value):
        return f"{opt.flag} ({opt.field}) must be in range {opt.bounds.text()}, got {value:g}"
    return None


def _source_changes(opts: list[Opt], values: Mapping[str, Any], sources: tuple[str, ...],
                    problems: list[str]) -> dict[str, dict[str, Any]]:
    """Per source, the SourceParams fields the options change: every-source options first,
    then the per-source overrides."""
    changes: dict[str, dict[str, Any]] = {s: {} for s in sources}
    for opt in sorted(opts, key=lambda o: o.target[-1] is not None):
        value = values.get(opt.dest)
        if value is None or opt.target[0] not in ("source", "years", "types"):
            continue
        if (problem := _check(opt, value)) is not None:
            problems.append(problem)
            continue
        targets = [opt.target[-1]] if opt.target[-1] is not None else list(sources)
        try:
            if opt.target[0] == "years":
                first, last = parse_years(value)
                if first is not None and last is not None and first > last:
                    problems.append(f"{opt.flag}: first_year {first} is after last_year {last}")
                    continue
                update = {"first_year": first, "last_year": last}
            elif opt.target[0] == "types":
                update = {"doc_types": parse_types(value)}
            else:
                update = {opt.target[1]: value}
        except ValueError:
            problems.append(f"{opt.flag}: cannot read {value!r} (see --help for the form)")
            continue
        for s in targets:
            changes[s].update(update)
    return changes


def params_from_options(values: Mapping[str, Any], *, defaults: RankParams | None = None,
                        extra_problems: list[str] | None = None) -> RankParams:
    """The :class:`RankParams` of the given option values (None = not given).

    Every problem is gathered into one :class:`ParameterError` (with ``extra_problems``,
    the caller's own), naming the options.
    """
    defaults = defaults or RankParams()
    opts = rank_options(defaults)
    problems = list(extra_problems or [])
    metrics = _metric_settings(values, problems)
    # The every-source options reach the metrics --metric names, too.
    sources = tuple(dict.fromkeys([*defaults.sources, *metrics]))
    changes = _source_changes(opts, values, sources, problems)
    run: dict[str, Any] = {}
    weights = dict(defaults.source_weights)
    excluded = set(defaults.excluded_sources)
    for name, setting in metrics.items():
        changes[name].update(setting.changes)
        if setting.weight is not None:
            weights[name] = setting.weight
        if setting.off:
            excluded.add(name)
    for opt in opts:
        value = values.get(opt.dest)
        if value is None or opt.target[0] not in ("run", "weight"):
            continue
        if (problem := _check(opt, value)) is not None:
            problems.append(problem)
        elif opt.target[0] == "weight":
            weights[opt.target[1]] = value
        elif _is_list(RankParams, opt.target[1]):  # a list: comma-separated, or all
            try:
                run[opt.target[1]] = parse_types(value)
            except ValueError:
                problems.append(f"{opt.flag}: cannot read {value!r} (comma-separated, or all)")
        else:
            run[opt.target[1]] = value
    if "excluded_sources" in run and run["excluded_sources"] is None:  # parse_types: all → None
        problems.append("--excluded-sources: name the metrics left out (comma-separated)")
    scored = [w for s, w in weights.items() if s not in excluded]
    if scored and not any(w > 0 for w in scored):
        problems.append("at least one --weight-<source> (or --metric NAME:weight) must be > 0")
    if problems:
        raise ParameterError("invalid parameters: " + "; ".join(problems),
                             hint="see `stclusters rank --help` for the ranges")
    new_sources = {s: dataclasses.replace(defaults.source(s), **changes[s]) for s in sources}
    if excluded != set(defaults.excluded_sources):
        run["excluded_sources"] = tuple(sorted(excluded | set(run.get("excluded_sources") or ())))
    return dataclasses.replace(defaults, sources=new_sources, source_weights=weights, **run)


def with_options(func: Callable, fixed: list[inspect.Parameter]) -> Callable:
    """``func`` with a signature of the ``fixed`` parameters and every method option (for
    typer, which builds the command line from the signature)."""
    func.__signature__ = inspect.Signature(fixed + [o.parameter() for o in rank_options()])
    return func
