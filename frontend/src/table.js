// The ranking table: sortable (click a header), filtered by economy and by name, linked to
// the map through `onSelect`. Rows are built once and reordered, never re-rendered from HTML.
import { el, clear } from "./dom.js";
import { fmt, fmtInt, fmtMove, metricLabel } from "./format.js";

const ROWS_STEP = 150;

/** Column definitions: key, header, value getter, formatter, numeric? */
export function tableColumns(metrics, { editions = false } = {}) {
  const cols = [
    { key: "rank", label: "Rank", get: (c) => c.rank, show: fmtInt, num: true },
    { key: "name", label: "Cluster", get: (c) => c.name || "", show: String, num: false },
    { key: "economy", label: "Economy", get: (c) => c.economy || "", show: String, num: false },
  ];
  for (const m of metrics) {
    cols.push({ key: `${m}_weight`, label: `${metricLabel(m)} count`, get: (c) => c.weight[m], show: (v) => fmt(v, 2), num: true });
    cols.push({ key: `${m}_share_pct`, label: `${metricLabel(m)} share %`, get: (c) => c.share_pct[m], show: (v) => fmt(v, 2), num: true });
  }
  cols.push({ key: "score_pct", label: "Score %", get: (c) => c.score_pct, show: (v) => fmt(v, 2), num: true });
  if (editions) {
    cols.push({ key: "prev_rank", label: "Prev. rank", get: (c) => c.prev_rank, show: fmtInt, num: true });
    cols.push({ key: "move", label: "Move", get: (c) => c.move, show: fmtMove, num: true });
  }
  return cols;
}

/**
 * Create the table in `container`.
 * @param {object} opts { clusters, metrics, editions, onSelect(cluster) }
 */
export function createTable(container, opts) {
  const cols = tableColumns(opts.metrics, { editions: opts.editions });
  const economies = [...new Set(opts.clusters.map((c) => c.economy || ""))].sort();
  const select = el("select", { class: "filter-economy", "aria-label": "Filter by economy" },
    el("option", { value: "", text: "All economies" }),
    economies.map((e) => el("option", { value: e, text: e || "(none)" })));
  const search = el("input", { class: "filter-name", type: "search", placeholder: "Filter by name", "aria-label": "Filter by name" });
  const count = el("span", { class: "row-count" });
  const head = el("tr", {}, cols.map((col) => el("th", {
    "data-key": col.key, class: col.num ? "num" : "", scope: "col", tabindex: "0", text: col.label,
  })));
  const tbody = el("tbody");
  const table = el("table", { class: "ranking" }, el("thead", {}, head), tbody);
  container.append(el("div", { class: "table-tools" }, select, search, count), el("div", { class: "table-scroll" }, table));

  // Rows are made when first shown: the first ROWS_STEP of the current order, more as the
  // reader scrolls down (a 1,000-row table laid out at once would delay the page).
  const rows = new Array(opts.clusters.length);
  const rowOf = (c) => rows[c.idx] || (rows[c.idx] = el("tr", { "data-idx": c.idx, "data-id": c.cluster_id, tabindex: "-1" },
    cols.map((col) => el("td", { class: col.num ? "num" : "", "data-key": col.key, text: col.show(col.get(c)) }))));
  let sort = { key: "rank", dir: 1 };
  let order = [...opts.clusters];
  let kept = order;
  let limit = ROWS_STEP;
  let selectedIdx = null;
  const scroller = container.querySelector(".table-scroll");

  function compare(col, dir) {
    return (a, b) => {
      const va = col.get(a), vb = col.get(b);
      const na = va === null || va === undefined, nb = vb === null || vb === undefined;
      if (na || nb) return na === nb ? a.rank - b.rank : na ? 1 : -1; // missing values last
      const d = col.num ? va - vb : String(va).localeCompare(String(vb));
      return d ? d * dir : a.rank - b.rank;
    };
  }

  function fill() {
    const frag = document.createDocumentFragment();
    for (let i = tbody.childElementCount; i < Math.min(limit, kept.length); i++) frag.appendChild(rowOf(kept[i]));
    tbody.appendChild(frag);
  }

  function render() {
    const col = cols.find((c) => c.key === sort.key);
    order = [...opts.clusters].sort(compare(col, sort.dir));
    const eco = select.value;
    const needle = search.value.trim().toLowerCase();
    kept = order.filter((c) => (!eco || (c.economy || "") === eco) && (!needle || (c.name || "").toLowerCase().includes(needle)));
    limit = ROWS_STEP;
    clear(tbody);
    fill();
    count.textContent = `${fmtInt(kept.length)} of ${fmtInt(opts.clusters.length)} clusters`;
    for (const th of head.children) {
      th.setAttribute("aria-sort", th.dataset.key === sort.key ? (sort.dir > 0 ? "ascending" : "descending") : "none");
    }
  }

  function onHeader(ev) {
    const th = ev.target.closest("th");
    if (!th) return;
    const col = cols.find((c) => c.key === th.dataset.key);
    // First click: the natural order (names A→Z, numbers high→low, rank 1 first).
    const natural = col.num && col.key !== "rank" && col.key !== "prev_rank" ? -1 : 1;
    sort = sort.key === col.key ? { key: col.key, dir: -sort.dir } : { key: col.key, dir: natural };
    render();
  }
  head.addEventListener("click", onHeader);
  head.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); onHeader(ev); } });
  select.addEventListener("change", render);
  search.addEventListener("input", render);
  tbody.addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr) opts.onSelect(opts.clusters[Number(tr.dataset.idx)], "table");
  });
  tbody.addEventListener("keydown", (ev) => {
    const tr = ev.target.closest("tr");
    if (!tr) return;
    const next = ev.key === "ArrowDown" ? tr.nextElementSibling : ev.key === "ArrowUp" ? tr.previousElementSibling : null;
    if (ev.key === "Enter") opts.onSelect(opts.clusters[Number(tr.dataset.idx)], "table");
    if (next) { ev.preventDefault(); next.focus(); opts.onSelect(opts.clusters[Number(next.dataset.idx)], "table"); }
  });
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop + scroller.clientHeight > scroller.scrollHeight - 200 && limit < kept.length) {
      limit += ROWS_STEP;
      fill();
    }
  });
  render();

  return {
    select(cluster, { scroll = false } = {}) {
      if (selectedIdx !== null) rowOf(opts.clusters[selectedIdx]).classList.remove("selected");
      selectedIdx = cluster ? cluster.idx : null;
      if (!cluster) return;
      const row = rowOf(cluster);
      row.classList.add("selected");
      const at = kept.indexOf(cluster);
      if (at >= limit) { limit = at + 1; fill(); }
      if (scroll && row.isConnected) scroller.scrollTop = row.offsetTop - scroller.clientHeight / 3;
    },
  };
}
