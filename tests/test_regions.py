"""Regions as data (issue 10 §1): region files, and which city each located row lands in."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stclusters
from stclusters.errors import ParameterError
from stclusters.geocode import Geocoder
from stclusters.regions import add_region_contributions, load_region, shipped_regions

FIXTURE = Path(__file__).parent / "fixtures" / "gba_addresses.csv"
PRD9 = ("Guangzhou", "Shenzhen", "Zhuhai", "Foshan", "Huizhou", "Dongguan", "Zhongshan",
        "Jiangmen", "Zhaoqing")


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load()


@pytest.fixture(scope="module")
def gba():
    return load_region("GBA")


def _rows() -> list[dict[str, str]]:
    with open(FIXTURE, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_shipped_regions_and_groups(gba):
    assert {"GBA", "PRD-9", "HK-MO"} <= set(shipped_regions())
    assert gba.member_names == (*PRD9, "Hong Kong", "Macao")
    assert load_region("prd-9").member_names == PRD9
    assert load_region("HK-MO").member_names == ("Hong Kong", "Macao")
    assert {m.name: m.economy for m in gba.members}["Macao"] == "MO"


def test_each_address_lands_in_its_city(gba, geocoder):
    """Every fixture row, geocoded offline as the pipeline would (or given a coordinate, as
    PatentsView gives one), lands in the expected GBA city or outside."""
    rows = _rows()
    lat, lon, prec, gid = [], [], [], []
    for r in rows:
        if r["lat"]:
            lat.append(float(r["lat"]))
            lon.append(float(r["lon"]))
            prec.append("point")
            gid.append(None)
        else:
            found = geocoder.geocode(r["city"] or None, r["admin1"] or None, r["country"])
            lat.append(found.lat)
            lon.append(found.lon)
            prec.append(found.precision)
            gid.append(found.geoname_id)
    got = gba.assign(lat, lon, country=[r["country"] for r in rows], precision=prec,
                     geoname_id=gid, geocoder=geocoder)
    wrong = [(r["city"] or f'{r["lat"]},{r["lon"]}', r["expected"] or None, g)
             for r, g in zip(rows, got) if (r["expected"] or None) != g]
    assert not wrong, wrong


def test_pipeline_rows_land_in_their_cities(tmp_path, gba):
    """End to end: the fixture as a generic table, read and geocoded by the pipeline; the
    run's used contributions carry the expected member."""
    rows = _rows()
    table = pa.table({
        "doc_id": [f"d{i}" for i in range(len(rows))],
        "source": ["publication"] * len(rows),
        "year": [2020] * len(rows),
        "city": [r["city"] or None for r in rows],
        "admin1": [r["admin1"] or None for r in rows],
        "country": [r["country"] for r in rows],
        "lat": [float(r["lat"]) if r["lat"] else None for r in rows],
        "lon": [float(r["lon"]) if r["lon"] else None for r in rows],
    })
    path = tmp_path / "gba.csv"
    pacsv.write_csv(table, path)
    params = stclusters.RankParams().with_source("publication", min_weight_share_pct=50.0)
    res = stclusters.rank([path], params=params)
    add_region_contributions(res.con, gba)
    got = dict(res.con.execute(
        "SELECT doc_id, member FROM region_contributions").fetchall())
    # Rows placed coarser than a city (Lamma Island, Tianhe) are not used by the run; every
    # other row is, and lands in its city.
    coarse = {"Lamma Island", "Tianhe"}
    expected = {f"d{i}": r["expected"] or None for i, r in enumerate(rows)
                if r["city"] not in coarse}
    assert got == expected
    assert {"Hong Kong", "Macao", "Shenzhen", "Zhuhai"} <= set(got.values())


def test_group_keeps_every_rule(geocoder):
    """PRD-9 counts no Hong Kong row, and a group without Dongguan does not hand a Dongguan
    point to Shenzhen next door."""
    prd9 = load_region("PRD-9")
    out = prd9.assign([22.30, 22.55], [114.17, 114.05], country=["HK", "CN"],
                      geocoder=geocoder)
    assert out.tolist() == [None, "Shenzhen"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_region_file_rules(tmp_path, geocoder):
    """User files: polygons, pinned GeoNames ids, economies, groups (`file.yaml#GROUP`)."""
    path = _write(tmp_path / "bay.yaml", """
id: Bay
members:
  - name: Square
    polygons: [[[113.0, 22.0], [114.0, 22.0], [114.0, 23.0], [113.0, 23.0]]]
  - name: Pinned
    geoname_ids: [1795565]
  - name: Island
    countries: [mo]
groups:
  Two: [Square, Island]
""")
    reg = load_region(path)
    out = reg.assign([22.5, 22.54554, 22.2, 30.0], [113.5, 114.0683, 113.55, 120.0],
                     country=["CN", "CN", "MO", "CN"], geoname_id=[None, 1795565, None, None],
                     geocoder=geocoder)
    assert out.tolist() == ["Square", "Pinned", "Island", None]
    two = load_region(f"{path}#Two")
    assert two.member_names == ("Square", "Island")
    assert two.assign([22.54554], [114.0683], country=["CN"], geoname_id=[1795565],
                      geocoder=geocoder).tolist() == [None]


def test_region_file_problems_are_gathered(tmp_path):
    path = _write(tmp_path / "bad.yaml", """
id: "bad id!"
members:
  - name: A
  - name: B
    polygons: [[[1, 2], [3]]]
    colour: red
  - name: A
    countries: [HK]
groups:
  G: [A, Z]
""")
    with pytest.raises(ParameterError) as info:
        load_region(path)
    msg = str(info.value)
    for part in ("id:", "members[0] (A): no rule", "members[1].polygons[0]",
                 "unknown keys ['colour']", "names given twice: ['A']", "groups.G: not members: ['Z']"):
        assert part in msg, (part, msg)


@pytest.mark.parametrize("body, expected", [
    ("members: 5", "file.members: expected a list, got int"),
    ("members: [{name: A, countries: [HK]}]\ngroups: [A]", "groups: a mapping"),
    ("members: [{name: A, countries: [HK]}]\ngroups: {G: []}", "groups.G: at least one member"),
    ("members: [{name: A, polygons: 5}]", "members[0].polygons: expected a list, got int"),
    ("members: [{name: A, anchors: 5}]", "members[0].anchors: expected a list, got int"),
    ("members: [{name: A, geoname_ids: 5}]", "members[0].geoname_ids: expected a list"),
    ("members: [{name: A, countries: [HK]}]\noutside_anchors: 5", "outside_anchors: expected"),
    ("members: [{name: CN, polygons: [[[0, 0], [1, 0], [1, 1]]]}]", "reads as an economy"),
    ("members: [{name: A, countries: [HK]}]\ngroups: {HK: [A]}", "groups.HK: a group cannot"),
    ("members:\n  - name: A\n   countries: [HK]", "line 4, column 4"),
])
def test_wrong_types_are_problems_not_crashes(tmp_path, body, expected):
    """Every shape of wrong file is one ParameterError naming the place (YAML errors with
    their line and column), never a TypeError from inside the parser."""
    path = _write(tmp_path / "x.yaml", "id: X\n" + body + "\n")
    with pytest.raises(ParameterError) as info:
        load_region(path)
    assert expected in str(info.value), str(info.value)


def test_unknown_region_and_bad_anchor(tmp_path, geocoder):
    with pytest.raises(ParameterError, match="unknown region 'Atlantis'.*"):
        load_region("Atlantis")
    with pytest.raises(ParameterError, match="no such region file"):
        load_region(tmp_path / "missing.yaml")
    reg = load_region(_write(tmp_path / "typo.yaml", """
id: Typo
anchor_domain: {country: CN, admin1: ["30"]}
members:
  - name: Shenzhen
    anchors: [[1795565, Shenzen]]
"""))
    with pytest.raises(ParameterError, match="listed as 'Shenzen', the gazetteer says 'Shenzhen'"):
        reg.assign([22.55], [114.05], country=["CN"], geocoder=geocoder)


def test_coarse_rows_have_no_city(gba, geocoder):
    """A row placed at Guangdong's centre is no city's; Hong Kong at its economy is."""
    prov = geocoder.geocode(None, "Guangdong", "CN")
    hk = geocoder.geocode(None, None, "HK")
    out = gba.assign([prov.lat, hk.lat], [prov.lon, hk.lon], country=["CN", "HK"],
                     precision=[prov.precision, hk.precision], geocoder=geocoder)
    assert prov.precision == "admin1" and out.tolist() == [None, "Hong Kong"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(21.5, 24.0), st.floats(111.5, 115.5),
                          st.sampled_from(["CN", "HK", "MO", None])), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_assignment_is_row_wise(gba, geocoder, rows, rnd):
    """A row's city depends on that row alone: any order of the rows gives the same cities."""
    lat, lon, cc = (list(c) for c in zip(*rows))
    base = gba.assign(lat, lon, country=cc, geocoder=geocoder)
    order = list(range(len(rows)))
    rnd.shuffle(order)
    again = gba.assign(np.asarray(lat)[order], np.asarray(lon)[order],
                       country=[cc[i] for i in order], geocoder=geocoder)
    assert again.tolist() == base[order].tolist()


def test_unfinished_and_old_run_folders_are_refused(tmp_path):
    """A run folder without its manifest (a run that stopped) and one whose tables lack the
    columns the region commands read (an older version) are refused in one line."""
    import shutil

    import duckdb

    from stclusters._run_folder import open_run
    from stclusters.errors import StclustersError

    table = pa.table({"doc_id": ["a", "b", "c"], "source": ["patent"] * 3, "year": [2020] * 3,
                      "lat": [22.54, 22.55, 22.30], "lon": [114.05, 114.06, 114.17],
                      "country": ["CN", "CN", "HK"]})
    pacsv.write_csv(table, tmp_path / "t.csv")
    params = stclusters.RankParams().with_source("patent", min_weight=1.0)
    run = tmp_path / "run"
    stclusters.rank([tmp_path / "t.csv"], params=params).write(run)
    con, manifest, _ = open_run(run, need=("contributions", "points", "clusters"))
    con.close()
    assert manifest["parameters"]
    old = tmp_path / "old"
    shutil.copytree(run, old)
    with duckdb.connect(str(old / "workspace.duckdb")) as db:
        db.execute("ALTER TABLE contributions DROP COLUMN weight_fx")
    with pytest.raises(StclustersError, match="contributions lacks column.*weight_fx.*older"):
        open_run(old, need=("contributions",))
    (run / "manifest.json").unlink()
    with pytest.raises(StclustersError, match="not a finished run"):
        open_run(run)


def test_an_editions_folder_is_named_as_such(tmp_path):
    from stclusters._run_folder import open_run
    from stclusters.errors import StclustersError

    (tmp_path / "2024").mkdir()
    (tmp_path / "2024" / "manifest.json").write_text("{}")
    (tmp_path / "editions.json").write_text("{}")
    (tmp_path / "workspace.duckdb").write_bytes(b"")
    with pytest.raises(StclustersError, match="an editions folder, not one run") as info:
        open_run(tmp_path)
    assert str(tmp_path / "2024") in info.value.hint
