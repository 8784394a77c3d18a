"""Country outlines for static maps: TopoJSON topologies decoded to polygon rings in numpy.

A TopoJSON topology stores each shared border once, as an *arc*; polygons list the arcs of
their rings (index ``i`` for arc ``i``, ``~i`` = ``-i - 1`` for arc ``i`` reversed). A
quantized topology (with a ``transform``) stores each arc as integer steps: the first
position absolute, each next one as the difference to the one before. Decoding is thus a
cumulative sum per arc, then ``position · scale + translate``. Consecutive arcs of a ring
share their joining position, written once in the ring.

The shipped outlines are Natural Earth 4.1.0 admin-0 countries (public domain) as packaged
by world-atlas 2.0.2 (ISC): ``stclusters/data/outlines/countries-{110m,50m}.json``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

#: Resolutions shipped (Natural Earth scale 1:110 million and 1:50 million).
RESOLUTIONS: tuple[str, ...] = ("110m", "50m")

#: Credit line for maps drawn with these outlines.
OUTLINES_CREDIT = ("Country outlines: Natural Earth 4.1.0 admin-0 countries (public domain), "
                   "via world-atlas 2.0.2 (ISC)")


@dataclass(frozen=True)
class Country:
    """One feature of a topology: its name, id and polygons.

    Attributes
    ----------
    name : str
        The feature's ``properties.name`` ("" when absent).
    feature_id : str
        The feature's ``id`` (ISO 3166-1 numeric for countries; "" when absent).
    polygons : tuple of tuple of ndarray
        Each polygon's rings, exterior first, each an ``(n, 2)`` array of (lon, lat) degrees,
        closed (first position repeated last).
    """

    name: str
    feature_id: str
    polygons: tuple[tuple[np.ndarray, ...], ...]

    @property
    def rings(self) -> list[np.ndarray]:
        """Every ring of every polygon, in order."""
        return [ring for polygon in self.polygons for ring in polygon]


def decode_arcs(arcs: list[list[list[float]]], transform: dict[str, Any] | None
                ) -> list[np.ndarray]:
    """Absolute (lon, lat) positions of each arc.

    Parameters
    ----------
    arcs : list
        The topology's ``arcs``: per arc, a list of positions (quantized and delta-encoded
        when ``transform`` is given, absolute degrees otherwise).
    transform : dict or None
        The topology's ``transform`` (``scale``, ``translate``: degrees per quantum and
        offset in degrees), or None.

    Returns
    -------
    list of ndarray
        One ``(n, 2)`` float64 array per arc, degrees.
    """
    if not arcs:
        return []
    lengths = np.array([len(a) for a in arcs], dtype=np.int64)
    flat = np.array([p[:2] for a in arcs for p in a], dtype=np.float64).reshape(-1, 2)
    if transform is not None:
        # Delta decoding of all arcs in one pass: a global running sum, minus the running sum
        # just before each arc's start, restarts the sum at every arc.
        total = np.cumsum(flat, axis=0)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        before = np.vstack((np.zeros((1, 2)), total))[starts]
        flat = total - np.repeat(before, lengths, axis=0)
        flat = flat * np.asarray(transform["scale"], dtype=np.float64) \
            + np.asarray(transform["translate"], dtype=np.float64)
    return np.split(flat, np.cumsum(lengths)[:-1])


def _ring(arc_refs: list[int], arcs: list[np.ndarray]) -> np.ndarray:
    """One ring stitched from its arc references (the joining position kept once)."""
    parts = []
    for k, ref in enumerate(arc_refs):
        arc = arcs[ref] if ref >= 0 else arcs[~ref][::-1]
        parts.append(arc if k == 0 else arc[1:])
    return np.concatenate(parts, axis=0)


def decode_object(topology: dict[str, Any], object_name: str) -> list[Country]:
    """The features of one object of a topology (Polygon and MultiPolygon geometries; other
    geometry types are skipped), in the topology's order.

    Raises
    ------
    KeyError
        ``object_name`` is not an object of the topology.
    """
    arcs = decode_arcs(topology.get("arcs", []), topology.get("transform"))
    obj = topology["objects"][object_name]
    geometries = obj["geometries"] if obj.get("type") == "GeometryCollection" else [obj]
    countries = []
    for geom in geometries:
        if geom.get("type") == "Polygon":
            polys = [geom["arcs"]]
        elif geom.get("type") == "MultiPolygon":
            polys = geom["arcs"]
        else:
            continue
        polygons = tuple(tuple(_ring(refs, arcs) for refs in poly) for poly in polys)
        props = geom.get("properties") or {}
        countries.append(Country(name=str(props.get("name", "")),
                                 feature_id=str(geom.get("id", "")), polygons=polygons))
    return countries


def unwrapped_ring(ring: np.ndarray) -> np.ndarray:
    """A ring as drawn on a flat map: longitudes made continuous (no jump of 180° or more
    between neighbours, so the ring may leave [-180, 180]); a ring around a pole (whose
    longitudes end a turn away from where they start) closed along that pole.

    Parameters
    ----------
    ring : ndarray, shape (n, 2)
        Closed ring, (lon, lat) degrees.
    """
    lon = np.unwrap(ring[:, 0], period=360.0)
    out = np.column_stack((lon, ring[:, 1]))
    turn = lon[-1] - lon[0]
    if abs(turn) > 180.0:  # encircles a pole: run along the pole back to the start
        pole = 90.0 if ring[:, 1].mean() > 0 else -90.0
        out = np.vstack((out, [[lon[-1], pole], [lon[0], pole]], out[:1]))
    return out


def flat_rings(rings: list[np.ndarray]) -> list[np.ndarray]:
    """Rings for a flat map spanning [-180, 180]: each unwrapped (:func:`unwrapped_ring`),
    and one that reaches past ±180° repeated a turn to the other side, so both halves of a
    country across the antimeridian (Fiji, Chukotka) show."""
    out = []
    for ring in rings:
        flat = unwrapped_ring(ring)
        shift = 360.0 * np.round(np.mean(flat[:, 0]) / 360.0)
        flat[:, 0] -= shift  # the ring's middle back into [-180, 180]
        out.append(flat)
        if flat[:, 0].max() > 180.0:
            out.append(flat - [360.0, 0.0])
        if flat[:, 0].min() < -180.0:
            out.append(flat + [360.0, 0.0])
    return out


@functools.lru_cache(maxsize=2)
def load_countries(resolution: str = "110m") -> tuple[Country, ...]:
    """The shipped Natural Earth countries at ``resolution`` ("110m" or "50m"), decoded once
    per process.

    Raises
    ------
    ValueError
        An unknown resolution.
    """
    if resolution not in RESOLUTIONS:
        raise ValueError(f"outline resolution {resolution!r}: one of {', '.join(RESOLUTIONS)}")
    text = (resources.files("stclusters") / "data" / "outlines"
            / f"countries-{resolution}.json").read_text(encoding="utf-8")
    return tuple(decode_object(json.loads(text), "countries"))
