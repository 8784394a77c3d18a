// The offline report: reads the inline payload and outlines, builds map, table and panels.
import { prepareClusters, decodePoints, METRIC_COLOURS } from "./data.js";
import { createMap } from "./map.js";
import { createTable } from "./table.js";
import { createTooltip } from "./tooltip.js";
import { renderCluster, renderRun, renderAttribution } from "./panels.js";
import { renderRegion } from "./region.js";
import { el } from "./dom.js";
import { fmtInt, metricLabel } from "./format.js";

function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

function legend(metrics) {
  return el("div", { class: "legend" },
    metrics.map((m, i) => el("span", { class: "key" },
      el("i", { style: `background:${METRIC_COLOURS[i % METRIC_COLOURS.length]}` }), `${metricLabel(m)} leads`)),
    el("span", { class: "key note", text: "darker, larger: higher score" }));
}

/**
 * A tab bar "Clusters | Region …" over the cluster view and the region page; the region page
 * is built when first shown. `showCluster(id)` selects a cluster (the region page's links).
 */
function regionTabs(root, clusterTab, payload, showCluster) {
  const region = payload.region;
  const regionTab = el("section", { class: "tab-panel region-page", id: "tab-region", role: "tabpanel", hidden: true });
  let built = false;
  const buttons = {};
  function show(name) {
    if (name === "region" && !built) {
      built = true;
      renderRegion(regionTab, region, {
        shown: new Set(payload.clusters.map((c) => c.cluster_id)),
        // The map measures its box again once shown (a ResizeObserver), then flies.
        onCluster: (id) => {
          show("clusters");
          window.scrollTo(0, 0);  // the map is at the top of the cluster tab
          requestAnimationFrame(() => setTimeout(() => showCluster(id), 0));
        },
      });
    }
    clusterTab.hidden = name !== "clusters";
    regionTab.hidden = name !== "region";
    for (const [key, button] of Object.entries(buttons)) button.setAttribute("aria-selected", String(key === name));
    document.body.setAttribute("data-tab", name);
  }
  buttons.clusters = el("button", { type: "button", role: "tab", class: "tab", "data-tab": "clusters", text: "Clusters", onclick: () => show("clusters") });
  buttons.region = el("button", { type: "button", role: "tab", class: "tab", "data-tab": "region", text: `Region: ${region.name}`, onclick: () => show("region") });
  root.append(el("div", { class: "tabs", role: "tablist" }, buttons.clusters, buttons.region), clusterTab, regionTab);
  show("clusters");
  return { show };
}

function start() {
  performance.mark("stc-start");
  const payload = readJson("stc-data");
  const outlines = readJson("stc-outlines");
  performance.mark("stc-parsed");
  const metrics = payload.metrics;
  const clusters = prepareClusters(payload);
  const editions = clusters.some((c) => c.prev_rank !== null && c.prev_rank !== undefined);

  const root = document.getElementById("app");
  if (payload.label) root.append(el("div", { class: "banner synthetic", role: "note", text: payload.label }));
  root.append(el("header", { class: "page-head" },
    el("h1", { text: payload.title }),
    el("p", { class: "sub", text: `${fmtInt(clusters.length)} ranked clusters · metrics: ${metrics.map(metricLabel).join(", ")}` +
      (payload.points.total > payload.points.shown ? ` · ${fmtInt(payload.points.shown)} of ${fmtInt(payload.points.total)} points shown` : ` · ${fmtInt(payload.points.shown)} points`) })));

  const outcome = (payload.manifest || {}).outcome || {};
  if (outcome.status && outcome.status !== "ok") root.append(el("p", { class: "notice", role: "note", text: outcome.message || outcome.status }));
  const mapBox = el("div", { class: "map", "data-clusters": clusters.length });
  const controls = el("div", { class: "map-controls" });
  const panel = el("aside", { class: "cluster-panel", "aria-live": "polite" });
  const tableBox = el("section", { class: "table-box" });
  const runBox = el("section", { class: "run-panel" }, el("h2", { text: "The run" }));
  const footer = el("footer", { class: "credits" });
  const clusterTab = el("div", { class: "tab-panel tab-clusters", id: "tab-clusters", role: "tabpanel" },
    el("div", { class: "top" }, el("div", { class: "map-wrap" }, mapBox, controls, legend(metrics)), panel), tableBox, runBox);
  const tabs = payload.region ? regionTabs(root, clusterTab, payload, (id) => choose(clusters.find((c) => c.cluster_id === id), "table")) : null;
  if (!tabs) root.append(clusterTab);
  root.append(footer);

  const tooltip = createTooltip(mapBox, metrics);
  let table = null;
  const map = createMap(mapBox, {
    outlines,
    metrics,
    onHover: (c, ev) => tooltip.show(c, ev),
    onSelect: (c, from) => choose(c, from),
  });
  function choose(cluster, from) {
    if (!cluster) return;
    map.select(cluster);
    if (table) table.select(cluster, { scroll: from === "map" });
    renderCluster(panel, cluster, payload.details[cluster.cluster_id], metrics);
    if (from !== "map") map.flyTo(cluster);
  }
  map.setClusters(clusters);
  performance.mark("stc-clusters");
  const pts = decodePoints(payload.points);
  map.setPoints(pts.lon, pts.lat, pts.n);
  controls.append(
    el("button", { type: "button", class: "zoom-in", title: "Zoom in", "aria-label": "Zoom in", onclick: () => map.zoomBy(2), text: "+" }),
    el("button", { type: "button", class: "zoom-out", title: "Zoom out", "aria-label": "Zoom out", onclick: () => map.zoomBy(0.5), text: "\u2212" }),
    el("button", { type: "button", class: "zoom-reset", title: "Whole world", "aria-label": "Whole world", onclick: () => map.reset(), text: "\u25cb" }));
  renderCluster(panel, null, null, metrics);
  performance.mark("stc-map");
  // The map paints first; the table (1,000 rows) and the run panel follow a frame later.
  requestAnimationFrame(() => setTimeout(() => {
    table = createTable(tableBox, { clusters, metrics, editions, onSelect: choose });
    renderRun(runBox, payload);
    renderAttribution(footer, payload.attribution);
    finish();
  }, 0));
  function finish() {
    // A small handle for scripted checks (the browser tests) and for the reader's console.
    window.stclustersReport = { map, clusters, choose: (rank) => choose(clusters.find((c) => c.rank === rank), "table"), showTab: tabs ? tabs.show : () => {} };
    if (tabs && window.location.hash === "#region") tabs.show("region");
    document.body.setAttribute("data-ready", "1");
    performance.mark("stc-ready");
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
