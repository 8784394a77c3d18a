"""Measure the live explorer in headless Chromium: time from a slider's input event to the
redrawn map (``performance.now()`` in the page, the explorer's own ``timings``), for
radius, threshold and weight changes; and the server's share of it.

    .venv/bin/python frontend/measure_serve.py RUN_DIR [--moves 4]

RUN_DIR is any finished run folder; for the figure of docs/serve.md, a SYNTHETIC world of
750,000 contributions per source (about a million distinct weighted points) ranked with the
defaults::

    python -c "from stclusters import synthetic; synthetic.write_synthetic_world('w.parquet',
               n_per_source=750_000, seed=7)"
    stclusters rank w.parquet --out big

Needs /usr/bin/chromium and the ``playwright`` package (no browser download). Each setting
is new to the server (its cache never answers); the first move of each slider also pays for
anything the kernels compile or warm up, and is reported apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from stclusters.serve.app import start_server

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: Move one slider to position ``pos`` (a fraction of its range) as an input event would.
MOVE_JS = """([key, frac]) => {
  const i = document.querySelector(`input[data-key='${key}']`);
  const lo = Number(i.min), hi = Number(i.max), step = Number(i.step) || 1;
  i.value = String(lo + Math.round((hi - lo) * frac / step) * step);
  i.dispatchEvent(new Event('input', { bubbles: true }));
  return i.value;
}"""


def _settle(page, seq: int) -> dict:
    page.wait_for_function(f"() => Number(document.body.dataset.seq || 0) >= {seq} && "
                           "!document.body.hasAttribute('data-busy')", timeout=120_000)
    return page.evaluate("() => window.stclustersExplorer.timings.at(-1)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--moves", type=int, default=4, help="moves per slider")
    args = ap.parse_args()
    t0 = time.perf_counter()
    server = start_server(args.run_dir)
    start_s = time.perf_counter() - t0
    ex = server.explorer
    metrics = ex.metrics
    fracs = [0.62, 0.58, 0.66, 0.54, 0.7, 0.5][: args.moves]
    keys = [*[f"eps_km_{m}" for m in metrics], *[f"min_weight_{m}" for m in metrics],
            *[f"weight_{m}" for m in metrics]]
    out: dict[str, list[dict]] = {k: [] for k in keys}
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            ctx = pw.chromium.launch_persistent_context(
                profile, executable_path="/usr/bin/chromium", args=ARGS, headless=True,
                viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t1 = time.perf_counter()
            page.goto(server.url)
            page.wait_for_selector("body[data-ready]", timeout=120_000)
            open_s = time.perf_counter() - t1
            seq = 0
            for key in keys:
                for frac in fracs:
                    value = page.evaluate(MOVE_JS, [key, frac])
                    seq += 1
                    timing = _settle(page, seq)
                    out[key].append({"value": value, **timing})
                page.click("button.reset")
                seq += 1
                _settle(page, seq)
            ctx.close()
    finally:
        server.shutdown()
    report = {"n_points": ex.evaluator.n_points, "n_clusters_run": ex.side.clusters.num_rows,
              "server_start_s": round(start_s, 2), "page_ready_s": round(open_s, 2)}
    for key, rows in out.items():
        fresh = [r for r in rows if not r["cached"]]
        report[key] = {
            "first_ms": round(rows[0]["ms"]),
            "median_ms_after_first": round(statistics.median(r["ms"] for r in fresh[1:]))
            if len(fresh) > 1 else None,
            "max_ms": round(max(r["ms"] for r in rows)),
            "server_ms": [round(r["server_ms"] or 0) for r in rows],
            "all_ms": [round(r["ms"]) for r in rows]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
