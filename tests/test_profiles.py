"""Cluster profiles (issue 9 §4): an independent plain-Python computation on generated
documents, the real samples, the WIPO concordance, determinism, outputs and the CLI."""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import stclusters
from stclusters import demo
from stclusters.analysis import profiles as P
from stclusters.analysis._wipo_fields import concordance, fields, parse_symbol, wipo_field
from stclusters.cli import app
from stclusters.contributions import WEIGHT_SCALE
from stclusters.errors import ParameterError
from stclusters.params import RankParams

from conftest import SHARED_DATA

runner = CliRunner()

# --------------------------------------------------------------------------- concordance


@pytest.mark.parametrize("code, field", [
    ("H01L", "Semiconductors"), ("H01L 21/02", "Semiconductors"),
    ("A61K", "Pharmaceuticals"), ("A61K 31/00", "Pharmaceuticals"),
    ("A61K 8/02", "Organic fine chemistry"), ("A61Q", "Organic fine chemistry"),
    ("G06F", "Computer technology"), ("G06Q", "IT methods for management"),
    ("G01N 21/64", "Measurement"), ("G01N  33/53", "Analysis of biological materials"),
    ("H04N 1/00", "Telecommunications"), ("H04N 7/18", "Telecommunications"),
    ("H04N 5/225", "Audio-visual technology"),
    ("H04N21/234", "Digital communication"), ("H04L", "Digital communication"),
    ("B01D 53/94", "Environmental technology"), ("B01D 15/08", "Chemical engineering"),
    ("C12N", "Biotechnology"), ("B60W", "Transport"), ("E04B", "Civil engineering"),
    ("A63F", "Furniture, games"), ("F16H", "Mechanical elements"), ("g02b", "Optics"),
])
def test_concordance_spot_checks(code, field):
    assert wipo_field(code).field == field


def test_concordance_has_the_35_fields_and_unmapped_codes_stay_unmapped():
    assert [f.field_no for f in fields()] == list(range(1, 36))
    assert len({f.field for f in fields()}) == 35
    assert {f.sector for f in fields()} == {"Electrical engineering", "Instruments", "Chemistry",
                                            "Mechanical engineering", "Other fields"}
    assert wipo_field("Y02E 10/50") is None          # CPC tagging: a symbol, in no field
    assert parse_symbol("Y02E 10/50") == ("Y02E", 10)
    assert wipo_field("Physics") is None and parse_symbol("Physics") is None
    assert wipo_field("semiconductors").basis == "field name"
    # Every row's basis is said; ours are the few subclasses the published table lacks.
    ours = sorted(k for k, v in concordance().items() if v.basis == "stclusters")
    assert "H10K" in ours and "G06V" in ours and len(ours) < 25
    assert all(v.basis in ("WIPO", "stclusters") for v in concordance().values())


# --------------------------------------------------------------------------- generated world

#: Cluster centres (lat, lon, economies drawn for their rows) and isolated places.
_CITIES = {"tokyo": (35.68, 139.69, ["JP"]), "shenzhen": (22.54, 114.06, ["CN", "CN", "HK"]),
           "munich": (48.14, 11.58, ["DE"]), "boston": (42.36, -71.06, ["US"]),
           "osaka": (34.69, 135.50, ["JP"])}  # with Tokyo: outside the cluster, not abroad
_APPLICANTS = ["Acme", "Borealis", "Cyberdyne", "Dynamo", "Eon", "Fuji", "Globex", None]
_CODES = ["A61K 8/02", "A61K 31/00", "H04N 21/234", "H04N 5/225", "G01N 33/53", "H01L",
          "G06F 3/01", "Y02E 10/50", "B01D 53/94", "my own category", None]
_SCI = ["Physics and Astronomy", "Medicine", "Computer Science", None]


def _jitter(rng: random.Random, lat: float, lon: float, km: float) -> tuple[float, float]:
    return (round(lat + rng.uniform(-km, km) / 111.0, 4),
            round(lon + rng.uniform(-km, km) / 85.0, 4))


def _generated_rows(seed: int) -> list[dict]:
    """Documents with contributors mostly at their lead city, some in another cluster, some
    at isolated places (no cluster), some unlocated; applicants and IPC/CPC codes per patent,
    institutions and fields per publication."""
    rng = random.Random(seed)
    rows = []
    names = list(_CITIES)
    for source, n_docs in (("patent", 260), ("publication", 260)):
        for d in range(n_docs):
            lead = rng.choice(names)
            doc = {"doc_id": f"{source[:3]}{d}", "source": source, "year": 2020,
                   "applicant": rng.choice(_APPLICANTS) if source == "patent" else None,
                   "tech_field": rng.choice(_CODES if source == "patent" else _SCI)}
            for seq in range(rng.randint(1, 4)):
                u = rng.random()
                row = dict(doc, contributor_seq=seq, lat=None, lon=None, country=None, org=None,
                           institution_id=None)
                if u < 0.05:
                    rows.append(row)  # unlocated: filtered, never seen by a profile
                    continue
                if u < 0.15:  # an isolated place, far from any other: no cluster
                    row.update(lat=round(60 + rng.randrange(40) * 0.6, 4), lon=25.0, country="FI")
                else:
                    city = lead if u < 0.85 else rng.choice(names)
                    lat, lon, economies = _CITIES[city]
                    row["lat"], row["lon"] = _jitter(rng, lat, lon, 3.0)
                    row["country"] = rng.choice(economies)
                    if source == "publication" and rng.random() < 0.9:
                        k = rng.randrange(4)
                        row.update(institution_id=f"I{city}{k}", org=f"Institute {k} of {city}")
                rows.append(row)
    return rows


def _write_table(rows: list[dict], path: Path) -> Path:
    cols = ["doc_id", "source", "year", "contributor_seq", "lat", "lon", "country", "org",
            "institution_id", "applicant", "tech_field"]
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in cols}), path)
    return path


_PARAMS = (RankParams(top_n=50)
           .with_source("patent", min_weight=4.0, eps_km=13.0)
           .with_source("publication", min_weight=4.0, eps_km=13.0))


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = _write_table(_generated_rows(11), tmp_path_factory.mktemp("gen") / "world.parquet")
    res = stclusters.rank([path], params=_PARAMS)
    return res, P.build_profiles(res, top_k=3)


def _oracle(res, *, top_k: int) -> dict:
    """Plain Python: the expected rows ``(rank, facet, source, key) → (fx, n_docs)`` and the
    collaboration counts, from the run's used contributions and its points' clusters."""
    stc_of = {(r["source"], r["lat"], r["lon"]): r["stc"] for r in res.table("points").to_pylist()}
    clusters = {r["stc"]: r for r in res.table("clusters").to_pylist()}
    ranked = {r["cluster_id"] for r in res.ranking.to_pylist()}
    used = [r for r in res.table("contributions").to_pylist() if r["status"] == "used"]
    for r in used:
        r["stc"] = stc_of[(r["source"], r["lat"], r["lon"])]
    inside = [r for r in used if r["stc"] >= 0 and clusters[r["stc"]]["cluster_id"] in ranked]
    expected: dict = {}

    def facet(name: str, key_of, sources) -> None:
        groups = defaultdict(list)
        for r in inside:
            if r["source"] in sources:
                groups[(r["stc"], r["source"])].append(r)
        for (stc, source), rs in groups.items():
            by_key = defaultdict(int)
            for r in rs:
                kind, key = key_of(r)
                if kind == "value":
                    by_key[key] += r["weight_fx"]
            top = sorted(by_key, key=lambda k: (-by_key[k], k))[:top_k]
            buckets = defaultdict(lambda: [0, set()])
            for r in rs:
                kind, key = key_of(r)
                bucket = (key if key in top else P.OTHER) if kind == "value" else key
                buckets[bucket][0] += r["weight_fx"]
                buckets[bucket][1].add(r["doc_id"])
            for key, (fx, docs) in buckets.items():
                expected[(clusters[stc]["rank"], name, source, key)] = (fx, len(docs))

    def code_key(r):
        if r["tech_field"] is None:
            return "none", P.NONE
        hit = wipo_field(r["tech_field"])
        if hit is not None:
            return "value", f"{hit.field_no:02d}"
        return ("unmapped", P.UNMAPPED) if parse_symbol(r["tech_field"]) else (
            "value", r["tech_field"])

    def plain(column: str):
        return lambda r: ("none", P.NONE) if r[column] is None else ("value", r[column])

    facet("applicant", plain("applicant"), {"patent"})
    facet("institution", plain("institution_id"), {"publication"})
    facet("tech_field", code_key, {"patent"})
    facet("sci_field", plain("tech_field"), {"publication"})
    facet("economy", plain("country"), {"patent", "publication"})
    # Collaboration: per document of a cluster, any used contribution elsewhere (outside),
    # and elsewhere in an economy none of its in-cluster contributions is in (abroad).
    by_doc = defaultdict(list)
    for r in used:
        by_doc[(r["source"], r["doc_id"])].append(r)
    collab = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    for (source, doc_id), rs in by_doc.items():
        for stc in {r["stc"] for r in rs if r["stc"] >= 0 and clusters[r["stc"]]["cluster_id"]
                    in ranked}:
            mine = [r for r in rs if r["stc"] == stc]
            others = [r for r in rs if r["stc"] != stc]
            here = {r["country"] for r in mine}
            abroad = any(r["country"] is not None and r["country"] not in here for r in others)
            fx = sum(r["weight_fx"] for r in mine)
            c = collab[(clusters[stc]["rank"], source)]
            c[0] += 1
            c[1] += fx
            if others:
                c[2] += 1
                c[3] += fx
            if abroad:
                c[4] += 1
                c[5] += fx
    for (rank, source), (n, fx, n_out, fx_out, n_abr, fx_abr) in collab.items():
        expected[(rank, "collaboration", source, "documents")] = (fx, n)
        expected[(rank, "collaboration", source, "outside_cluster")] = (fx_out, n_out)
        expected[(rank, "collaboration", source, "abroad")] = (fx_abr, n_abr)
    return expected


@pytest.mark.parametrize("top_k", [1, 3, 50])
def test_profiles_match_an_independent_computation(generated, top_k):
    res, table = generated
    if top_k != 3:
        table = P.build_profiles(res, top_k=top_k)
    expected = _oracle(res, top_k=top_k)
    got = {(r["rank"], r["facet"], r["source"], r["key"]): r for r in table.to_pylist()
           if r["facet"] in ("applicant", "institution", "tech_field", "sci_field",
                             "collaboration") or (r["facet"] == "economy"
                                                  and r["source"] != P.ALL_SOURCES)}
    got = {k: v for k, v in got.items() if k[3] != P.NOT_IN_SOURCE}
    assert set(got) == set(expected)
    for k, (fx, n_docs) in expected.items():
        assert got[k]["n_docs"] == n_docs, k
        assert got[k]["weight"] == pytest.approx(fx / WEIGHT_SCALE, rel=1e-12, abs=1e-12), k
    # The generated world exercises every case the rule distinguishes.
    keys = {k[3] for k in expected}
    assert {P.NONE, P.UNMAPPED, "abroad"} <= keys
    assert (P.OTHER in keys) == (top_k < 10)
    assert top_k < 50 or "my own category" in keys  # text that is no code: kept as given
    assert any(k[3] == "abroad" and v[1] > 0 for k, v in expected.items())
    assert any(k[3] == "outside_cluster" and v[1] > expected[(*k[:3], "abroad")][1]
               for k, v in expected.items() if k[2] == "patent")


def test_each_facet_partitions_the_clusters_weight(generated):
    res, table = generated
    ranking = {r["rank"]: r for r in res.ranking.to_pylist()}
    sums = defaultdict(float)
    for r in table.to_pylist():
        if r["facet"] not in ("collaboration", "growth") and r["weight"] is not None:
            sums[(r["rank"], r["facet"], r["source"])] += r["weight"]
    assert sums
    for (rank, facet, source), total in sums.items():
        row = ranking[rank]
        want = (row["patent_weight"] + row["publication_weight"] if source == P.ALL_SOURCES
                else row[f"{source}_weight"])
        assert total == pytest.approx(want, rel=1e-9), (rank, facet, source)


def test_not_in_source_rows_name_the_missing_column(generated):
    _, table = generated
    rows = [r for r in table.to_pylist() if r["key"] == P.NOT_IN_SOURCE]
    got = {(r["facet"], r["source"]) for r in rows}
    # The patents carry no institution, the publications no applicant, and no work in
    # this table has an OpenAlex topic domain.
    assert got == {("institution", "patent"), ("applicant", "publication"),
                   ("sci_domain", "publication")}
    assert all(r["weight"] is None and r["note"].startswith("the ") for r in rows)


def test_growth_from_an_editions_table(generated):
    res, _ = generated
    first, second = res.ranking.column("cluster_id").to_pylist()[:2]
    editions = pa.table({"edition": ["2021", "2022"], "cluster_id": [first, first],
                         "prev_rank": [None, 3], "move": [None, 2],
                         "patent_growth_pct": [None, 23.5],
                         "publication_growth_pct": [None, -4.0]})
    table = P.build_profiles(res, editions=editions)
    growth = [r for r in table.to_pylist() if r["facet"] == "growth"]
    mine = [(r["source"], r["key"], r["growth_pct"]) for r in growth if r["cluster_id"] == first]
    assert mine == [("patent", "2021", None), ("patent", "2022", 23.5),
                    ("publication", "2021", None), ("publication", "2022", -4.0)]
    assert [r["label"] for r in growth if r["cluster_id"] == first][1] == "move 2, previous rank 3"
    assert [r["key"] for r in growth if r["cluster_id"] == second] == [P.NOT_MATCHED]
    # Without editions, every cluster says so.
    plain = P.build_profiles(res)
    assert {r["key"] for r in plain.to_pylist() if r["facet"] == "growth"} == {P.NO_EDITIONS}


def test_profile_object_by_rank_id_and_name(generated):
    res, _ = generated
    top = res.ranking.to_pylist()[0]
    by_rank = P.profile(res, 1)
    assert P.profile(res, top["cluster_id"]).rows == by_rank.rows
    assert P.profile(res, top["name"].upper()).cluster_id == top["cluster_id"]
    d = by_rank.to_dict()
    assert d["cluster_id"] == top["cluster_id"] and set(d["facets"]) >= {"economy", "collaboration"}
    json.dumps(d)  # JSON-ready
    text = str(by_rank)
    assert text.startswith(f"#1 {top['name']}") and "collaboration (patent):" in text
    with pytest.raises(ParameterError, match="no ranked cluster is named"):
        P.profile(res, "Atlantis")
    with pytest.raises(ParameterError, match="no ranked cluster has rank 999"):
        P.profile(res, 999)


def test_profiles_are_byte_identical_whatever_the_row_order(tmp_path):
    rows = _generated_rows(5)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    outs = []
    for tag, rs in (("a", rows), ("b", shuffled)):
        path = _write_table(rs, tmp_path / f"{tag}.parquet")
        res = stclusters.rank([path], params=_PARAMS)
        outs.append(res.write(tmp_path / f"out-{tag}"))
    for name in ("profiles.csv", "profiles.parquet"):
        assert outs[0][name].read_bytes() == outs[1][name].read_bytes()


# --------------------------------------------------------------------------- real samples


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    inputs = demo.sample_inputs(SHARED_DATA)
    res = stclusters.rank(inputs.all, params=demo.sample_params())
    out = tmp_path_factory.mktemp("samples") / "out"
    res.write(out)
    return res, out


def test_every_ranked_sample_cluster_has_a_profile(sample_run):
    res, out = sample_run
    table = pq.read_table(out / "profiles.parquet")
    ranking = res.ranking.to_pylist()
    assert len(ranking) > 10
    rows = table.to_pylist()
    by_cluster = defaultdict(list)
    for r in rows:
        by_cluster[r["cluster_id"]].append(r)
    assert set(by_cluster) == {r["cluster_id"] for r in ranking}
    for c in ranking:
        mine = by_cluster[c["cluster_id"]]
        for source in ("patent", "publication"):
            weight = c[f"{source}_weight"]
            if weight == 0:
                assert not [r for r in mine if r["source"] == source]
                continue
            # Fractional counts: applicants never exceed the patent weight, and a facet's
            # rows (its top keys, other, none) and the economies each sum to the weight.
            for facet in ("applicant", "economy", "tech_field", "institution", "sci_field"):
                part = [r for r in mine if r["facet"] == facet and r["source"] == source
                        and r["weight"] is not None]
                if part:
                    assert all(r["weight"] <= weight * (1 + 1e-12) for r in part)
                    assert sum(r["weight"] for r in part) == pytest.approx(weight, rel=1e-9)
            economies = [r for r in mine if r["facet"] == "economy" and r["source"] == source]
            assert sum(r["weight"] for r in economies) == pytest.approx(weight, rel=1e-9)
        assert [r for r in mine if r["facet"] == "growth"][0]["key"] == P.NO_EDITIONS
    # What the real sources carry: USPTO grants name applicants and CPC/IPC subclasses
    # (mapped to WIPO fields), the 2022-shape OpenAlex works institutions and level-0
    # concepts, and neither an institution for patents nor a domain for works.
    patents = [r for r in rows if r["source"] == "patent"]
    assert any(r["facet"] == "applicant" and not r["key"].startswith("(") for r in patents)
    assert any(r["facet"] == "tech_field" and r["label"] == "Semiconductors" for r in patents)
    assert {r["key"] for r in patents if r["facet"] == "institution"} == {P.NOT_IN_SOURCE}
    pubs = [r for r in rows if r["source"] == "publication"]
    assert {r["key"] for r in pubs if r["facet"] == "sci_domain"} == {P.NOT_IN_SOURCE}
    assert any(r["facet"] == "sci_field" and r["note"] == "OpenAlex level-0 concept (work "
               "without primary topic)" for r in pubs)
    # The CSV holds the same rows, and the workspace the same table.
    with open(out / "profiles.csv", newline="", encoding="utf-8") as f:
        assert sum(1 for _ in csv.DictReader(f)) == len(rows)
    import duckdb

    con = duckdb.connect(str(out / "workspace.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM profiles").fetchall()[0][0] == len(rows)
    con.close()


def test_profile_command(sample_run):
    res, out = sample_run
    top = res.ranking.to_pylist()[0]
    r = runner.invoke(app, ["profile", "1", "--run", str(out)])
    assert r.exit_code == 0, r.output
    assert top["name"] in r.output and "collaboration" in r.output
    r = runner.invoke(app, ["profile", top["name"].lower(), "--run", str(out), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["cluster_id"] == top["cluster_id"] and d["rank"] == 1
    assert d["facets"]["economy"]["all"][0]["share_pct"] > 0
    names = [c["name"] for c in res.ranking.to_pylist()]
    twice = next((n.split(",")[0] for n in names
                  if sum(n.split(",")[0].lower() in m.lower() for m in names) > 1), None)
    if twice is not None:  # a name part shared by several clusters: refused, listing them
        r = runner.invoke(app, ["profile", twice, "--run", str(out)])
        assert r.exit_code == 2 and "ranked clusters:" in r.output
    r = runner.invoke(app, ["profile", "Atlantis", "--run", str(out)])
    assert r.exit_code == 2 and "no ranked cluster is named 'Atlantis'" in r.output
    r = runner.invoke(app, ["profile", "1", "--run", str(out.parent)])
    assert r.exit_code == 2 and "not a run folder" in r.output
    r = runner.invoke(app, ["profile", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output


def test_profile_of_a_run_without_profiles_table_is_built_read_only(sample_run, tmp_path):
    """A workspace written before profiles existed: built in memory, the file untouched."""
    import shutil

    import duckdb

    res, out = sample_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    con = duckdb.connect(str(old / "workspace.duckdb"))
    con.execute("DROP TABLE profiles")
    con.close()
    before = (old / "workspace.duckdb").read_bytes()
    prof = P.run_profile(old, 1)
    assert prof.rows == P.profile(res, 1).rows
    assert (old / "workspace.duckdb").read_bytes() == before


def test_a_labelled_run_labels_its_profiles(tmp_path):
    path = _write_table(_generated_rows(3), tmp_path / "w.parquet")
    res = stclusters.rank([path], params=_PARAMS, label="SYNTHETIC")
    paths = res.write(tmp_path / "out")
    table = pq.read_table(paths["profiles.parquet"])
    assert table.column_names[0] == "data_label"
    assert set(table.column("data_label").to_pylist()) == {"SYNTHETIC"}
    assert P.run_profile(tmp_path / "out", 1).data_label == "SYNTHETIC"
    r = runner.invoke(app, ["profile", "1", "--run", str(tmp_path / "out")])
    assert r.exit_code == 0 and "SYNTHETIC" in r.output


def test_a_run_without_clusters_writes_empty_profiles(tmp_path):
    path = _write_table(_generated_rows(3)[:10], tmp_path / "few.parquet")
    res = stclusters.rank([path], params=RankParams().with_source("patent", min_weight=1e6)
                          .with_source("publication", min_weight=1e6))
    paths = res.write(tmp_path / "out")
    table = pq.read_table(paths["profiles.parquet"])
    assert table.num_rows == 0 and table.schema.names == P.PROFILE_SCHEMA.names


def test_edition_profiles_carry_each_editions_growth(tmp_path):
    from stclusters.analysis.editions import rank_editions

    rows = _generated_rows(21)
    rng = random.Random(2)
    years = {}
    for r in rows:  # one year per document
        r["year"] = years.setdefault((r["source"], r["doc_id"]), rng.choice([2019, 2020, 2021]))
    path = _write_table(rows, tmp_path / "years.parquet")
    editions = {str(y): _PARAMS.with_source("patent", first_year=y - 1, last_year=y)
                .with_source("publication", first_year=y - 1, last_year=y) for y in (2020, 2021)}
    eds = rank_editions([path], editions)
    tables = P.build_edition_profiles(eds)
    assert set(tables) == {"2020", "2021"}
    moves = {r["cluster_id"]: r for r in eds.table.to_pylist() if r["edition"] == "2021"}
    growth = [r for r in tables["2021"].to_pylist() if r["facet"] == "growth"
              and r["source"] == "patent"]
    assert growth and {r["key"] for r in growth} == {"2021"}
    assert any(r["growth_pct"] is not None for r in growth)
    for r in growth:
        assert r["growth_pct"] == moves[r["cluster_id"]]["patent_growth_pct"]
    paths = eds.write(tmp_path / "out")
    written = pq.read_table(paths["2021/"] / "profiles.parquet")
    assert written.num_rows == tables["2021"].num_rows


def test_a_third_metric_gets_a_profile(tmp_path):
    """A further metric (VC deals located at the company: ``org``) is profiled like any
    source; what its table does not carry is said so."""
    rows = _generated_rows(4)
    rng = random.Random(9)
    for d in range(150):
        lat, lon, economies = _CITIES[rng.choice(list(_CITIES))]
        la, lo = _jitter(rng, lat, lon, 2.0)
        rows.append(dict(doc_id=f"vc{d}", source="vc_deal", year=2020, contributor_seq=0,
                         lat=la, lon=lo, country=economies[0], org=f"Startup {d % 7}",
                         institution_id=None, applicant=None, tech_field=None))
    path = _write_table(rows, tmp_path / "vc.parquet")
    res = stclusters.rank([path], params=_PARAMS.with_source("vc_deal", min_weight=4.0,
                                                               eps_km=13.0))
    table = P.build_profiles(res).to_pylist()
    ranking = {r["rank"]: r for r in res.ranking.to_pylist()}
    vc = [r for r in table if r["source"] == "vc_deal"]
    assert vc
    for rank in {r["rank"] for r in vc}:
        mine = [r for r in vc if r["rank"] == rank]
        economy = sum(r["weight"] for r in mine if r["facet"] == "economy")
        companies = sum(r["weight"] for r in mine if r["facet"] == "institution")
        assert economy == pytest.approx(ranking[rank]["vc_deal_weight"], rel=1e-9)
        assert companies == pytest.approx(ranking[rank]["vc_deal_weight"], rel=1e-9)
        assert {r["key"] for r in mine if r["facet"] in ("applicant", "tech_field")} == {
            P.NOT_IN_SOURCE}
    # Economies over all sources sum to the cluster's total weight of its three metrics.
    for rank, row in ranking.items():
        total = row["patent_weight"] + row["publication_weight"] + row["vc_deal_weight"]
        got = sum(r["weight"] for r in table if r["rank"] == rank and r["facet"] == "economy"
                  and r["source"] == P.ALL_SOURCES)
        assert got == pytest.approx(total, rel=1e-9)
