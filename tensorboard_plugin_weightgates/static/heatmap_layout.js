// Geometry of a heatmap: its size on screen, which cell a pointer is over, and which original
// weights a stored cell stands for. Pure functions.

import { gateIndexAt } from "./layers.js";

export const MIN_HEIGHT = 20;
export const MAX_HEIGHT = 320;

/** CSS height of a heatmap `width` pixels wide: square cells, within [MIN_HEIGHT, MAX_HEIGHT]. */
export function heatmapHeight(rows, cols, width) {
  if (rows <= 0 || cols <= 0 || width <= 0) return MIN_HEIGHT;
  return Math.round(Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, (rows * width) / cols)));
}

/** The cell `{row, col}` under point (x, y) of a `width x height` heatmap, or null outside. */
export function cellAt(x, y, width, height, rows, cols) {
  if (!(x >= 0 && y >= 0 && x < width && y < height)) return null;
  return {
    row: Math.min(rows - 1, Math.floor((y / height) * rows)),
    col: Math.min(cols - 1, Math.floor((x / width) * cols)),
  };
}

/**
 * The original weights behind stored cell (row, col) of a snapshot. `header` is the snapshot's
 * header (`shape`, `block`, stored `gate_boundaries`); `originalBoundaries` the kernel's gate
 * boundaries in original columns (from the index). Blocks are per gate, so columns restart at
 * each gate. Returns `{gateIndex, rows: [r0, r1), cols: [c0, c1), units: [u0, u1)}` with
 * half-open ranges; `units` are columns counted from the gate's first column.
 */
export function originalCell(header, originalBoundaries, row, col) {
  const [blockRows, blockCols] = header.block ?? [1, 1];
  const originalRows = header.shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const stored = header.gate_boundaries;
  const gateIndex = gateIndexAt(stored, col);
  const gateStart = originalBoundaries[gateIndex];
  const gateEnd = originalBoundaries[gateIndex + 1];
  const u0 = (col - stored[gateIndex]) * blockCols;
  const u1 = Math.min(u0 + blockCols, gateEnd - gateStart);
  return {
    gateIndex,
    rows: [row * blockRows, Math.min((row + 1) * blockRows, originalRows)],
    cols: [gateStart + u0, gateStart + u1],
    units: [u0, u1],
  };
}

/** "7" for a one-wide range, "8–15" for a wider one (half-open [a, b) shown inclusive). */
export function rangeLabel([start, end]) {
  return end - start <= 1 ? String(start) : `${start}–${end - 1}`;
}

/** Whether a snapshot stores reduced blocks rather than single weights. */
export function isReduced(header) {
  const [blockRows, blockCols] = header.block ?? [1, 1];
  return blockRows > 1 || blockCols > 1;
}
