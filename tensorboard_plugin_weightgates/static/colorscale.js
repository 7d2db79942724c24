// Colour scales of the heatmap and its rasteriser. Pure functions.
//
// "diverging": x / L in [-1, 1] through blue (negative), near-white (0), red (positive),
// ColorBrewer's RdBu. "magnitude": |x| / L in [0, 1] from white to black, for gradients where
// the size matters more than the sign. NaN and ±Inf cells get colours neither scale uses.

export const COLOR_SCALES = Object.freeze([
  { id: "diverging", label: "Signed (blue − 0 + red)" },
  { id: "magnitude", label: "|value| (greyscale)" },
]);

export const NAN_COLOR = Object.freeze([0, 200, 83]);
export const INF_COLOR = Object.freeze([255, 171, 0]);

/** RdBu stops from -1 to 1; the middle one is the colour of 0. */
const DIVERGING_STOPS = [
  [5, 48, 97],
  [33, 102, 172],
  [67, 147, 195],
  [146, 197, 222],
  [209, 229, 240],
  [247, 247, 247],
  [253, 219, 199],
  [244, 165, 130],
  [214, 96, 77],
  [178, 24, 43],
  [103, 0, 31],
];

function interpolate(stops, t) {
  const position = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(position), stops.length - 2);
  const f = position - i;
  return stops[i].map((value, k) => Math.round(value + (stops[i + 1][k] - value) * f));
}

/** Colour of t = x / L, clamped to [-1, 1]. */
export function divergingColor(t) {
  return interpolate(DIVERGING_STOPS, (t + 1) / 2);
}

/** Colour of t = |x| / L, clamped to [0, 1]: white at 0, black at 1. */
export function magnitudeColor(t) {
  const grey = Math.round(255 * (1 - Math.min(Math.max(t, 0), 1)));
  return [grey, grey, grey];
}

/** Colour of value `x` under limit `limit` (> 0) and scale id. */
export function colorOf(x, limit, scale) {
  if (Number.isNaN(x)) return NAN_COLOR;
  if (x === Infinity || x === -Infinity) return INF_COLOR;
  return scale === "magnitude" ? magnitudeColor(Math.abs(x) / limit) : divergingColor(x / limit);
}

/** Odd, so that the middle entry is exactly the colour of 0. */
const LUT_SIZE = 1025;
const lutCache = new Map();

/** Lookup table of LUT_SIZE colours over the scale's domain ([-1, 1] or [0, 1]), RGB bytes. */
function lookupTable(scale) {
  if (!lutCache.has(scale)) {
    const lut = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE; i++) {
      const f = i / (LUT_SIZE - 1);
      lut.set(scale === "magnitude" ? magnitudeColor(f) : divergingColor(2 * f - 1), i * 3);
    }
    lutCache.set(scale, lut);
  }
  return lutCache.get(scale);
}

/**
 * Writes the RGBA pixels of a `rows x cols` row-major grid into `out` (length rows*cols*4),
 * cell (r, c) at pixel (c, r), with `limits[c]` the limit of column c. Returns the number of
 * NaN and ±Inf cells seen: `{nan, inf}`.
 */
export function rasterize(out, values, rows, cols, limits, scale) {
  const lut = lookupTable(scale);
  const magnitude = scale === "magnitude";
  const top = LUT_SIZE - 1;
  let nan = 0;
  let inf = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const cell = r * cols + c;
      const x = values[cell];
      const o = cell * 4;
      let color;
      if (x !== x) {
        color = NAN_COLOR;
        nan++;
      } else if (x === Infinity || x === -Infinity) {
        color = INF_COLOR;
        inf++;
      }
      if (color) {
        out[o] = color[0];
        out[o + 1] = color[1];
        out[o + 2] = color[2];
      } else {
        const t = magnitude ? Math.abs(x) / limits[c] : (x / limits[c] + 1) / 2;
        const k = Math.round(Math.min(Math.max(t, 0), 1) * top) * 3;
        out[o] = lut[k];
        out[o + 1] = lut[k + 1];
        out[o + 2] = lut[k + 2];
      }
      out[o + 3] = 255;
    }
  }
  return { nan, inf };
}

/** CSS colour of an [r, g, b] triple. */
export function cssColor([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

/**
 * A colour range as a label, in the scale's own terms: "±0.609" for the diverging scale
 * (-L … +L), "|x| ≤ 0.609" for the magnitude (greyscale) scale, whose colours span 0 … L.
 * `format` writes the number.
 */
export function limitText(limit, scale, format) {
  return scale === "magnitude" ? `|x| ≤ ${format(limit)}` : `±${format(limit)}`;
}

/**
 * The colour bar's end labels, `[[text, align]]` left to right. `shared`: the one limit of
 * every panel, or null when they differ (then words say what the ends are); `finite`: whether
 * any panel holds a finite value (a run of NaN only has no range to show).
 */
export function legendLabels(scale, shared, normalisation, finite, format) {
  if (!finite) return [["no finite values", "left"]];
  const words = normalisation === "gate" ? "max|x| of gate" : "max|x| of panel";
  const limit = shared === null ? words : format(shared);
  if (scale === "magnitude") {
    return [
      ["0", "left"],
      [limit, "right"],
    ];
  }
  return [
    [shared === null ? `−${limit}` : format(-shared), "left"],
    ["0", "center"],
    [`+${limit}`, "right"],
  ];
}
