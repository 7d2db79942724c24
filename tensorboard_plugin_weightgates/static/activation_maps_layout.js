// The unit x timestep maps of the probe sample (the `activation_maps` route): which colour
// scale and range each map gets, what a stored cell stands for, and which columns the mask
// hides. Pure functions; the colours themselves come from colorscale.js, as the weight
// heatmaps'.

import { maxAbs } from "./normalize.js";

export const MAP_RANGES = Object.freeze([
  {
    id: "natural",
    label: "Value's own range",
    help: "Gates span 0 … 1, tanh values −1 … 1 (their whole range, so maps compare across steps and runs); cell states and dL/dh_t their largest |value|.",
  },
  { id: "map", label: "Per map", help: "Each map spans its own largest |value|: shows the pattern of small values." },
  {
    id: "runs",
    label: "Shared across runs",
    help: "A name's maps in every run shown share one range: compares runs.",
  },
]);

export const MAP_SCALES = Object.freeze([
  { id: "auto", label: "Auto (gates 0 … 1, others signed)" },
  { id: "diverging", label: "Signed (blue − 0 + red)" },
  { id: "magnitude", label: "|value| (greyscale)" },
]);

/** The colour scale of a map: gates (sigmoid-type) on the magnitude scale, others signed. */
export function mapScale(saturationType, scale) {
  if (scale !== "auto") return scale;
  return saturationType === "sigmoid" ? "magnitude" : "diverging";
}

/**
 * The colour limit of a map of `values` (`rows x cols`) under `range` (MAP_RANGES' ids):
 * `natural` is 1 for sigmoid- and tanh-type values, their largest |x| otherwise; `runs` uses
 * `sharedMax`, the largest |x| of the name over the runs shown. 0 when there is no finite value.
 */
export function mapLimit(saturationType, values, rows, cols, range, sharedMax = 0) {
  if (range === "natural" && saturationType) return 1;
  if (range === "runs") return sharedMax;
  return maxAbs(values, rows, cols);
}

/** Stored columns of a map whose timesteps the mask drops entirely (`valid` 0). */
export function maskedColumns(valid) {
  const columns = new Set();
  (valid ?? []).forEach((fraction, c) => {
    if (fraction === 0) columns.add(c);
  });
  return columns;
}

/** NaN cells of a map outside masked columns: values that are NaN, not masked timesteps. */
export function nanCells(values, rows, cols, masked) {
  let count = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const x = values[r * cols + c];
      if (x !== x && !masked.has(c)) count++;
    }
  }
  return count;
}

/**
 * What stored cell (row, col) of a map stands for: `{units: [u0, u1), timesteps: [t0, t1),
 * position}` (half-open ranges; `position` the spatial index of a ConvLSTM row, or null). Rows
 * are `prod(spatial) * units` original rows, the unit varying fastest; `block` is the header's.
 */
export function mapCell(header, row, col) {
  const [blockRows, blockCols] = header.block ?? [1, 1];
  const [originalRows, timesteps] = header.shape;
  const r0 = row * blockRows;
  const r1 = Math.min(r0 + blockRows, originalRows);
  const t0 = col * blockCols;
  const t1 = Math.min(t0 + blockCols, timesteps);
  const units = header.units;
  if ((header.spatial ?? []).length === 0) return { units: [r0, r1], timesteps: [t0, t1], position: null };
  if (r1 - r0 === 1) return { units: [r0 % units, (r0 % units) + 1], timesteps: [t0, t1], position: Math.floor(r0 / units) };
  return { units: [r0, r1], timesteps: [t0, t1], position: null };
}
