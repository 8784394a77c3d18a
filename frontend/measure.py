"""Measure the offline report in headless Chromium: file size (and its parts), time to first
paint and to a ready page, and the map's frame time while zooming.

    .venv/bin/python frontend/measure.py RUN_DIR [--out report.html]

RUN_DIR is any finished run folder; for the figures of docs/report.md, a SYNTHETIC world of
200,000 contributions per source ranked with ``top_n=1000`` and
``min_weight_share_pct=0.005`` (1,000 ranked clusters). Needs /usr/bin/chromium and the
``playwright`` package (no browser download).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from stclusters.reports.html import write_report

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

#: One zoom step, then the next animation frame: the time the map takes to redraw (ms).
FRAME_JS = """async () => {
  const map = window.stclustersReport.map;
  const times = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    map.zoomBy(i < 15 ? 1.15 : 1 / 1.15);
    await new Promise(requestAnimationFrame);
    times.push(performance.now() - t0);
  }
  return times;
}"""


def parts(html: str) -> dict[str, int]:
    """Bytes of the page's inline parts."""
    sizes = {}
    for name, pattern in (("data", r'id="stc-data">(.*?)</script>'),
                          ("outlines", r'id="stc-outlines">(.*?)</script>'),
                          ("script", r"<script>(.*?)</script>"),
                          ("style", r"<style>(.*?)</style>")):
        sizes[name] = len(re.search(pattern, html, re.S).group(1).encode("utf-8"))
    return sizes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    path = write_report(args.run_dir, args.out)
    write_s = time.perf_counter() - t0
    html = path.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="stc-data">(.*?)</script>', html, re.S).group(1))
    result = {"clusters": len(data["clusters"]), "points": data["points"]["shown"],
              "file_bytes": path.stat().st_size, "parts_bytes": parts(html),
              "write_s": round(write_s, 2)}
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                    args=ARGS, headless=True,
                                                    viewport={"width": 1400, "height": 1000})
        runs = []
        for _ in range(3):
            page = ctx.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:")
                       else r.abort())
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-ready]")
            paint = page.evaluate("() => Object.fromEntries(performance.getEntriesByType('paint')"
                                  ".map(e => [e.name, e.startTime]))")
            ready = page.evaluate("() => performance.getEntriesByName('stc-ready')[0].startTime")
            map_ms = page.evaluate("() => performance.getEntriesByName('stc-map')[0].startTime")
            frames = page.evaluate(FRAME_JS)
            runs.append((paint.get("first-paint"), paint.get("first-contentful-paint"), map_ms,
                         ready, statistics.median(frames), max(frames)))
            page.close()
        ctx.close()
    med = [round(statistics.median(v), 1) for v in zip(*runs)]
    result.update(dict(zip(("first_paint_ms", "first_contentful_paint_ms", "map_built_ms",
                            "ready_ms",
                            "zoom_frame_median_ms", "zoom_frame_max_ms"), med)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
