"""``stclusters serve`` at the HTTP level: the token guards every request, nothing outside
the explorer's own assets and API is served (traversal in every spelling, symlinks, run
files), request sizes are bounded, the run's files stay byte for byte as they were, a waiting
request gives way to a newer one, the re-cluster API gives what the engine gives for the same
parameters, and the command stops cleanly on Ctrl-C and SIGTERM."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.csv as pacsv
import pytest

import stclusters
from stclusters import synthetic
from stclusters.serve import app as serve_app
from stclusters.serve import explorer as serve_app_explorer
from stclusters.serve.app import MAX_BODY_BYTES, MAX_URL_BYTES, start_server
from test_report import N_PER_SOURCE
from test_report import TOP_N as report_top_n

TOP_N = report_top_n
#: The served run's own radius (km) and core threshold (% of the world total) per metric:
#: different radii, thresholds that no slider position gives.
RUN_EPS_KM = {"patent": 13.0, "publication": 9.0}
RUN_SHARE_PCT = {"patent": 0.0237, "publication": 0.0311}


def make_serve_run(base: Path) -> tuple[Path, Path]:
    """The report tests' SYNTHETIC world ranked with a radius and threshold per metric
    (:data:`RUN_EPS_KM`), and its input (built once per session and shared with the browser
    test)."""
    world, run = base / "report_world.parquet", base / "serve_run"
    if (run / "manifest.json").is_file():
        return world, run
    if not world.is_file():
        synthetic.write_synthetic_world(world, n_per_source=N_PER_SOURCE, seed=11)
    params = stclusters.RankParams(top_n=TOP_N)
    for m, eps in RUN_EPS_KM.items():
        params = params.with_source(m, eps_km=eps, min_weight_share_pct=RUN_SHARE_PCT[m])
    stclusters.rank([world], params=params, label=synthetic.SYNTHETIC_LABEL).write(run)
    return world, run


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    world, run = make_serve_run(tmp_path_factory.getbasetemp())
    (run / "passwd-link").unlink(missing_ok=True)
    before = _digests(run)
    (run / "passwd-link").symlink_to("/etc/passwd")
    server = start_server(run)
    try:
        yield server, world, run
    finally:
        server.shutdown()
        (run / "passwd-link").unlink()
        # Read-only: every file of the run is as it was, and nothing was added (no WAL).
        assert _digests(run) == before


def _request(server, method: str, target: str, *, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{server.port}", **(headers or {})}
        if body is not None:
            hdrs.setdefault("Content-Length", str(len(body)))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def _get(server, target: str, **kw) -> tuple[int, bytes]:
    return _request(server, "GET", target, **kw)


def _cluster(server, query: str) -> dict:
    status, body = _get(server, f"/{server.token}/api/cluster?{query}")
    assert status == 200, body
    return json.loads(body)


def test_the_token_is_required_on_every_request(served):
    server, _, _ = served
    t = server.token
    assert len(t) >= 32 and server.url.endswith(f"/{t}/")
    for name in ("", "explorer.js", "explorer.css", "outlines.json", "api/run"):
        assert _get(server, f"/{t}/{name}")[0] == 200, name
        wrong = ("A" if t[0] != "A" else "B") + t[1:]
        for target in (f"/{name}", f"/{wrong}/{name}", f"/{t}x/{name}", f"/{t[:-1]}/{name}",
                       f"/x/{t}/{name}", f"/{name}?token={t}"):
            status, body = _get(server, target)
            assert status == 403, (target, status)
            assert b"token" in body and b"stclusters" not in body.replace(b"stclusters serve", b"")
    assert _get(server, f"/{t}")[0] == 403  # the token is a whole path segment
    # Another site's page reaching the port by DNS rebinding names its own host.
    assert _get(server, f"/{t}/api/run", headers={"Host": f"evil.example:{server.port}"})[0] \
        == 403
    assert _request(server, "PUT", f"/{t}/api/run", body=b"")[0] == 405
    assert _request(server, "DELETE", f"/{t}/")[0] == 405


def test_nothing_but_its_own_assets_is_served(served):
    server, _, run = served
    t = server.token
    secrets_on_disk = [Path("/etc/passwd").read_bytes()[:30], b"DUCK",
                       (run / "manifest.json").read_bytes()[:40]]
    targets = [f"/{t}/../{t}/explorer.js", f"/{t}/%2e%2e/%2e%2e/etc/passwd",
               f"/{t}/..%2f..%2fetc%2fpasswd", f"/{t}/%2E%2E%2Fmanifest.json",
               f"/{t}//etc/passwd", f"/{t}/./explorer.js", f"/{t}/explorer.js/..",
               f"/{t}/assets/explorer.js", f"/{t}/serve/assets/explorer.js",
               f"/{t}/workspace.duckdb", f"/{t}/manifest.json", f"/{t}/ranking.csv",
               f"/{t}/passwd-link", f"/{t}/..\\..\\manifest.json", f"/{t}/C:/Windows/win.ini",
               f"/{t}/%00explorer.js", f"/{t}/explorer.js%00", f"/{t}/EXPLORER.JS",
               f"http://127.0.0.1:{server.port}/etc/passwd", "/etc/passwd", "*",
               f"/{t}/api/../../etc/passwd", f"/{t}/api/run/../../workspace.duckdb"]
    for target in targets:
        status, body = _get(server, target)
        assert status in (403, 404), (target, status)
        assert not any(s in body for s in secrets_on_disk), target
        assert len(body) < 200, target


def test_request_sizes_are_bounded(served):
    server, _, _ = served
    t = server.token
    long = f"/{t}/api/cluster?eps_km=13&pad=" + "x" * MAX_URL_BYTES
    assert _get(server, long)[0] == 414
    big = b"eps_km=13&pad=" + b"x" * MAX_BODY_BYTES
    assert _request(server, "POST", f"/{t}/api/cluster", body=big,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})[0] == 413
    # A length announced but never sent is refused before anything is read.
    t0 = time.perf_counter()
    assert _request(server, "POST", f"/{t}/api/cluster", body=b"",
                    headers={"Content-Length": str(10**9)})[0] == 413
    assert time.perf_counter() - t0 < 5
    assert _request(server, "POST", f"/{t}/api/cluster", body=b"x",
                    headers={"Content-Length": "-5"})[0] == 413
    assert _request(server, "POST", f"/{t}/api/cluster", body=b"0\r\n\r\n",
                    headers={"Transfer-Encoding": "chunked"})[0] == 411
    # A small POST is fine (form or JSON), and says what is wrong with its values.
    status, body = _request(server, "POST", f"/{t}/api/cluster", body=b'{"eps_km": "abc"}',
                            headers={"Content-Type": "application/json"})
    assert status == 400 and b"eps_km" in body and b"not a number" in body
    status, body = _get(server, f"/{t}/api/cluster?eps_km=0&min_weight_patent=-1&colour=red")
    msg = json.loads(body)["error"]
    assert status == 400 and all(s in msg for s in ("eps_km=0", "min_weight_patent=-1",
                                                    "colour: unknown"))
    status, body = _get(server, f"/{t}/api/cluster?weight_patent=0&weight_publication=0")
    assert status == 400 and b"nothing to cluster" in body
    # Which of two radii was meant cannot be guessed.
    status, body = _get(server, f"/{t}/api/cluster?eps_km=20&eps_km=30")
    assert status == 400 and json.loads(body)["error"] == "given twice: eps_km"


def test_run_api_is_the_runs_ranking(served):
    server, _, run = served
    status, body = _get(server, f"/{server.token}/api/run")
    data = json.loads(body)
    ranking = pacsv.read_csv(run / "ranking.csv").to_pylist()
    assert [c["cluster_id"] for c in data["clusters"]] == [r["cluster_id"] for r in ranking]
    assert all(c["footprint"] for c in data["clusters"])
    ex = data["explorer"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert ex["n_points"] > 0 and ex["metrics"] == ["patent", "publication"]
    for m in ex["metrics"]:
        share = manifest["parameters"]["sources"][m]["min_weight_share_pct"]
        assert ex["sliders"]["min_weight"][m]["value"] == pytest.approx(
            manifest["world_totals"][m] * share / 100)
    assert data["label"].startswith("SYNTHETIC")


#: A radius; a radius, a threshold (a threshold sweep) and a weight; a metric left out; the
#: first radius again with another weight (the clusters of the first, kept, re-scored).
SETTINGS = ["eps_km=40", "eps_km=8&min_weight_patent=2.5&weight_publication=0.4",
            "weight_patent=0&min_weight_publication=3", "eps_km=40&weight_publication=0.5",
            "eps_km_patent=20", ""]


@pytest.fixture(scope="module")
def located(served):
    _, world, _ = served
    return stclusters.read([world])


@pytest.mark.parametrize("query", SETTINGS)
def test_recluster_equals_the_engine(served, located, query):
    server, _, _ = served
    reply = _cluster(server, query)
    params = server.explorer.params_for(
        dict(p.split("=") for p in query.split("&") if p))
    res = located.rank(params, label=synthetic.SYNTHETIC_LABEL)
    engine = res.ranking.to_pylist()[:TOP_N]
    got = reply["clusters"]
    assert [c["cluster_id"] for c in got] == [r["cluster_id"] for r in engine]
    assert [c["rank"] for c in got] == [r["rank"] for r in engine]
    for c, r in zip(got, engine):
        assert c["score_pct"] == pytest.approx(r["score_pct"], abs=1e-6)
        for m in ("patent", "publication"):
            assert c["share_pct"][m] == pytest.approx(r[f"{m}_share_pct"], abs=1e-6)
            assert c["weight"][m] == pytest.approx(r[f"{m}_weight"], abs=1e-6)
        if c["same_as_run"]:  # the run's own cluster, weights and name
            assert c["name"] == r["name"] and c["economy"] == r["economy"]
        else:  # named after its predecessor, and says so
            assert c["name"].startswith("~ ") or c["name"] == c["cluster_id"]
    if query == "":
        assert all(c["same_as_run"] for c in got)
    n_engine = res.con.execute("SELECT count(*) FROM clusters").fetchone()[0]
    assert reply["n_clusters"] == n_engine
    assert reply["seq"] is None and set(reply["counts"]) == {"merged", "split", "entered",
                                                             "left"}
    assert _cluster(server, query + "&seq=7")["cached"] is True


def test_the_runs_own_setting_changes_nothing(served):
    server, _, run = served
    reply = _cluster(server, "seq=3")
    ranking = pacsv.read_csv(run / "ranking.csv").to_pylist()
    assert [(c["rank"], c["cluster_id"], c["name"], c["economy"]) for c in reply["clusters"]] \
        == [(r["rank"], r["cluster_id"], r["name"], r["economy"]) for r in ranking]
    for c, r in zip(reply["clusters"], ranking):
        assert c["score_pct"] == pytest.approx(r["score_pct"], abs=1e-6)
        assert c["n_core_points"] == r["n_core_points"]
    assert reply["counts"] == {"merged": 0, "split": 0, "entered": 0, "left": 0}
    assert {c["status"] for c in reply["clusters"]} == {"continued"}
    assert all(c["same_as_run"] for c in reply["clusters"]) and reply["seq"] == 3


def test_changes_are_counted_against_the_run(served):
    server, _, run = served
    top = {r["cluster_id"] for r in pacsv.read_csv(run / "ranking.csv").to_pylist()}
    wide, narrow = _cluster(server, "eps_km=40"), _cluster(server, "eps_km=6")
    for reply in (wide, narrow):
        status = [c["status"] for c in reply["clusters"]]
        assert reply["counts"] == {"merged": status.count("merged"),
                                   "split": status.count("split"),
                                   "entered": status.count("entered") + status.count("new"),
                                   "left": len(reply["left"])}
        assert {x["prev_cluster_id"] for x in reply["left"]} <= top
        for c in reply["clusters"]:
            if c["status"] in ("continued", "merged", "split"):
                assert c["prev_cluster_id"] is not None
    assert wide["counts"]["merged"] >= 1 and narrow["counts"]["split"] >= 1


def test_a_run_with_a_radius_per_metric_is_reproduced(served):
    server, _, run = served
    ex = server.explorer
    # The run's own radii, not one forced on every metric.
    assert {m: ex.params_for({}).source(m).eps_km for m in ex.metrics} == RUN_EPS_KM
    sl = ex.sliders()
    assert {m: sl["eps_km"][m]["value"] for m in ex.metrics} == RUN_EPS_KM
    # Moving one metric's radius leaves the other's as the run had it.
    p = ex.params_for({"eps_km_publication": "5"})
    assert (p.source("patent").eps_km, p.source("publication").eps_km) == (13.0, 5.0)
    # The run's exact thresholds, as the page sends them for untouched controls (nothing):
    # the run as ranked.
    assert _cluster(server, "client=a")["counts"] == {"merged": 0, "split": 0, "entered": 0,
                                                      "left": 0}


def test_slider_ranges_hold_the_runs_values_and_are_accepted(served):
    server, _, _ = served
    ex = server.explorer
    sl = ex.sliders()
    specs = [(f"eps_km_{m}", sl["eps_km"][m]) for m in ex.metrics] + \
        [(f"min_weight_{m}", sl["min_weight"][m]) for m in ex.metrics] + \
        [(f"weight_{m}", sl["weight"][m]) for m in ex.metrics]
    for key, spec in specs:
        assert spec["min"] <= spec["value"] <= spec["max"], key
        step = spec.get("step")
        if isinstance(step, float):  # the run's value sits on a step
            n = (spec["value"] - spec["min"]) / step
            assert n == pytest.approx(round(n)), key
        for end in (spec["min"], spec["max"]):  # both ends are accepted by the server
            ex.params_for({key: repr(end)})
    assert serve_app_explorer._step(13.3 - 0.5, 0.5) == "any"
    assert serve_app_explorer._step(12.5, 0.5) == 0.5


def test_run_api_sends_only_what_the_page_reads(served):
    server, world, _ = served
    status, body = _get(server, f"/{server.token}/api/run")
    data = json.loads(body)
    assert status == 200 and set(data) <= {*serve_app.RUN_KEYS, "explorer"}
    assert "manifest" not in data and "parameters" not in data["explorer"]
    assert str(world.parent).encode() not in body  # no local path of the run's inputs


def test_unknown_methods_and_odd_requests_get_the_same_headers(served):
    server, _, _ = served
    t = server.token
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("TRACE", f"/{t}/api/run")
        res = conn.getresponse()
        res.read()
    finally:
        conn.close()
    assert res.status == 405 and res.getheader("X-Frame-Options") == "DENY"
    assert res.getheader("Content-Security-Policy")
    # Transfer-Encoding is refused whatever the method.
    assert _get(server, f"/{t}/api/run", headers={"Transfer-Encoding": "chunked"})[0] == 411
    # HEAD never re-clusters.
    computed = server.explorer.evaluator.evaluate
    calls = []
    server.explorer.evaluator.evaluate = lambda p: calls.append(p) or computed(p)
    try:
        assert _request(server, "HEAD", f"/{t}/api/cluster?eps_km=31")[0] == 405
        assert _request(server, "HEAD", f"/{t}/api/run")[0] == 200
    finally:
        del server.explorer.evaluator.evaluate
    assert calls == []
    # Host: an IPv6 loopback with or without a port, never a name that only starts so.
    for host, want in (("[::1]", 200), (f"[::1]:{server.port}", 200), ("localhost", 200),
                       ("127.0.0.1.evil.example", 403), ("[::1", 403)):
        assert _get(server, f"/{t}/api/run", headers={"Host": host})[0] == want, host


def test_idle_connections_are_closed_and_capped(served):
    server, _, _ = served
    handler = server.httpd.RequestHandlerClass
    handler.timeout = 0.5
    taken = serve_app.MAX_CONNECTIONS - 3  # leave three slots free
    for _ in range(taken):
        assert server.httpd._slots.acquire(blocking=False)
    socks = []
    try:
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5)
                 for _ in range(4)]
        assert socks[3].recv(1) == b""  # over the cap: closed at once, unread
        t0 = time.monotonic()
        assert socks[0].recv(1) == b""  # silent: closed after the timeout
        assert time.monotonic() - t0 < 3
        time.sleep(0.3)
        assert _get(server, f"/{server.token}/")[0] == 200  # the slots came back
    finally:
        for s in socks:
            s.close()
        handler.timeout = serve_app.IDLE_TIMEOUT_S
        for _ in range(taken):
            server.httpd._slots.release()


def test_the_browser_is_sent_a_private_file_not_the_token(served, monkeypatch):
    from typer.testing import CliRunner  # noqa: PLC0415

    from stclusters import _cli_serve  # noqa: PLC0415
    from stclusters.cli import app  # noqa: PLC0415

    _, _, run = served
    opened = []

    def fake_open(url):
        path = Path(url.removeprefix("file://"))
        opened.append((url, path.stat().st_mode & 0o777, path.read_text()))

    monkeypatch.setattr(_cli_serve.webbrowser, "open", fake_open)
    monkeypatch.setattr(_cli_serve.StopSignals, "wait", lambda self: "SIGTERM")
    res = CliRunner().invoke(app, ["serve", str(run)])
    assert res.exit_code == 0, res.output
    token = res.output.split(" at ", 1)[1].split()[0].rstrip("/").rsplit("/", 1)[1]
    (url, mode, text), = opened
    assert url.startswith("file://") and token not in url and mode == 0o600
    assert f"/{token}/" in text and not Path(url.removeprefix("file://")).exists()


class _SlowExplorer:
    """Stands in for the explorer: each re-clustering waits for ``go``."""

    metrics = ["patent"]

    def __init__(self) -> None:
        self.go = threading.Event()
        self.started = threading.Event()
        self.computed: list[float] = []

    def params_for(self, query):
        return stclusters.RankParams().with_source("patent", eps_km=float(query["eps_km"]))

    def recluster(self, params):
        self.started.set()
        self.go.wait(10)
        self.computed.append(params.source("patent").eps_km)
        return {"timing_ms": {}}


def test_another_client_never_supersedes_and_a_known_setting_does_not_wait():
    ex = _SlowExplorer()
    compute = serve_app._Compute(ex)
    ex.go.set()
    compute({"eps_km": "9"})  # cached
    ex.go.clear()
    ex.started.clear()
    out: dict[float, object] = {}

    def ask(eps: float, client: str) -> None:
        try:
            out[eps] = compute({"eps_km": str(eps)}, client=client)
        except serve_app.Superseded:
            out[eps] = "superseded"

    first = threading.Thread(target=ask, args=(10.0, "a"))
    first.start()
    assert ex.started.wait(5)
    t0 = time.monotonic()
    assert compute({"eps_km": "9"}, client="b")["cached"] is True  # no wait for the lock
    assert time.monotonic() - t0 < 1
    waiting = [threading.Thread(target=ask, args=a) for a in ((11.0, "b"), (12.0, "a"))]
    for th in waiting:
        th.start()
        time.sleep(0.05)  # in this order
    ex.go.set()
    for th in (first, *waiting):
        th.join(10)
    assert sorted(ex.computed) == [9.0, 10.0, 11.0, 12.0] and out[11.0]["cached"] is False


def test_a_waiting_request_gives_way_to_a_newer_one():
    ex = _SlowExplorer()
    compute = serve_app._Compute(ex)
    out: dict[float, object] = {}

    def ask(eps: float) -> None:
        try:
            out[eps] = compute({"eps_km": str(eps)})
        except serve_app.Superseded:
            out[eps] = "superseded"

    first = threading.Thread(target=ask, args=(10.0,))
    first.start()
    assert ex.started.wait(5)
    waiting = [threading.Thread(target=ask, args=(e,)) for e in (11.0, 12.0)]
    for th in waiting:
        th.start()
        time.sleep(0.05)  # in this order
    ex.go.set()
    for th in (first, *waiting):
        th.join(10)
    assert ex.computed == [10.0, 12.0] and out[11.0] == "superseded"
    assert out[12.0]["cached"] is False and compute({"eps_km": "12"})["cached"] is True


def test_shutdown_releases_the_port(served):
    _, _, run = served
    server = start_server(run)
    port = server.port
    assert _get(server, f"/{server.token}/")[0] == 200
    server.shutdown()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_command_waits_for_ctrl_c_or_sigterm(sig):
    from stclusters._cli_serve import StopSignals  # noqa: PLC0415

    before = signal.getsignal(sig)
    with StopSignals() as signals:
        threading.Timer(0.3, os.kill, (os.getpid(), sig)).start()
        assert signals.wait() == sig.name
    assert signal.getsignal(sig) is before  # handlers put back


def test_command_stops_cleanly_on_ctrl_c(served):
    sig = signal.SIGINT
    _, _, run = served
    port = _free_port()
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "stclusters", "serve", str(run), "--port",
                             str(port), "--no-browser"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {run} at http://127.0.0.1:{port}/"), line
        token = line.rstrip().rstrip("/").rsplit("/", 1)[1]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", f"/{token}/api/run")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(sig)
        out, errs = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, errs
    assert f"stopped ({sig.name}): port {port} released" in out
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_command_warns_off_loopback_and_refuses_bad_runs(tmp_path):
    from typer.testing import CliRunner  # noqa: PLC0415

    from stclusters.cli import app  # noqa: PLC0415

    res = CliRunner().invoke(app, ["serve", str(tmp_path), "--host", "0.0.0.0",
                                   "--no-browser"])
    assert res.exit_code == 2
    assert "not a loopback address" in res.output and "not a run folder" in res.output
    res = CliRunner().invoke(app, ["serve", "--help"])
    assert res.exit_code == 0 and "Example: stclusters serve out" in res.output
