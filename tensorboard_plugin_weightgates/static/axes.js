// What a heatmap's rows and columns are, from a kernel's `axes` (docs/http-api.md): words for
// the hover, the blocks that multi-axis rows form, and the ticks that fit. Pure functions.
//
// A kernel of `shape` [d_0, ..., d_k, cols] with `axes` [a_0, ..., a_k, a_col] has
// d_0 * ... * d_k rows, row-major (a_k varies fastest), and its gates side by side along the
// columns. Consecutive `offset_N` axes read together as one window offset "(dy, dx)".

const AXIS_WORDS = Object.freeze({
  input: "input feature",
  hidden: "hidden unit",
  input_channel: "input channel",
  hidden_channel: "hidden channel",
  token: "token",
  unit: "unit",
  head_dim: "head dim",
  output: "output unit",
});

/** The words for one index of `axis`: "input feature", "unit", "output unit 1", "axis 2". */
export function axisWord(axis) {
  if (axis in AXIS_WORDS) return AXIS_WORDS[axis];
  const output = /^output_(\d+)$/.exec(axis);
  if (output) return `output unit (axis ${output[1]})`;
  if (/^offset_\d+$/.test(axis)) return "window offset";
  const other = /^axis_(\d+)$/.exec(axis);
  return other ? `axis ${other[1]}` : String(axis);
}

/** The row axes and their sizes of a kernel, or null when `axes` does not describe `shape`. */
export function rowAxes(axes, shape) {
  if (!Array.isArray(axes) || !Array.isArray(shape) || axes.length !== shape.length || shape.length === 0) {
    return null;
  }
  return { names: axes.slice(0, -1), sizes: shape.slice(0, -1) };
}

/** Row-major indices of row `row` over axes of `sizes`. */
export function unravel(row, sizes) {
  const indices = new Array(sizes.length);
  let rest = row;
  for (let k = sizes.length - 1; k >= 0; k--) {
    indices[k] = rest % sizes[k];
    rest = Math.floor(rest / sizes[k]);
  }
  return indices;
}

/** Groups the indices of `names` into phrases: offsets together, "window offset (1, 2)". */
function phrases(names, indices) {
  const parts = [];
  let offsets = [];
  const flush = () => {
    if (offsets.length) parts.push(`window offset (${offsets.join(", ")})`);
    offsets = [];
  };
  names.forEach((name, k) => {
    if (/^offset_\d+$/.test(name)) {
      offsets.push(indices[k]);
      return;
    }
    flush();
    parts.push(`${axisWord(name)} ${indices[k]}`);
  });
  flush();
  return parts.join(", ");
}

/**
 * What the original rows [r0, r1) of a kernel are: "input feature 3", "input feature 0–7",
 * "window offset (1, 0), input channel 1", a range of those joined by " to ". Null for a
 * kernel of one row (a bias), and "row 3" when `axes` does not describe `shape`.
 */
export function describeRows(axes, shape, [r0, r1]) {
  const row = rowAxes(axes, shape);
  if (row && row.names.length === 0) return null;
  if (!row) return r1 - r0 <= 1 ? `row ${r0}` : `rows ${r0}–${r1 - 1}`;
  if (row.names.length === 1) {
    return `${axisWord(row.names[0])} ${r1 - r0 <= 1 ? r0 : `${r0}–${r1 - 1}`}`;
  }
  const first = phrases(row.names, unravel(r0, row.sizes));
  return r1 - r0 <= 1 ? first : `${first} to ${phrases(row.names, unravel(r1 - 1, row.sizes))}`;
}

/** A gate's name in running text: "head 2" for `head_2`, "forget gate", or null. */
export function gateWords(gate) {
  if (gate === null || gate === undefined) return null;
  const head = /^head_(\d+)$/.exec(gate);
  return head ? `head ${head[1]}` : `${gate} gate`;
}

/**
 * What the columns of units [u0, u1) of `gate` are: "forget gate, unit 2", "head 1, head dim
 * 0–3", "output unit 5" (an unsplit kernel, gate null).
 */
export function describeColumns(axes, gate, [u0, u1]) {
  const axis = Array.isArray(axes) && axes.length ? axes[axes.length - 1] : "unit";
  const units = `${axisWord(axis)} ${u1 - u0 <= 1 ? u0 : `${u0}–${u1 - 1}`}`;
  const words = gateWords(gate);
  return words ? `${words}, ${units}` : units;
}

/** "rows: window offset, input channel · columns: gate, unit" for the caption under a heatmap. */
export function axesCaption(axes, shape, gates) {
  const row = rowAxes(axes, shape);
  const column = Array.isArray(axes) && axes.length ? axisWord(axes[axes.length - 1]) : "unit";
  const gated = gates.some((gate) => gate !== null);
  const heads = gates.some((gate) => /^head_\d+$/.test(gate ?? ""));
  const columns = `columns: ${gated ? (heads ? "head, " : "gate, ") : ""}${column}`;
  if (!row || row.names.length === 0) return columns;
  const words = [];
  for (const name of row.names) {
    const word = axisWord(name);
    if (!words.includes(word)) words.push(word);
  }
  return `rows: ${words.join(", ")} · ${columns}`;
}

/**
 * The blocks that multi-axis rows form, outermost first: `[{size, level}]` where a block of
 * `level` k holds the `size` rows that share the indices of row axes 0..k ([] for one axis).
 */
export function rowBlocks(axes, shape) {
  const row = rowAxes(axes, shape);
  if (!row || row.names.length < 2) return [];
  const blocks = [];
  for (let k = 0; k + 1 < row.sizes.length; k++) {
    blocks.push({ size: row.sizes.slice(k + 1).reduce((a, b) => a * b, 1), level: k });
  }
  return blocks;
}

/**
 * Separator lines between row blocks on a heatmap of `rows` stored rows of `blockRows`
 * original rows each, `height` pixels tall: `[{y, level}]` in stored rows (0..rows), only for
 * blocks that start on a stored row and are at least `minPixels` apart.
 */
export function rowSeparators(axes, shape, rows, blockRows, height, minPixels = 3) {
  const lines = new Map();
  for (const { size, level } of rowBlocks(axes, shape)) {
    if (size % blockRows !== 0) continue;
    const stored = size / blockRows;
    if ((stored / rows) * height < minPixels) continue;
    for (let y = stored; y < rows; y += stored) if (!lines.has(y)) lines.set(y, level);
  }
  return [...lines].map(([y, level]) => ({ y, level })).sort((a, b) => a.y - b.y);
}

/** The smallest of 1, 2, 5, 10, 20, ... at least `minimum`. */
function niceStride(minimum) {
  let power = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * power >= minimum) return m * power;
    power *= 10;
  }
}

/**
 * Row ticks that fit a heatmap `height` pixels tall with `rows` stored rows of `blockRows`
 * original rows: `[{y, text}]`, `y` the tick's centre as a fraction of the height. One axis:
 * indices at a round stride at least `minPixels` apart. Several axes: the start of each
 * block of the finest level that fits, labelled with its indices ("(1, 2)" for offsets).
 */
export function rowTicks(axes, shape, rows, blockRows, height, minPixels = 14) {
  const row = rowAxes(axes, shape);
  const originalRows = row ? row.sizes.reduce((a, b) => a * b, 1) : rows * blockRows;
  if (rows <= 0 || height <= 0 || (row && row.names.length === 0)) return [];
  const pixelsPerRow = height / (rows * blockRows);
  const at = (start, size) => ({ y: Math.min(1, (start + size / 2) / (rows * blockRows)) });
  if (!row || row.names.length === 1) {
    const stride = niceStride(Math.max(blockRows, minPixels / pixelsPerRow));
    const ticks = [];
    for (let r = 0; r < originalRows; r += stride) ticks.push({ ...at(r, 1), text: String(r) });
    return ticks;
  }
  for (let level = row.names.length - 2; level >= 0; level--) {
    const size = row.sizes.slice(level + 1).reduce((a, b) => a * b, 1);
    if (size * pixelsPerRow < minPixels) continue;
    const ticks = [];
    for (let start = 0; start < originalRows; start += size) {
      const indices = unravel(start, row.sizes).slice(0, level + 1);
      const offsets = row.names.slice(0, level + 1).every((name) => /^offset_\d+$/.test(name));
      ticks.push({ ...at(start, size), text: offsets ? `(${indices.join(", ")})` : indices.join(", ") });
    }
    return ticks;
  }
  const size = row.sizes.slice(1).reduce((a, b) => a * b, 1);
  const stride = niceStride(minPixels / (size * pixelsPerRow));
  const ticks = [];
  for (let i = 0; i < row.sizes[0]; i += stride) ticks.push({ ...at(i * size, size), text: `(${i}, …)` });
  return ticks;
}

/**
 * The number of characters of the longest row tick of a kernel (0 without row ticks), so that
 * the tick column has its width before the ticks that fit are known.
 */
export function rowTickChars(axes, shape) {
  const row = rowAxes(axes, shape);
  if (row && row.names.length === 0) return 0;
  if (!row) return String(Math.max(0, (shape ?? [1]).slice(0, -1).reduce((a, b) => a * b, 1) - 1)).length;
  if (row.names.length === 1) return String(Math.max(0, row.sizes[0] - 1)).length;
  const largest = row.sizes.slice(0, -1).map((size) => size - 1);
  return `(${largest.join(", ")})`.length;
}

/**
 * Column ticks per gate on a heatmap `width` pixels wide: `[{x, text}]`, `x` the centre of the
 * unit's stored column as a fraction of the width, units counted from 0 in each gate at a
 * round stride at least `minPixels` apart. `originalBoundaries` are the gates' columns in the
 * kernel, `storedBoundaries` in the stored grid of `cols` columns of `blockCols` units.
 */
export function columnTicks(originalBoundaries, storedBoundaries, cols, blockCols, width, minPixels = 24) {
  if (cols <= 0 || width <= 0) return [];
  const pixelsPerUnit = width / (cols * blockCols);
  const stride = niceStride(Math.max(blockCols, minPixels / pixelsPerUnit));
  const ticks = [];
  for (let g = 0; g + 1 < originalBoundaries.length; g++) {
    const units = originalBoundaries[g + 1] - originalBoundaries[g];
    for (let u = 0; u < units; u += stride) {
      const column = storedBoundaries[g] + Math.floor(u / blockCols);
      ticks.push({ x: (column + 0.5) / cols, text: String(u) });
    }
  }
  return ticks;
}
