// The cluster panel (places, economies, profile) and the run panel (parameters, accounting,
// data quality, manifest, attributions). Every value from the run is set as text.
import { el, clear, kvTable } from "./dom.js";
import { fmt, fmtInt, fmtMove, metricLabel } from "./format.js";

const PROFILE_FACETS = [
  ["applicant", "Top applicants"],
  ["institution", "Top institutions"],
  ["tech_field", "Technology fields"],
  ["sci_field", "Scientific fields"],
];

/** A small table of [label, weight, share %] rows with a bar for the share. */
function shareTable(title, rows, cls) {
  if (!rows || !rows.length) return null;
  return el("section", { class: `facet ${cls}` },
    el("h4", { text: title }),
    el("table", { class: "shares" }, el("tbody", {}, rows.map(([label, weight, share]) => el("tr", {},
      el("th", { text: label }),
      el("td", { class: "num", text: fmt(weight, 2) }),
      el("td", { class: "num", text: share === null || share === undefined ? "–" : fmt(share, 1) + " %" }),
      el("td", { class: "bar" }, el("span", { style: `width:${Math.max(0, Math.min(100, share || 0)).toFixed(1)}%` })))))));
}

/** Fill `panel` with the cluster's details (`detail` from the payload, may be missing). */
export function renderCluster(panel, cluster, detail, metrics) {
  clear(panel);
  if (!cluster) {
    panel.append(el("p", { class: "hint", text: "Select a cluster on the map or in the table." }));
    return;
  }
  const head = el("header", {},
    el("h3", { text: cluster.name || cluster.cluster_id }),
    el("p", { class: "sub", text: `#${fmtInt(cluster.rank)} · ${cluster.economy || "–"} · score ${fmt(cluster.score_pct, 2)} %` +
      (cluster.prev_rank !== null && cluster.prev_rank !== undefined ? ` · previous rank ${fmtInt(cluster.prev_rank)} (${fmtMove(cluster.move)})` : "") }),
    el("p", { class: "sub id", text: cluster.cluster_id }));
  panel.append(head);
  panel.append(kvTable(metrics.map((m) => [metricLabel(m), `${fmt(cluster.weight[m], 2)} (${fmt(cluster.share_pct[m], 2)} % of world)`])));
  if (!detail) return;
  panel.append(...[
    shareTable("Top places", (detail.places || []).map(([city, eco, w, s]) => [`${city} (${eco})`, w, s]), "places"),
    shareTable("Weight by economy", detail.economies, "economies"),
  ].filter(Boolean));
  const profile = detail.profile || {};
  for (const [facet, title] of PROFILE_FACETS) {
    const rows = profile[facet];
    if (!rows || !rows.length) continue;
    panel.append(shareTable(title, rows.map(([source, label, w, s]) => [`${label} · ${source}`, w, s]), `profile ${facet}`));
  }
}

/** Rows of the accounting: read, used, filtered (by reason), rejected (by reason). */
function accountingTable(accounting) {
  const rows = [];
  for (const source of Object.keys(accounting || {}).sort()) {
    const rec = (accounting[source] || {}).records || {};
    const sum = (o) => Object.values(o || {}).reduce((a, b) => a + b, 0);
    const reasons = (o) => Object.entries(o || {}).map(([k, v]) => `${k} ${fmtInt(v)}`).join("; ");
    rows.push(el("tr", {},
      el("th", { text: metricLabel(source) }),
      el("td", { text: rec.unit || "" }),
      el("td", { class: "num", text: fmtInt(rec.read) }),
      el("td", { class: "num", text: fmtInt(rec.used) }),
      el("td", { class: "num", text: fmtInt(sum(rec.filtered)) }),
      el("td", { class: "num", text: fmtInt(sum(rec.rejected)) }),
      el("td", { class: "reasons", text: [reasons(rec.filtered), reasons(rec.rejected)].filter(Boolean).join(" · ") })));
  }
  return el("table", { class: "accounting" },
    el("thead", {}, el("tr", {}, ["Source", "Unit", "Read", "Used", "Filtered", "Rejected", "Reasons"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows));
}

/** Flatten nested parameters to [dotted key, value text] rows. */
function flatten(obj, prefix = "", out = []) {
  for (const key of Object.keys(obj || {}).sort()) {
    const v = obj[key];
    const name = prefix ? `${prefix}.${key}` : key;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, name, out);
    else out.push([name, Array.isArray(v) ? v.join(", ") : v === null ? "–" : String(v)]);
  }
  return out;
}

/** Fill `panel` with the run's parameters, accounting, quality, inputs and manifest. */
export function renderRun(panel, payload) {
  const m = payload.manifest || {};
  const inputs = (m.inputs || []).map((i) => [i.name || "", `${i.kind || ""}, ${fmtInt(i.size_bytes)} bytes, ${fmtInt((i.records || {}).read)} read, ${fmtInt((i.records || {}).used)} used`]);
  const clustering = Object.entries(m.clustering || {}).map(([s, c]) => [metricLabel(s), `eps ${fmt(c.eps_km, 1)} km, min weight ${fmt(c.min_weight, 3)}, ${fmtInt(c.n_clusters)} clusters`]);
  const quality = Object.entries((m.quality || {}).counts || {}).map(([k, v]) => [k.replace(/_/g, " "), fmtInt(v)]);
  const outcome = m.outcome || {};
  panel.append(
    el("details", { class: "run-section", open: true }, el("summary", { text: "Input accounting (read = used + filtered + rejected)" }), accountingTable(m.accounting)),
    el("details", { class: "run-section" }, el("summary", { text: "Inputs" }), kvTable(inputs)),
    el("details", { class: "run-section" }, el("summary", { text: "Clustering" }), kvTable(clustering)),
    el("details", { class: "run-section" }, el("summary", { text: "Data quality" }), kvTable(quality.length ? quality : [["findings", "none"]])),
    el("details", { class: "run-section" }, el("summary", { text: "Parameters" }), kvTable(flatten(m.parameters))),
    el("details", { class: "run-section" }, el("summary", { text: `Outcome: ${outcome.status || "–"}` }),
      el("p", { text: outcome.message || "" }), el("ul", {}, (outcome.warnings || []).map((w) => el("li", { text: String(w) })))),
    el("details", { class: "run-section" }, el("summary", { text: "Manifest (manifest.json)" }), el("pre", { class: "manifest", text: JSON.stringify(m, null, 2) })));
}

/** The attribution list at the foot of the page. */
export function renderAttribution(footer, lines) {
  footer.append(el("h4", { text: "Data and credits" }), el("ul", {}, lines.map((l) => el("li", { text: l }))));
}
