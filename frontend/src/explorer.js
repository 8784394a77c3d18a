// The live explorer (`stclusters serve`): the report's map and table over the server's API,
// plus sliders (radius, core threshold and weight per metric). Each change, debounced, asks
// the server to re-cluster; a newer change aborts the older request and a stale reply is
// ignored, so the page never waits on an outdated setting. Only the controls a person moved
// are sent: an untouched control keeps the run's exact value (a slider position cannot hold
// every value), and "back to the run's setting" sends no parameter at all.
import "./explorer.css";
import { prepareClusters, decodePoints, METRIC_COLOURS } from "./data.js";
import { createMap } from "./map.js";
import { createTable } from "./table.js";
import { createTooltip } from "./tooltip.js";
import { renderAttribution } from "./panels.js";
import { el, clear, kvTable } from "./dom.js";
import { fmt, fmtInt, fmtMove, metricLabel } from "./format.js";

const DEBOUNCE_MS = 120;
const LOG_STEPS = 1000; // positions of a log-scale slider

/** A slider mapping its 0..LOG_STEPS position to a value on a log scale (or linear). */
function scale(spec) {
  if (!spec.log) return { toPos: (v) => v, toValue: (p) => Number(p), min: spec.min, max: spec.max, step: spec.step ?? "any" };
  const a = Math.log(spec.min), b = Math.log(spec.max);
  return {
    toPos: (v) => Math.round(((Math.log(v) - a) / (b - a)) * LOG_STEPS),
    toValue: (p) => Number(Math.exp(a + (b - a) * (Number(p) / LOG_STEPS)).toPrecision(4)),
    min: 0, max: LOG_STEPS, step: 1,
  };
}

function slider(key, label, spec, digits, onInput) {
  const s = scale(spec);
  const input = el("input", { type: "range", min: s.min, max: s.max, step: s.step, value: s.toPos(spec.value), "data-key": key, "aria-label": label });
  const out = el("output", { class: "value", text: fmt(spec.value, digits) });
  const row = el("label", { class: "slider" }, el("span", { class: "name", text: label }), input, out);
  const control = {
    key, row, input,
    moved: false,
    // Until moved, and back at its start position, the run's exact value (a log position
    // rounds it).
    value: () => (control.moved && Number(input.value) !== Number(s.toPos(spec.value)) ? s.toValue(input.value) : spec.value),
    reset() { control.moved = false; input.value = s.toPos(spec.value); out.textContent = fmt(spec.value, digits); },
    initial: spec.value,
  };
  input.addEventListener("input", (ev) => { control.moved = true; out.textContent = fmt(control.value(), digits); onInput(ev); });
  return control;
}

function statusText(reply, ms) {
  const c = reply.counts;
  return `re-clustered in ${fmtInt(ms)} ms: ${fmtInt(c.merged)} merged, ${fmtInt(c.split)} split, ` +
    `${fmtInt(c.entered)} entered, ${fmtInt(c.left)} left the top ${fmtInt(reply.top_n)}`;
}

function renderPick(panel, cluster, metrics) {
  clear(panel);
  if (!cluster) {
    panel.append(el("p", { class: "hint", text: "Select a cluster on the map or in the table." }));
    return;
  }
  panel.append(el("h3", { text: cluster.name || cluster.cluster_id }), el("p", { class: "sub id", text: cluster.cluster_id }));
  const rows = [["Rank", fmtInt(cluster.rank)], ["Economy", cluster.economy || "–"]];
  for (const m of metrics) rows.push([`${metricLabel(m)} count`, fmt(cluster.weight[m], 2)], [`${metricLabel(m)} share %`, fmt(cluster.share_pct[m], 2)]);
  rows.push(["Score %", fmt(cluster.score_pct, 2)]);
  if (cluster.status) rows.push(["Against the run", cluster.status]);
  if (cluster.prev_rank !== null && cluster.prev_rank !== undefined) rows.push(["Rank in the run", fmtInt(cluster.prev_rank)], ["Move", fmtMove(cluster.move)]);
  if (cluster.n_core_points !== undefined) rows.push(["Core points", fmtInt(cluster.n_core_points)]);
  panel.append(kvTable(rows));
}

async function getJson(url, init) {
  const res = await fetch(url, { credentials: "same-origin", cache: "no-store", ...init });
  const body = await res.json();
  return { status: res.status, body };
}

async function start() {
  const [{ body: run }, { body: outlines }] = await Promise.all([getJson("api/run"), getJson("outlines.json")]);
  const metrics = run.metrics;
  const cfg = run.explorer.sliders;
  const root = document.getElementById("app");
  if (run.label) root.append(el("div", { class: "banner synthetic", role: "note", text: run.label }));
  const count = el("span", { class: "cluster-count", "data-n": run.explorer.n_clusters, text: "" });
  const status = el("p", { class: "status", role: "status", "aria-live": "polite", text: "the run as ranked" });
  root.append(el("header", { class: "page-head" }, el("h1", { text: run.title }),
    el("p", { class: "sub" }, count, ` · ${fmtInt(run.explorer.n_points)} weighted points · metrics: ${metrics.map(metricLabel).join(", ")}`)));

  const controls = [];
  const onInput = () => schedule();
  for (const m of metrics) controls.push(slider(`eps_km_${m}`, `${metricLabel(m)}: radius eps (km)`, cfg.eps_km[m], 1, onInput));
  for (const m of metrics) controls.push(slider(`min_weight_${m}`, `${metricLabel(m)}: core threshold (count)`, cfg.min_weight[m], 2, onInput));
  for (const m of metrics) controls.push(slider(`weight_${m}`, `${metricLabel(m)}: weight in the score`, cfg.weight[m], 1, onInput));
  const reset = el("button", { type: "button", class: "reset", text: "Back to the run's setting", onclick: () => { for (const c of controls) c.reset(); schedule(); } });
  const sliders = el("section", { class: "sliders" }, controls.map((c) => c.row), reset, status);

  const mapBox = el("div", { class: "map" });
  const mapButtons = el("div", { class: "map-controls" },
    el("button", { type: "button", class: "zoom-in", title: "Zoom in", "aria-label": "Zoom in", onclick: () => map.zoomBy(2), text: "+" }),
    el("button", { type: "button", class: "zoom-out", title: "Zoom out", "aria-label": "Zoom out", onclick: () => map.zoomBy(0.5), text: "\u2212" }),
    el("button", { type: "button", class: "zoom-reset", title: "Whole world", "aria-label": "Whole world", onclick: () => map.reset(), text: "\u25cb" }));
  const legend = el("div", { class: "legend" }, metrics.map((m, i) => el("span", { class: "key" },
    el("i", { style: `background:${METRIC_COLOURS[i % METRIC_COLOURS.length]}` }), `${metricLabel(m)} leads`)));
  const panel = el("aside", { class: "cluster-panel", "aria-live": "polite" });
  const tableBox = el("section", { class: "table-box" });
  const footer = el("footer", { class: "credits" });
  root.append(sliders, el("div", { class: "top" }, el("div", { class: "map-wrap" }, mapBox, mapButtons, legend), panel), tableBox, footer);

  const tooltip = createTooltip(mapBox, metrics);
  let clusters = [];
  let table = null;
  const map = createMap(mapBox, { outlines, metrics, onHover: (c, ev) => tooltip.show(c, ev), onSelect: (c, from) => choose(c, from) });
  function choose(cluster, from) {
    if (!cluster) return;
    map.select(cluster);
    if (table) table.select(cluster, { scroll: from === "map" });
    renderPick(panel, cluster, metrics);
    if (from !== "map") map.flyTo(cluster);
  }
  function show(list, nClusters, weights) {
    // The dominant metric is weighed by the weights in force (data.js's rule).
    clusters = prepareClusters({ metrics, clusters: list, coord_scale: run.coord_scale }, weights);
    map.setClusters(clusters);
    clear(tableBox);
    table = createTable(tableBox, { clusters, metrics, editions: clusters.some((c) => c.prev_rank !== null && c.prev_rank !== undefined), onSelect: choose });
    count.textContent = `${fmtInt(nClusters)} clusters found, top ${fmtInt(list.length)} shown`;
    count.setAttribute("data-n", nClusters);
    mapBox.setAttribute("data-clusters", list.length);
    renderPick(panel, null, metrics);
  }
  const runWeights = Object.fromEntries(metrics.map((m) => [m, cfg.weight[m].value]));
  show(run.clusters, run.explorer.n_clusters, runWeights);
  const pts = decodePoints(run.points);
  map.setPoints(pts.lon, pts.lat, pts.n);
  renderAttribution(footer, run.attribution);

  // ------------------------------------------------------------------ re-clustering
  let timer = 0;
  let seq = 0;
  let inFlight = null;
  let since = 0; // performance.now() of the input event that the pending request answers
  const timings = [];
  let lastQuery = {};
  // This page's id: the server lets a newer request of the same page supersede a waiting
  // one, never another tab's.
  const client = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");

  let waiting = false; // a debounced request is yet to be sent

  function schedule() {
    since = performance.now();
    waiting = true;
    document.body.setAttribute("data-busy", "1");
    clearTimeout(timer);
    timer = setTimeout(send, DEBOUNCE_MS);
  }

  async function send() {
    const mine = ++seq;
    const t0 = since;
    waiting = false;
    if (inFlight) inFlight.abort();
    const ctrl = new AbortController();
    inFlight = ctrl;
    const q = new URLSearchParams();
    for (const c of controls) if (c.moved) q.set(c.key, String(c.value()));
    lastQuery = Object.fromEntries(q);
    q.set("seq", String(mine));
    q.set("client", client);
    status.textContent = "re-clustering\u2026";
    let reply;
    try {
      reply = await getJson(`api/cluster?${q}`, { signal: ctrl.signal });
    } catch (err) {
      if (err.name === "AbortError") return; // a newer setting took over
      if (mine === seq) { status.textContent = `the server did not answer: ${err.message}`; document.body.removeAttribute("data-busy"); }
      return;
    }
    // Stale (a newer request was sent, or one is about to be).
    if (mine !== seq || waiting) return;
    // Superseded on the server although it is this page's latest: ask again.
    if (reply.status === 409) { send(); return; }
    if (reply.status !== 200) {
      status.textContent = `refused: ${reply.body.error || reply.status}`;
      document.body.removeAttribute("data-busy");
      return;
    }
    show(reply.body.clusters, reply.body.n_clusters, reply.body.weights);
    requestAnimationFrame(() => {
      const ms = performance.now() - t0;
      timings.push({ ms, server_ms: reply.body.timing_ms.total, cached: reply.body.cached, seq: mine });
      status.textContent = statusText(reply.body, ms);
      status.setAttribute("data-ms", ms.toFixed(1));
      document.body.setAttribute("data-seq", String(mine));
      document.body.removeAttribute("data-busy");
    });
  }

  window.stclustersExplorer = { map, clusters: () => clusters, timings, get lastQuery() { return lastQuery; }, choose: (rank) => choose(clusters.find((c) => c.rank === rank), "table") };
  document.body.setAttribute("data-ready", "1");
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
