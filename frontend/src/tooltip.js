// The hover/tap card of one cluster: name, economy, rank, counts and shares per metric,
// score, intensity (per million inhabitants), previous rank and move in an edition.
import { el, clear } from "./dom.js";
import { fmt, fmtInt, fmtMove, metricLabel } from "./format.js";

/** The card's content for `cluster` (a DocumentFragment-like element list). */
export function clusterCard(cluster, metrics) {
  const rows = [];
  const row = (key, label, value) => rows.push(el("tr", { "data-k": key }, el("th", { text: label }), el("td", { text: value })));
  row("rank", "Rank", fmtInt(cluster.rank));
  row("economy", "Economy", cluster.economy || "–");
  for (const m of metrics) {
    row(`${m}_weight`, `${metricLabel(m)} count`, fmt(cluster.weight[m], 2));
    row(`${m}_share_pct`, `${metricLabel(m)} share`, fmt(cluster.share_pct[m], 2) + " %");
  }
  row("score_pct", "Score", fmt(cluster.score_pct, 2) + " %");
  if (cluster.population) {
    row("population", "Population", fmtInt(cluster.population));
    for (const m of metrics) {
      const v = cluster.per_million_pop[m];
      if (v !== null && v !== undefined) row(`${m}_per_million_pop`, `${metricLabel(m)} per million inh.`, fmt(v, 2));
    }
  }
  if (cluster.prev_rank !== null && cluster.prev_rank !== undefined) {
    row("prev_rank", "Previous rank", fmtInt(cluster.prev_rank));
    row("move", "Move", fmtMove(cluster.move));
  } else if (cluster.status) {
    row("status", "Status", cluster.status);
  }
  return [el("div", { class: "card-title", text: cluster.name || cluster.cluster_id }), el("table", { class: "card" }, el("tbody", {}, rows))];
}

/** A floating tooltip inside `container`. */
export function createTooltip(container, metrics) {
  const tip = el("div", { class: "tooltip", role: "tooltip", hidden: true });
  container.append(tip);
  let current = null;
  return {
    show(cluster, ev) {
      if (!cluster) { tip.hidden = true; current = null; return; }
      if (current !== cluster) {
        clear(tip).append(...clusterCard(cluster, metrics));
        tip.setAttribute("data-id", cluster.cluster_id);
        current = cluster;
      }
      tip.hidden = false;
      if (ev && ev.clientX !== undefined) {
        const r = container.getBoundingClientRect();
        const x = ev.clientX - r.left, y = ev.clientY - r.top;
        const w = tip.offsetWidth, h = tip.offsetHeight;
        tip.style.left = `${Math.min(Math.max(4, x + 14), r.width - w - 4)}px`;
        tip.style.top = `${y + 14 + h > r.height ? Math.max(4, y - h - 10) : y + 14}px`;
      }
    },
  };
}
