// Data of the health view: metric series over steps, the table across runs at one step, its
// sorting and its CSV export. Pure functions over `stats` responses (docs/http-api.md).

import { pickStep } from "./layers.js";

/** The line charts, one row of charts per metric; `fields` are summed per step. */
export const METRICS = Object.freeze([
  { id: "l2_norm", label: "L2 norm", fields: ["l2_norm"] },
  { id: "mean", label: "Mean", fields: ["mean"] },
  { id: "std", label: "Std", fields: ["std"] },
  { id: "near_zero_fraction", label: "Near-zero fraction", fields: ["near_zero_fraction"] },
  { id: "update_size", label: "Update size ‖ΔW‖/‖W‖", fields: ["update_size"] },
  { id: "nonfinite", label: "NaN + Inf count", fields: ["nan_count", "inf_count"] },
]);

/** The table's columns; `type` decides sorting and alignment. */
export const TABLE_COLUMNS = Object.freeze([
  { id: "run", label: "Run", type: "text" },
  { id: "direction", label: "Direction", type: "text" },
  { id: "gate", label: "Gate", type: "text" },
  { id: "step", label: "Step", type: "number" },
  { id: "mean", label: "Mean", type: "number" },
  { id: "std", label: "Std", type: "number" },
  { id: "min", label: "Min", type: "number" },
  { id: "max", label: "Max", type: "number" },
  { id: "l2_norm", label: "L2 norm", type: "number" },
  { id: "mean_abs", label: "Mean |x|", type: "number" },
  { id: "near_zero_fraction", label: "Near-zero", type: "number" },
  { id: "dead_units", label: "Dead units", type: "number" },
  { id: "units", label: "Units", type: "number" },
  { id: "nan_count", label: "NaN", type: "number" },
  { id: "inf_count", label: "Inf", type: "number" },
  { id: "update_size", label: "Update size", type: "number" },
]);

/**
 * One metric of one gate over its steps: numbers, or null where a field is null (NaN or ±Inf
 * in the logs, or update_size at the first step).
 */
export function metricValues(gate, metric) {
  return gate.steps.map((_, i) => {
    let total = 0;
    for (const field of metric.fields) {
      const value = gate.values[field]?.[i];
      if (value === null || value === undefined) return null;
      total += value;
    }
    return total;
  });
}

/**
 * Table rows at `step`: for each `{run, direction, stats}` and each gate of `stats`, the gate's
 * values at its latest step at or before `step` (`step` in the row is that actual step).
 * A gate without steps gives no row. Non-gated kernels show the kernel name as gate.
 */
export function tableRows(entries, step) {
  const rows = [];
  for (const { run, direction, stats } of entries) {
    for (const gate of stats.gates) {
      const actual = pickStep(gate.steps, step);
      if (actual === null) continue;
      const i = gate.steps.indexOf(actual);
      const row = { run, direction, gate: gate.gate ?? stats.kernel, step: actual };
      for (const column of TABLE_COLUMNS) {
        if (!(column.id in row)) row[column.id] = gate.values[column.id]?.[i] ?? null;
      }
      rows.push(row);
    }
  }
  return rows;
}

const textOrder = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });

/**
 * `rows` sorted by `columnId` ("asc" or "desc") of `columns`; stable, and rows without a value
 * (null) come last in either order.
 */
export function sortRows(rows, columnId, order = "asc", columns = TABLE_COLUMNS) {
  const column = columns.find((c) => c.id === columnId);
  if (!column) throw new RangeError(`unknown column ${columnId}`);
  const sign = order === "desc" ? -1 : 1;
  return rows
    .map((row, position) => ({ row, position }))
    .sort((a, b) => {
      const x = a.row[columnId];
      const y = b.row[columnId];
      const xMissing = x === null || x === undefined;
      const yMissing = y === null || y === undefined;
      if (xMissing || yMissing) return xMissing === yMissing ? a.position - b.position : xMissing ? 1 : -1;
      const compared = column.type === "number" ? x - y : textOrder.compare(String(x), String(y));
      return sign * compared || a.position - b.position;
    })
    .map(({ row }) => row);
}

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, quotes doubled.
 * Text that a spreadsheet would run as a formula (starting with = + - @ or a tab or CR) gets a
 * leading apostrophe; numbers are written as numbers, null as an empty field.
 */
export function csvField(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "";
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** CSV text of `rows` under `columns` (header line first, CRLF line ends). */
export function toCsv(columns, rows) {
  const lines = [columns.map((c) => csvField(c.label)).join(",")];
  for (const row of rows) lines.push(columns.map((c) => csvField(row[c.id])).join(","));
  return `${lines.join("\r\n")}\r\n`;
}
