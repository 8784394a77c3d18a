// The region page of the report (`stclusters report RUN_DIR --region GBA`): the region's
// indicators over time with their sources and flags, the indicators computed from the run,
// the city → S&T cluster table, the integration figures and the claims with their verdicts.
// Data in (payload.region), DOM out; every value from the payload is set as text, and a
// source address is shown as text, never as a link.
import { el, clear, svgEl } from "./dom.js";
import { metricLabel } from "./format.js";

const EN = "en-US";
// Series colours: one per unit (region, group, member, context row), stable across charts.
// Members take the first eleven (the charts mostly compare cities).
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
  "#ff9da7", "#9c755f", "#17becf", "#6b8e23", "#1f3b73", "#8c1d40", "#444444", "#bab0ac"];
const CHART = { w: 320, h: 170, left: 50, right: 10, top: 10, bottom: 22 };
const VERDICTS = ["held", "not held", "not enough data"];
// A table longer than this is folded away (the population table has 26 years × 11 cities).
const OPEN_ROWS = 30;

/** Rows of an encoded table (`{columns, dict, rows}`) as objects. */
export function decodeTable(table) {
  if (!table) return [];
  const { columns, dict, rows } = table;
  return rows.map((row) => {
    const out = {};
    columns.forEach((c, i) => {
      const v = row[i];
      out[c] = dict[c] && v !== null ? dict[c][v] : v;
    });
    return out;
  });
}

// Number formats made once: the page formats a few thousand figures, and
// Number.toLocaleString builds a new formatter on every call.
const FORMATS = new Map();
function numberFormat(options) {
  const key = JSON.stringify(options);
  if (!FORMATS.has(key)) FORMATS.set(key, new Intl.NumberFormat(EN, options));
  return FORMATS.get(key);
}

/** `value` with `digits` decimals and thousands separators (as format.js `fmt`); "–" when missing. */
function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return numberFormat({ minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
}

/**
 * A figure by the regions' one rule (stclusters.regions._format.number, as `stclusters region`
 * prints it): thousands separators, at most 6 significant digits after the point with trailing
 * zeros trimmed ("2,962.36", "0.000123457"), a bound before it ("> 3,600"), "—" when missing.
 */
export function fmtValue(value, bound) {
  if (value === null || value === undefined || Number.isNaN(value)) return "\u2014";
  let text;
  if (!Number.isFinite(value)) text = value > 0 ? "inf" : "-inf";
  else {
    const size = Math.abs(value);
    const places = size >= 1 || size === 0 ? 6 : Math.min(-Math.floor(Math.log10(size)) - 1 + 6, 20);
    text = numberFormat({ maximumFractionDigits: places }).format(value);
    if (text === "-0") text = "0";
  }
  return bound ? `${bound} ${text}` : text;
}

function indicatorLabel(key) {
  return metricLabel(key).replace(/\bRd\b/, "R&D").replace(/\bGdp\b/, "GDP").replace(/\bPct\b/, "PCT").replace(/\bCnipa\b/, "CNIPA");
}

/** The unit names in page order: the region, its groups, its members, then any other. */
function unitOrder(region) {
  return [region.id, ...region.groups.map((g) => g[0]), ...region.members.map((m) => m[0])];
}

function colourer(region) {
  const first = [...region.members.map((m) => m[0]), region.id, ...region.groups.map((g) => g[0])];
  const known = new Map(first.map((u, i) => [u, PALETTE[i % PALETTE.length]]));
  return (name) => {
    if (!known.has(name)) known.set(name, PALETTE[known.size % PALETTE.length]);
    return known.get(name);
  };
}

function groupBy(rows, key) {
  const out = new Map();
  for (const r of rows) {
    const k = typeof key === "function" ? key(r) : r[key];
    if (!out.has(k)) out.set(k, []);
    out.get(k).push(r);
  }
  return out;
}

function niceTicks(lo, hi, n = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function compact(value) {
  return Math.abs(value) >= 1e4 ? numberFormat({ notation: "compact", maximumFractionDigits: 1 }).format(value) : fmtValue(value, null);
}

/**
 * A small line chart: `series` = [{name, colour, points: [{x, y, bound, text}]}]. Each point
 * is a marker (hollow when the figure is a bound) with a <title> giving its figure.
 */
function lineChart(series, { yLabel, yMax = null, className = "" } = {}) {
  const pts = series.flatMap((s) => s.points).filter((p) => p.y !== null && p.y !== undefined);
  const svg = svgEl("svg", { class: `chart ${className}`.trim(), viewBox: `0 0 ${CHART.w} ${CHART.h}`, role: "img" });
  if (!pts.length) return svg;
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const y0 = Math.min(0, ...ys);
  const y1 = yMax !== null ? Math.max(yMax, ...ys) : Math.max(...ys) > y0 ? Math.max(...ys) * 1.05 : y0 + 1;
  const sx = (x) => CHART.left + (x - x0) / (x1 - x0) * (CHART.w - CHART.left - CHART.right);
  const sy = (y) => CHART.h - CHART.bottom - (y - y0) / (y1 - y0) * (CHART.h - CHART.top - CHART.bottom);
  const axis = svgEl("g", { class: "axis" });
  for (const t of niceTicks(y0, y1)) {
    axis.append(svgEl("line", { x1: CHART.left, x2: CHART.w - CHART.right, y1: sy(t), y2: sy(t), class: "grid" }));
    const label = svgEl("text", { x: CHART.left - 4, y: sy(t) + 3, "text-anchor": "end" });
    label.textContent = compact(t);
    axis.append(label);
  }
  const xt = niceTicks(x0, x1, 5).filter((t) => Number.isInteger(t));
  for (const t of xt) {
    const label = svgEl("text", { x: sx(t), y: CHART.h - 6, "text-anchor": "middle" });
    label.textContent = String(t);
    axis.append(label);
  }
  svg.append(axis);
  if (yLabel) {
    const t = svgEl("text", { x: CHART.left, y: CHART.top - 1, class: "y-label" });
    t.textContent = yLabel;
    svg.append(t);
  }
  for (const s of series) {
    const g = svgEl("g", { class: "series", "data-name": s.name });
    const drawn = s.points.filter((p) => p.y !== null && p.y !== undefined).sort((a, b) => a.x - b.x);
    if (drawn.length > 1) {
      g.append(svgEl("polyline", { points: drawn.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" "), stroke: s.colour, fill: "none" }));
    }
    for (const p of drawn) {
      const dot = svgEl("circle", { cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: 2.6, stroke: s.colour, fill: p.bound ? "#fff" : s.colour, class: p.bound ? "bound" : "" });
      const title = svgEl("title");
      title.textContent = `${s.name} ${p.x}: ${p.text}`;
      dot.append(title);
      g.append(dot);
    }
    svg.append(g);
  }
  return svg;
}

function legend(names, colour) {
  return el("div", { class: "chart-legend" }, names.map((n) => el("span", { class: "key" },
    el("i", { style: `background:${colour(n)}` }), n)));
}

function sourceText(r) {
  return [r.source_publisher, r.source_title, r.source_url].filter(Boolean).join(" — ");
}

function figureTable(rows) {
  return el("table", { class: "figures" },
    el("thead", {}, el("tr", {}, ["Region", "Year", "Value", "Unit", "Flag", "Source", "Note"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows.map((r) => el("tr", { "data-region": r.region, "data-year": r.year },
      el("td", { text: r.region }),
      el("td", { class: "num", text: String(r.year) }),
      el("td", { class: "num value", text: fmtValue(r.value, r.bound) }),
      el("td", { text: r.unit || "" }),
      el("td", { class: `flag flag-${String(r.flag || "").replace(/[^a-z]+/g, "-")}`, text: r.flag || "" }),
      el("td", { class: "source" },
        el("span", { text: [r.source_publisher, r.source_title].filter(Boolean).join(" — ") }),
        r.source_url ? el("span", { class: "url", text: r.source_url }) : null),
      el("td", { class: "note", text: r.note || "" })))));
}

/** One indicator: a small chart per unit of measure (figures over ≥ 2 years) and its table. */
function indicatorCard(indicator, rows, region, colour) {
  const card = el("section", { class: "indicator", "data-indicator": indicator },
    el("h4", { text: `${indicatorLabel(indicator)} (${rows.length} figure${rows.length === 1 ? "" : "s"})` }));
  const charts = el("div", { class: "charts" });
  const order = unitOrder(region);
  const rank = (name) => { const i = order.indexOf(name); return i < 0 ? order.length : i; };
  for (const [unit, urows] of groupBy(rows, "unit")) {
    if (new Set(urows.map((r) => r.year)).size < 2) continue;
    const byRegion = [...groupBy(urows, "region")].sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]));
    const series = byRegion.map(([name, rs]) => ({
      name, colour: colour(name),
      points: rs.map((r) => ({ x: r.year, y: r.value, bound: r.bound, text: `${fmtValue(r.value, r.bound)} ${unit} [${r.flag}]` })),
    }));
    charts.append(el("figure", { class: "small-chart", "data-unit": unit },
      lineChart(series, { yLabel: unit }), legend(byRegion.map(([n]) => n), colour)));
  }
  if (charts.childNodes.length) card.append(charts);
  if (rows.length <= OPEN_ROWS) {
    card.append(figureTable(rows));
    return card;
  }
  // A long table is built when first unfolded: the region tab opens without its thousand rows.
  const folded = el("details", { class: "figures-all" }, el("summary", { text: `All ${rows.length} figures with their sources` }));
  folded.addEventListener("toggle", () => { if (folded.open && !folded.querySelector("table")) folded.append(figureTable(rows)); });
  card.append(folded);
  return card;
}

function indicatorsSection(region, colour) {
  const rows = decodeTable(region.indicators);
  const background = new Set(region.population_indicators);
  const section = el("section", { class: "region-section region-indicators", id: "region-indicators" },
    el("h3", { text: "Indicators over time" }),
    el("p", { class: "hint", text: "Official and press figures with their flags and sources (a bound such as \u201c> 3,600\u201d is a figure stated as \u201cmore than\u201d; hollow markers on the charts). Source addresses are shown as text." }));
  const grouped = [...groupBy(rows, "indicator")];
  // Science and technology figures first, then the statistics offices' population, GDP and employment.
  for (const [indicator, irows] of grouped.filter(([i]) => !background.has(i))) section.append(indicatorCard(indicator, irows, region, colour));
  const rest = grouped.filter(([i]) => background.has(i));
  if (rest.length) {
    section.append(el("h4", { class: "subhead", text: "Population, GDP and employment (year-end, statistics offices)" }));
    for (const [indicator, irows] of rest) section.append(indicatorCard(indicator, irows, region, colour));
  }
  if (!rows.length) section.append(el("p", { class: "hint", text: "No indicator figures for this region." }));
  return section;
}

function cityClusters(region, onCluster, shown) {
  const rows = decodeTable(region.city_clusters);
  return el("div", { class: "city-clusters" },
    el("h4", { text: "The S&T cluster each city falls in" }),
    el("p", { class: "hint", text: "Per source: the run's cluster holding most of the city's weight (documents, fractional count) over the run's years." }),
    el("table", { class: "figures city-clusters" },
      el("thead", {}, el("tr", {}, ["City", "Source", "Cluster", "Weight in it", "City's weight", "Share"].map((h) => el("th", { text: h })))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-member": r.member, "data-source": r.source },
        el("td", { text: r.member }),
        el("td", { text: metricLabel(r.source) }),
        el("td", { class: "cluster" }, r.cluster_id === null
          ? "no cluster"
          : shown.has(r.cluster_id)
            ? el("button", { type: "button", class: "to-cluster", "data-id": r.cluster_id, title: "Show on the map", onclick: () => onCluster(r.cluster_id), text: `#${r.rank} ${r.name || r.cluster_id}` })
            : `#${r.rank} ${r.name || r.cluster_id}`),
        el("td", { class: "num", text: fmt(r.weight, 2) }),
        el("td", { class: "num", text: fmt(r.member_weight, 2) }),
        el("td", { class: "num", text: r.share_pct === null ? "–" : `${fmt(r.share_pct, 1)} %` }))))));
}

/** Units × years of one computed indicator, chosen in a drop-down. */
function computedTable(region) {
  const rows = decodeTable(region.computed);
  const box = el("div", { class: "computed" }, el("h4", { text: "Counted from the run's records" }));
  if (!rows.length) {
    box.append(el("p", { class: "hint", text: "The run has no records in this region." }));
    return box;
  }
  const indicators = [...new Set(rows.map((r) => r.indicator))];
  const order = unitOrder(region);
  const select = el("select", { class: "computed-indicator", "aria-label": "Computed indicator" },
    indicators.map((i) => el("option", { value: i, text: indicatorLabel(i) })));
  const holder = el("div", { class: "computed-table" });
  function show() {
    const chosen = rows.filter((r) => r.indicator === select.value);
    const years = [...new Set(chosen.map((r) => r.year))].sort((a, b) => a - b);  // the source's own years
    const cells = new Map(chosen.map((r) => [`${r.region}|${r.year}`, r]));
    const units = [...new Set(chosen.map((r) => r.region))].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    clear(holder).append(
      el("p", { class: "unit", text: `${chosen[0].unit} · flag computed · ${chosen[0].source_publisher}` }),
      el("table", { class: "figures pivot", "data-indicator": select.value },
        el("thead", {}, el("tr", {}, el("th", { text: "" }), years.map((y) => el("th", { class: "num", text: String(y) })))),
        el("tbody", {}, units.map((u) => el("tr", { "data-region": u }, el("th", { text: u }), years.map((y) => {
          const r = cells.get(`${u}|${y}`);
          return el("td", { class: "num", title: r && r.value === null ? r.note : null, text: r ? fmtValue(r.value, null) : "" });
        }))))),
      // The note of a figure with a value is the rule alone (a missing value's note adds why).
      el("p", { class: "rule", text: `Rule: ${(chosen.find((r) => r.value !== null) || chosen[0]).note}` }));
  }
  select.addEventListener("change", show);
  box.append(el("label", { class: "pick" }, "Indicator ", select), holder);
  show();
  return box;
}

function countingPicker(onChange) {
  const select = el("select", { class: "counting", "aria-label": "Counting" },
    el("option", { value: "whole", text: "whole counting" }), el("option", { value: "fractional", text: "fractional counting" }));
  select.addEventListener("change", () => onChange(select.value));
  return select;
}

function sharesCharts(integration, colour, counting) {
  const rows = decodeTable(integration.shares).filter((r) => r.counting === counting);
  const out = el("div", { class: "charts shares" });
  for (const [source, srows] of groupBy(rows, "source")) {
    for (const [partner, prows] of groupBy(srows, "partner")) {
      const focals = [...groupBy(prows, "focal")];
      const series = focals.map(([name, rs]) => ({
        name, colour: colour(name),
        points: rs.map((r) => ({ x: r.year, y: r.share_pct, text: `${fmt(r.share_pct, 1)} % (${counting === "whole" ? `${r.n_docs_with_partner} of ${r.n_docs} documents` : `${fmt(r.weight_with_partner, 2)} of ${fmt(r.weight, 2)}`})` })),
      }));
      out.append(el("figure", { class: "small-chart", "data-source": source, "data-partner": partner },
        el("figcaption", { text: `${metricLabel(source)}s made with ${partner === "CN" ? "the mainland (CN)" : partner}` }),
        lineChart(series, { yLabel: "% of documents", yMax: 100 }), legend(focals.map(([n]) => n), colour)));
    }
  }
  if (!rows.length) out.append(el("p", { class: "hint", text: "No documents of these sides in the run." }));
  return out;
}

function heatTables(integration, counting) {
  const table = integration.matrix[counting];
  const rows = decodeTable(table);
  const value = counting === "whole" ? "n_docs" : "weight";
  const out = el("div", { class: "heat-tables" });
  for (const [source, srows] of groupBy(rows, "source")) {
    const units = [...new Set(srows.map((r) => r.a))];
    const cell = new Map(srows.map((r) => [`${r.a}|${r.b}`, r[value]]));
    const off = srows.filter((r) => r.a !== r.b && r.a !== "(other)" && r.b !== "(other)").map((r) => r[value]);
    const top = Math.max(0, ...srows.filter((r) => r.a !== "(other)" && r.b !== "(other)").map((r) => r[value]));
    out.append(el("figure", { class: "heat", "data-source": source, "data-counting": counting },
      el("figcaption", { text: `${metricLabel(source)}s: city by city (${counting}; ${off.some((v) => v > 0) ? "darker: more" : "no collaboration between cities"})` }),
      el("div", { class: "heat-scroll" }, el("table", { class: "heat-table" },
        el("thead", {}, el("tr", {}, el("th", { text: "" }), units.map((u) => el("th", { class: "col", text: u })))),
        el("tbody", {}, units.map((a) => el("tr", { "data-a": a }, el("th", { text: a }), units.map((b) => {
          const v = cell.get(`${a}|${b}`);
          if (v === undefined) return el("td", { class: "none", text: "" });
          const alpha = top > 0 && a !== "(other)" && b !== "(other)" ? Math.sqrt(v / top) : 0;
          return el("td", { class: `num${a === b ? " diag" : ""}${a === "(other)" || b === "(other)" ? " other" : ""}`, "data-b": b,
            style: `background:rgba(31,111,178,${(0.85 * alpha).toFixed(3)});color:${alpha > 0.55 ? "#fff" : "inherit"}`,
            text: counting === "whole" ? fmtValue(v, null) : fmt(v, 2) });
        }))))))));
  }
  return out;
}

function integrationSection(region, colour) {
  const integration = region.integration || {};
  const section = el("section", { class: "region-section region-integration", id: "region-integration" },
    el("h3", { text: "Integration: working across the border" }));
  const body = el("div", {});
  function show(counting) {
    clear(body);
    if (integration.shares) body.append(el("h4", { text: "Shares of documents made with a partner, by year" }), sharesCharts(integration, colour, counting));
    else body.append(el("p", { class: "hint", text: integration.note || "No shares for this region." }));
    body.append(el("h4", { text: "Collaboration matrix" }), heatTables(integration, counting),
      el("p", { class: "rule", text: `${integration.rules.shares} ${integration.rules[counting]} (other): used contributions in no city of the region.` }));
  }
  section.append(el("label", { class: "pick" }, "Counting ", countingPicker(show)), body);
  show("whole");
  return section;
}

function claimsSection(claims) {
  const section = el("section", { class: "region-section region-claims", id: "region-claims" }, el("h3", { text: "Claims checked against the data" }));
  if (!claims) {
    section.append(el("p", { class: "hint", text: "No claims were checked (stclusters report RUN_DIR --region R --claims FILE)." }));
    return section;
  }
  const rows = decodeTable(claims.table);
  section.append(el("p", { class: "claim-counts" }, VERDICTS.map((v, i) => [i ? " · " : "",
    el("span", { class: "verdict-count", "data-verdict": v, text: `${claims.counts[v]} ${v}` })])),
  el("p", { class: "hint", text: `Claims ${claims.file ? `of ${claims.file} ` : ""}judged against the indicator table, this run${claims.editions ? `, its editions folder ${claims.editions}` : ""} and WIPO's published GII ranks: held, not held, or not enough data, with the evidence and why.` }));
  section.append(el("ol", { class: "claims" }, rows.map((c) => el("li", { class: "claim", "data-id": c.id, "data-verdict": c.verdict },
    el("p", { class: "claim-head" }, el("span", { class: "verdict", "data-verdict": c.verdict, text: c.verdict }), el("strong", { text: c.id }), c.data_label ? el("span", { class: "label", text: c.data_label }) : null),
    el("p", { class: "claim-text", text: c.text }),
    el("table", { class: "kv" }, el("tbody", {},
      el("tr", {}, el("th", { text: "Checked as" }), el("td", { text: c.statement })),
      el("tr", {}, el("th", { text: "Stated by" }), el("td", { class: "source", text: [c.claim_publisher, c.claim_date, c.claim_title, c.claim_url].filter(Boolean).join(" — ") })),
      c.decided_by ? el("tr", {}, el("th", { text: "Decided by" }), el("td", { text: c.decided_by })) : null,
      el("tr", {}, el("th", { text: "Evidence" }), el("td", { class: "evidence" }, c.evidence ? el("ul", {}, c.evidence.split(" | ").map((e) => el("li", { text: e }))) : "none")),
      c.why ? el("tr", {}, el("th", { text: "Why" }), el("td", { class: "why", text: c.why })) : null))))));
  return section;
}

function creditsSection(region) {
  return el("section", { class: "region-section region-credits", id: "region-credits" },
    el("h3", { text: "Sources and credits" }),
    el("ul", {}, [...region.credits, ...((region.claims || {}).credits ? [region.claims.credits] : [])].map((c) => el("li", { text: c }))),
    el("details", {}, el("summary", { text: `Publishers of the indicator figures (${region.publishers.length})` }),
      el("ul", { class: "publishers" }, region.publishers.map((p) => el("li", { text: p })))));
}

/**
 * Fill `box` with the region page. `onCluster(clusterId)` shows a cluster on the map;
 * `shown` is the set of cluster ids the map has.
 */
export function renderRegion(box, region, { onCluster, shown }) {
  const colour = colourer(region);
  const members = [...groupBy(region.members.map(([name, economy]) => ({ name, economy: economy || "?" })), "economy")]
    .map(([eco, ms]) => `${eco}: ${ms.map((m) => m.name).join(", ")}`).join(" · ");
  const sections = [
    ["region-indicators", "Indicators"], ["region-run", "From the run"],
    ["region-integration", "Integration"], ["region-claims", "Claims"], ["region-credits", "Sources"]];
  box.append(
    el("header", { class: "region-head" },
      el("h2", { text: `${region.name} (${region.id})` }),
      el("p", { class: "sub", text: `Members: ${members}` }),
      region.groups.length ? el("p", { class: "sub", text: `Groups: ${region.groups.map(([g, ms]) => `${g} (${ms.join(", ")})`).join("; ")}` }) : null,
      region.label ? el("p", { class: "notice", role: "note", text: `The run's data: ${region.label}. Figures computed from it (counts, shares, clusters, integration) are not real activity.` }) : null,
      el("nav", { class: "region-nav" }, sections.map(([id, label]) => el("button", { type: "button", "data-target": id, text: label,
        onclick: () => box.querySelector(`#${id}`).scrollIntoView({ block: "start" }) })))),
    indicatorsSection(region, colour),
    el("section", { class: "region-section region-run", id: "region-run" },
      el("h3", { text: "Computed from the run" }), cityClusters(region, onCluster, shown), computedTable(region)),
    integrationSection(region, colour),
    claimsSection(region.claims),
    creditsSection(region));
}
