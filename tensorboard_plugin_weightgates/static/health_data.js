// Data of the health view: metric series over steps, the table across runs at one step, its
// sorting and its CSV export. Pure functions over `stats` responses (docs/http-api.md).

import { stepAtOrBefore } from "./layers.js";

/** The line charts, one row of charts per metric; `fields` are summed per step. */
export const METRICS = Object.freeze([
  { id: "l2_norm", label: "L2 norm", fields: ["l2_norm"] },
  { id: "mean", label: "Mean", fields: ["mean"] },
  { id: "std", label: "Std", fields: ["std"] },
  { id: "near_zero_fraction", label: "Near-zero fraction", fields: ["near_zero_fraction"] },
  { id: "update_size", label: "Update size ‖ΔW‖/‖W‖", fields: ["update_size"] },
  { id: "nonfinite", label: "NaN + Inf count", fields: ["nan_count", "inf_count"] },
]);

/**
 * The charts of a kind: every metric, but update size (how far an optimizer step moved the
 * weights) only for weights.
 */
export function metricsFor(kind) {
  return METRICS.filter((metric) => kind === "weights" || metric.id !== "update_size");
}

/** A value that does not apply: dead units of a bias (no incoming weights to be dead). */
export const NOT_APPLICABLE = "n/a";

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
 * The table's columns for a layer: without Direction for a layer that has none (anything but
 * Bidirectional), and without Update size for gradients.
 */
export function tableColumns({ bidirectional = true, kind = "weights" } = {}) {
  return TABLE_COLUMNS.filter(
    (column) => (bidirectional || column.id !== "direction") && (kind === "weights" || column.id !== "update_size"),
  );
}

/**
 * The one value of a chart's series (`lists` of numbers or null) when every finite value is
 * that value, else null: a constant series is drawn with one tick, at its value.
 */
export function constantValue(lists) {
  let value = null;
  for (const list of lists) {
    for (const y of list) {
      if (y === null || !Number.isFinite(y)) continue;
      if (value === null) value = y;
      else if (y !== value) return null;
    }
  }
  return value;
}

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
 * Table rows at `step`: for each `{run, direction, stats, countsDeadUnits}` and each gate of
 * `stats`, the gate's values at its latest step at or before `step` (`step` in the row is that
 * actual step); dead units are NOT_APPLICABLE where `countsDeadUnits` is false (a bias). A gate
 * without a step at or before `step` gives no row (see firstRecords). Non-gated kernels show
 * the kernel name as gate.
 */
export function tableRows(entries, step) {
  const rows = [];
  for (const { run, direction, stats, countsDeadUnits = true } of entries) {
    for (const gate of stats.gates) {
      const actual = stepAtOrBefore(gate.steps, step);
      if (actual === null) continue;
      const i = gate.steps.indexOf(actual);
      const row = { run, direction, gate: gate.gate ?? stats.kernel, step: actual };
      for (const column of TABLE_COLUMNS) {
        if (!(column.id in row)) row[column.id] = gate.values[column.id]?.[i] ?? null;
      }
      if (!countsDeadUnits) row.dead_units = NOT_APPLICABLE;
      rows.push(row);
    }
  }
  return rows;
}

/**
 * The entries with no record at or before `step`, as `[{run, direction, first}]` (`first`:
 * their first step), to say so instead of showing a later state.
 */
export function firstRecords(entries, step) {
  return entries.flatMap(({ run, direction, stats }) => {
    const steps = stats.gates.flatMap((gate) => gate.steps);
    if (steps.length === 0 || stepAtOrBefore([Math.min(...steps)], step) !== null) return [];
    return [{ run, direction, first: Math.min(...steps) }];
  });
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
      const missing = (value) =>
        value === null || value === undefined || (column.type === "number" && typeof value !== "number");
      const xMissing = missing(x);
      const yMissing = missing(y);
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
