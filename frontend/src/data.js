// The run's data as the page receives it (one JSON payload, see stclusters.reports.html):
// decoding of the compact footprints and points, and the derived fields the views share.

/** Metric colours, in the payload's metric order (patent, publication, then others). */
export const METRIC_COLOURS = ["#1f6fb2", "#d9661f", "#2a9d5b", "#8e44ad", "#b8860b", "#c2185b"];

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
 * The clusters ready for the views: footprints decoded (polygons of rings of [lon, lat]),
 * the dominant metric (largest share of its world total) and the score relative to the top.
 */
export function prepareClusters(payload) {
  const metrics = payload.metrics;
  const maxScore = payload.clusters.reduce((m, c) => Math.max(m, c.score_pct || 0), 1e-12);
  return payload.clusters.map((c, idx) => {
    let dominant = 0;
    metrics.forEach((m, i) => {
      if ((c.share_pct[m] || 0) > (c.share_pct[metrics[dominant]] || 0)) dominant = i;
    });
    const polygons = (c.footprint || []).map((poly) => poly.map((r) => decodeRing(r, payload.coord_scale)));
    return { ...c, idx, dominant, relScore: (c.score_pct || 0) / maxScore, polygons };
  });
}
