// Number and text formatting shared by the report and the explorer. Every value shown to
// the reader goes through these, so the page and its tests agree on one rounding.

const EN = "en-US";

/** A number with `digits` decimals and thousands separators; "–" when missing. */
export function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString(EN, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** An integer with thousands separators. */
export function fmtInt(value) {
  return fmt(value, 0);
}

/** A signed move: "+3", "−2", "0". */
export function fmtMove(value) {
  if (value === null || value === undefined) return "–";
  if (value > 0) return "+" + fmtInt(value);
  if (value < 0) return "\u2212" + fmtInt(-value);
  return "0";
}

/** A human label for a metric key (`patent` → "Patent", `vc_deal` → "Vc deal"). */
export function metricLabel(key) {
  const text = String(key).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
