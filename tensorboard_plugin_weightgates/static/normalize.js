// Normalisation of heatmaps: which values share one colour range. Pure functions.
//
// A colour range is a limit L: the diverging scale maps [-L, L] (0 in the middle), the
// magnitude scale maps |x| in [0, L]. Values beyond L take the end colour. L is the largest
// finite |x| of the cells that share the range; NaN and ±Inf never count. L is 0 when those
// cells are all zero or not finite; the rasteriser then draws with a unit range (zeros in the
// middle colour) while labels show the true 0.
//
// A heatmap panel shows one kernel (all its gates side by side) of one run and direction.

export const NORMALISATIONS = Object.freeze([
  {
    id: "gate",
    label: "Per gate",
    help: "Each gate of each panel has its own range: compares the pattern within a gate, not magnitudes across gates.",
  },
  {
    id: "kernel",
    label: "Per kernel",
    help: "One range per panel, shared by its gates: compares gates of one kernel, run and direction.",
  },
  {
    id: "runs",
    label: "Shared across runs",
    help: "One range for every panel shown (all selected runs and directions): compares runs.",
  },
  {
    id: "fixed",
    label: "Fixed range",
    help: "The range you type, for every panel: compares steps, since it does not move with the data.",
  },
]);

export const DEFAULT_NORMALISATION = "kernel";

/** Largest finite |x| among columns [start, end) of a `rows x cols` row-major grid; 0 if none. */
export function maxAbs(values, rows, cols, start = 0, end = cols) {
  let max = 0;
  for (let r = 0; r < rows; r++) {
    const offset = r * cols;
    for (let c = start; c < end; c++) {
      const a = Math.abs(values[offset + c]);
      if (a > max && a !== Infinity) max = a;
    }
  }
  return max;
}

/** The limit to draw with: an all-zero (or all-NaN) range keeps a unit range so cells show as 0. */
export function usableLimit(limit) {
  return Number.isFinite(limit) && limit > 0 ? limit : 1;
}

/**
 * Limits per panel and gate: `result[p][g]` is the limit for gate `g` of panel `p`.
 *
 * `panels` are `{values, rows, cols, boundaries}` (boundaries: gate column offsets, length
 * gates + 1); `mode` one of NORMALISATIONS' ids; `fixedLimit` the limit of "fixed".
 */
export function computeLimits(panels, mode, fixedLimit = 1) {
  const gateMax = panels.map((p) =>
    p.boundaries.slice(0, -1).map((start, g) => maxAbs(p.values, p.rows, p.cols, start, p.boundaries[g + 1])),
  );
  const perGates = (limitOf) => gateMax.map((gates, p) => gates.map(() => limitOf(gates, p)));
  switch (mode) {
    case "gate":
      return gateMax;
    case "kernel":
      return perGates((gates) => Math.max(0, ...gates));
    case "runs": {
      const shared = Math.max(0, ...gateMax.flat());
      return perGates(() => shared);
    }
    case "fixed":
      return perGates(() => fixedLimit);
    default:
      throw new RangeError(`unknown normalisation ${mode}`);
  }
}

/** Limits per column from per-gate limits, for the rasteriser (usable: never 0). */
export function columnLimits(gateLimits, boundaries, cols) {
  const limits = new Float64Array(cols);
  gateLimits.forEach((limit, g) => limits.fill(usableLimit(limit), boundaries[g], boundaries[g + 1]));
  return limits;
}

/** The single limit shared by all `limits` (a computeLimits result), or null if they differ. */
export function sharedLimit(limits) {
  const all = limits.flat();
  if (all.length === 0) return null;
  return all.every((limit) => limit === all[0]) ? all[0] : null;
}
