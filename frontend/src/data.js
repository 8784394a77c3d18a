// The run's data as the page receives it (one JSON payload, see stclusters.reports.html):
// decoding of the compact footprints and points, and the derived fields the views share.

/**
 * Metric colours, in the payload's metric order (patent, publication, then the others by
 * name): the Okabe–Ito palette of stclusters.reports.figures.METRIC_COLOURS.
 */
export const METRIC_COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#555555"];

/** Decode one delta-encoded ring: [x0, y0, dx1, dy1, ...] in 1/scale degrees → [[lon, lat]]. */
export function decodeRing(ints, scale) {
  const ring = new Array(ints.length / 2);
  let x = 0;
  let y = 0;
  for (let i = 0; i < ints.length; i += 2) {
    x += ints[i];
    y += ints[i + 1];
    ring[i / 2] = [x / scale, y / scale];
  }
  return ring;
}

/** Decode the flat delta-encoded point list into Float64Arrays of lon and lat (degrees). */
export function decodePoints(points) {
  const ints = points.xy;
  const n = ints.length / 2;
  const lon = new Float64Array(n);
  const lat = new Float64Array(n);
  let x = 0;
  let y = 0;
  for (let i = 0; i < n; i++) {
    x += ints[2 * i];
    y += ints[2 * i + 1];
    lon[i] = x / points.scale;
    lat[i] = y / points.scale;
  }
  return { lon, lat, n };
}

/**
 * Index (in `metrics`) of a cluster's dominant metric: the largest part of its score,
 * weight × share of the world total. A metric of weight 0 never dominates; a tie goes to
 * the earlier metric (the rule of stclusters.reports.figures.RunFigureData.dominant).
 * @param {Object} cluster  a payload cluster (its `share_pct`).
 * @param {string[]} metrics  the metrics in colour order.
 * @param {Object} weights  metric → weight in the score (a missing metric weighs 1).
 * @returns {number} the metric's index (0 when no metric weighs more than 0).
 */
export function dominantMetric(cluster, metrics, weights) {
  let best = -1;
  let bestPart = -Infinity;
  metrics.forEach((m, i) => {
    const w = weights[m] === undefined || weights[m] === null ? 1 : weights[m];
    const part = w * ((cluster.share_pct || {})[m] || 0);
    if (w > 0 && part > bestPart) {
      best = i;
      bestPart = part;
    }
  });
  return Math.max(best, 0);
}

/**
 * The clusters ready for the views: footprints decoded (polygons of rings of [lon, lat]),
 * the dominant metric (dominantMetric) and the score relative to the top.
 * @param {Object} payload  {metrics, clusters, coord_scale, score_weights}.
 * @param {Object} [weights]  metric → weight; default the payload's `score_weights` (the
 *   explorer passes its current weights).
 */
export function prepareClusters(payload, weights) {
  const metrics = payload.metrics;
  const w = weights || payload.score_weights || {};
  const maxScore = payload.clusters.reduce((m, c) => Math.max(m, c.score_pct || 0), 1e-12);
  return payload.clusters.map((c, idx) => {
    const dominant = dominantMetric(c, metrics, w);
    const polygons = (c.footprint || []).map((poly) => poly.map((r) => decodeRing(r, payload.coord_scale)));
    return { ...c, idx, dominant, relScore: (c.score_pct || 0) / maxScore, polygons };
  });
}
