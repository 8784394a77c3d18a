// The world map: land and weighted points on a canvas, cluster footprints and score markers
// in SVG above it, one view transform (zoom k, pan x/y) shared by both. Data in, drawing out:
// the explorer reuses it with new clusters through `setClusters`.
import { geoNaturalEarth1, geoPath } from "d3-geo";
import { feature, mesh } from "topojson-client";
import { METRIC_COLOURS } from "./data.js";
import { svgEl, clear } from "./dom.js";

// Base plane: the projection fills a BASE_W × BASE_H box; the view maps it to the screen.
const BASE_W = 1000;
const BASE_H = 520;
const MAX_ZOOM = 4000; // base unit ≈ 40 km at k = 1: k = 4000 shows ≈ 10 m per base unit
const MARKER_MIN_PX = 2.5;
const MARKER_SPAN_PX = 11;
const FLY_MS = 650;
const SETTLE_MS = 120;

/** Project one ring of [lon, lat] to an SVG path segment in base units (planar, so the
 * footprint's winding order does not matter, unlike d3's spherical polygons). */
function ringPath(projection, ring) {
  let d = "";
  for (let i = 0; i < ring.length; i++) {
    const p = projection(ring[i]);
    if (!p) continue;
    d += (d ? "L" : "M") + p[0].toFixed(3) + "," + p[1].toFixed(3);
  }
  return d ? d + "Z" : "";
}

/**
 * Bounding box [x0, y0, x1, y1] of a cluster's footprint in base units, around its centre.
 * Vertices are taken as offsets from the centre, unwrapped across ±180°, and scaled by the
 * projection's local units per degree: a footprint on the antimeridian (Fiji, Chukotka) is
 * one small box, not a box spanning the world.
 */
function bounds(projection, cluster) {
  let a0 = Infinity, b0 = Infinity, a1 = -Infinity, b1 = -Infinity;
  for (const poly of cluster.polygons) {
    for (const p of poly[0] || []) {
      let dl = p[0] - cluster.lon;
      dl -= 360 * Math.round(dl / 360);
      const db = p[1] - cluster.lat;
      a0 = Math.min(a0, dl); a1 = Math.max(a1, dl);
      b0 = Math.min(b0, db); b1 = Math.max(b1, db);
    }
  }
  const q = projection([cluster.lon, cluster.lat]);
  if (a0 === Infinity) return [q[0] - 0.5, q[1] - 0.5, q[0] + 0.5, q[1] + 0.5];
  // Units per degree at the centre, measured towards the inside of the map.
  const e = 0.01;
  const qx = projection([cluster.lon + (cluster.lon > 0 ? -e : e), cluster.lat]);
  const qy = projection([cluster.lon, cluster.lat + (cluster.lat > 0 ? -e : e)]);
  const kx = Math.hypot(qx[0] - q[0], qx[1] - q[1]) / e;
  const ky = Math.hypot(qy[0] - q[0], qy[1] - q[1]) / e;
  return [q[0] + a0 * kx, q[1] - b1 * ky, q[0] + a1 * kx, q[1] - b0 * ky];
}

/**
 * Create the map in `container`.
 *
 * @param {HTMLElement} container
 * @param {object} opts  { outlines (TopoJSON), metrics, onHover(cluster|null, event),
 *                         onSelect(cluster) }
 * @returns the map's handle: setClusters, setPoints, select, flyTo, view, screenOf, reset
 */
export function createMap(container, opts) {
  const projection = geoNaturalEarth1().fitExtent([[4, 4], [BASE_W - 4, BASE_H - 4]], { type: "Sphere" });
  const outline = opts.outlines;
  const land = new Path2D(geoPath(projection)(feature(outline, outline.objects.countries)));
  const borders = new Path2D(geoPath(projection)(mesh(outline, outline.objects.countries, (a, b) => a !== b)));
  const sphere = new Path2D(geoPath(projection)({ type: "Sphere" }));

  const canvas = document.createElement("canvas");
  canvas.className = "map-canvas";
  const svg = svgEl("svg", { class: "map-svg", role: "img", "aria-label": "Map of the ranked clusters" });
  const view = svgEl("g", { class: "view" });
  const gFoot = svgEl("g", { class: "footprints" });
  const gMark = svgEl("g", { class: "markers" });
  view.append(gFoot, gMark);
  svg.append(view);
  container.append(canvas, svg);

  let clusters = [];
  let footNodes = [];
  let markNodes = [];
  let pts = { x: new Float32Array(0), y: new Float32Array(0), n: 0 };
  let selected = null;
  let t = { k: 1, x: 0, y: 0 }; // the live view
  let drawn = { k: 1, x: 0, y: 0 }; // the view the canvas and SVG were last drawn at
  let settleTimer = 0;
  let size = { w: 1, h: 1 };
  let frame = 0;
  let anim = null;

  function fitTransform() {
    const k = Math.min(size.w / BASE_W, size.h / BASE_H);
    return { k, x: (size.w - BASE_W * k) / 2, y: (size.h - BASE_H * k) / 2 };
  }

  // While the view moves, the drawn layers are only moved and scaled as bitmaps (a CSS
  // transform, cheap at any size); the full redraw waits until the view rests for SETTLE_MS.
  function preview() {
    frame = 0;
    const s = t.k / drawn.k;
    const css = `matrix(${s},0,0,${s},${t.x - drawn.x * s},${t.y - drawn.y * s})`;
    canvas.style.transform = css;
    svg.style.transform = css;
    svg.setAttribute("data-view", `${t.k.toFixed(4)},${t.x.toFixed(2)},${t.y.toFixed(2)}`);
    clearTimeout(settleTimer);
    settleTimer = setTimeout(() => { if (!anim) draw(); }, SETTLE_MS);
  }

  function draw() {
    frame = 0;
    clearTimeout(settleTimer);
    drawn = { ...t };
    canvas.style.transform = "";
    svg.style.transform = "";
    const dpr = window.devicePixelRatio || 1;
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr * t.k, 0, 0, dpr * t.k, dpr * t.x, dpr * t.y);
    ctx.fillStyle = "#eef3f7";
    ctx.fill(sphere);
    ctx.fillStyle = "#dcdcd6";
    ctx.fill(land);
    ctx.lineWidth = 0.6 / t.k;
    ctx.strokeStyle = "#ffffff";
    ctx.stroke(borders);
    // Points in screen pixels: one path, one fill (100,000 rectangles in a few ms).
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "rgba(40, 40, 60, 0.35)";
    ctx.beginPath();
    const s = t.k > 40 ? 2.2 : 1.4;
    for (let i = 0; i < pts.n; i++) {
      const px = pts.x[i] * t.k + t.x;
      const py = pts.y[i] * t.k + t.y;
      if (px < -2 || py < -2 || px > size.w + 2 || py > size.h + 2) continue;
      ctx.rect(px - s / 2, py - s / 2, s, s);
    }
    ctx.fill();
    view.setAttribute("transform", `translate(${t.x.toFixed(3)},${t.y.toFixed(3)}) scale(${t.k.toFixed(6)})`);
    for (let i = 0; i < markNodes.length; i++) markNodes[i].setAttribute("r", (markNodes[i]._rpx / t.k).toFixed(5));
    svg.setAttribute("data-view", `${t.k.toFixed(4)},${t.x.toFixed(2)},${t.y.toFixed(2)}`);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(preview);
  }

  let pending = 0;
  function scheduleDraw() {
    if (!pending) pending = requestAnimationFrame(() => { pending = 0; draw(); });
  }

  function resize() {
    const rect = container.getBoundingClientRect();
    const old = size;
    size = { w: Math.max(1, rect.width), h: Math.max(1, rect.height) };
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(size.w * dpr);
    canvas.height = Math.round(size.h * dpr);
    if (old.w === 1) t = fitTransform();
    else { t.x += (size.w - old.w) / 2; t.y += (size.h - old.h) / 2; }
    draw();
  }

  function clampK(k) {
    const k0 = fitTransform().k;
    return Math.min(k0 * MAX_ZOOM, Math.max(k0 * 0.8, k));
  }

  function zoomAt(factor, sx, sy) {
    const k = clampK(t.k * factor);
    const f = k / t.k;
    t = { k, x: sx - (sx - t.x) * f, y: sy - (sy - t.y) * f };
    schedule();
  }

  function animateTo(target) {
    const from = { ...t };
    const start = performance.now();
    if (anim) cancelAnimationFrame(anim);
    svg.setAttribute("data-animating", "1");
    const step = (now) => {
      const u = Math.min(1, (now - start) / FLY_MS);
      const e = u < 0.5 ? 2 * u * u : 1 - Math.pow(-2 * u + 2, 2) / 2;
      // Interpolate the zoom in log space and the centre in base units: a steady glide.
      const k = Math.exp(Math.log(from.k) + (Math.log(target.k) - Math.log(from.k)) * e);
      const c0 = [(size.w / 2 - from.x) / from.k, (size.h / 2 - from.y) / from.k];
      const c1 = [(size.w / 2 - target.x) / target.k, (size.h / 2 - target.y) / target.k];
      const cx = c0[0] + (c1[0] - c0[0]) * e;
      const cy = c0[1] + (c1[1] - c0[1]) * e;
      t = { k, x: size.w / 2 - cx * k, y: size.h / 2 - cy * k };
      if (u < 1) { preview(); anim = requestAnimationFrame(step); }
      else {
        // End exactly on the target: the glide's arithmetic leaves -0.0000001 for 0.
        t = { k: target.k, x: target.x, y: target.y };
        anim = null; draw(); svg.removeAttribute("data-animating");
      }
    };
    anim = requestAnimationFrame(step);
  }

  // Wheel zoom about the cursor; drag to pan (pointer events: mouse, pen and touch).
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = container.getBoundingClientRect();
    zoomAt(Math.exp(-ev.deltaY * (ev.deltaMode ? 0.05 : 0.002)), ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    drag = { x: ev.clientX, y: ev.clientY, tx: t.x, ty: t.y, moved: false, id: ev.pointerId };
  });
  svg.addEventListener("pointermove", (ev) => {
    if (drag && drag.id === ev.pointerId) {
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) > 3) { drag.moved = true; svg.setPointerCapture(ev.pointerId); svg.classList.add("dragging"); }
      if (drag.moved) { t.x = drag.tx + dx; t.y = drag.ty + dy; schedule(); return; }
    }
    const c = clusterOf(ev.target);
    opts.onHover && opts.onHover(c, ev);
  });
  const endDrag = (ev) => {
    if (!drag) return;
    const wasMove = drag.moved;
    drag = null;
    svg.classList.remove("dragging");
    if (!wasMove && ev.type === "pointerup") {
      const c = clusterOf(ev.target);
      if (c) { opts.onSelect && opts.onSelect(c, "map"); opts.onHover && opts.onHover(c, ev); }
    }
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("pointerleave", () => { if (!drag) opts.onHover && opts.onHover(null); });
  svg.addEventListener("dblclick", (ev) => {
    const r = container.getBoundingClientRect();
    zoomAt(2, ev.clientX - r.left, ev.clientY - r.top);
  });

  function clusterOf(node) {
    const idx = node && node.getAttribute && node.getAttribute("data-idx");
    return idx === null || idx === undefined || idx === "" ? null : clusters[Number(idx)] || null;
  }

  function setClusters(list) {
    clusters = list;
    clear(gFoot);
    clear(gMark);
    footNodes = [];
    markNodes = [];
    // Lowest rank drawn last: the leading cluster's marker is on top where markers overlap.
    const order = [...list].sort((a, b) => b.rank - a.rank);
    for (const c of order) {
      const colour = METRIC_COLOURS[c.dominant % METRIC_COLOURS.length];
      const d = c.polygons.map((poly) => poly.map((r) => ringPath(projection, r)).join("")).join("");
      const opacity = (0.25 + 0.6 * Math.sqrt(c.relScore)).toFixed(3);
      const fp = svgEl("path", { class: "footprint", d, fill: colour, "fill-opacity": opacity, stroke: colour, "data-idx": c.idx, "data-id": c.cluster_id });
      const q = projection([c.lon, c.lat]);
      const mk = svgEl("circle", { class: "marker", cx: q[0].toFixed(3), cy: q[1].toFixed(3), fill: colour, "data-idx": c.idx, "data-id": c.cluster_id });
      mk._rpx = MARKER_MIN_PX + MARKER_SPAN_PX * Math.sqrt(c.relScore);
      footNodes[c.idx] = fp;
      markNodes.push(mk);
      gFoot.append(fp);
      gMark.append(mk);
    }
    selected = null;
    scheduleDraw();
  }

  function setPoints(lon, lat, n) {
    const x = new Float32Array(n), y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const q = projection([lon[i], lat[i]]);
      x[i] = q ? q[0] : NaN;
      y[i] = q ? q[1] : NaN;
    }
    pts = { x, y, n };
    scheduleDraw();
  }

  function select(cluster) {
    for (const node of svg.querySelectorAll(".selected")) node.classList.remove("selected");
    selected = cluster;
    if (!cluster) return;
    const fp = footNodes[cluster.idx];
    const mk = markNodes.find((m) => Number(m.getAttribute("data-idx")) === cluster.idx);
    for (const node of [fp, mk]) {
      if (!node) continue;
      node.classList.add("selected");
      node.parentNode.appendChild(node); // raise above its neighbours
    }
  }

  function flyTo(cluster) {
    const [x0, y0, x1, y1] = bounds(projection, cluster);
    const w = Math.max(x1 - x0, 0.05), h = Math.max(y1 - y0, 0.05);
    const k = clampK(Math.min(size.w * 0.45 / w, size.h * 0.45 / h));
    const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
    animateTo({ k, x: size.w / 2 - cx * k, y: size.h / 2 - cy * k });
  }

  /** The client (page) coordinates of a point [lon, lat] under the current view. */
  function screenOf(lon, lat) {
    const q = projection([lon, lat]);
    const r = container.getBoundingClientRect();
    return [r.left + q[0] * t.k + t.x, r.top + q[1] * t.k + t.y];
  }

  new ResizeObserver(resize).observe(container);
  resize();

  return {
    setClusters,
    setPoints,
    select,
    flyTo,
    screenOf,
    zoomBy: (f) => zoomAt(f, size.w / 2, size.h / 2),
    reset: () => animateTo(fitTransform()),
    view: () => ({ ...t }),
    selected: () => selected,
  };
}
