// Saturation columns of the Health view's table: for each gate row (run, direction, gate), the
// saturation of that gate's activations on the probe batch at the row's step, from the
// `activation_stats` route. Gates without activations (biases, layers without a probe) have
// no values there.

import { activationGroups } from "./activation_data.js";
import { pickStep } from "./layers.js";

export const SATURATION_COLUMNS = Object.freeze([
  { id: "activation_mean", label: "Activation mean", type: "number" },
  { id: "left_saturated", label: "Left-saturated", type: "number" },
  { id: "right_saturated", label: "Right-saturated", type: "number" },
  { id: "left_saturated_units", label: "Left-sat. units", type: "number" },
  { id: "right_saturated_units", label: "Right-sat. units", type: "number" },
]);

/**
 * The `activation_stats` of the tab's layer entry `layer` in its runs: `[{run, direction,
 * stats}]`, empty when the layer has no activations; a run whose request fails is left out
 * (the table keeps its other columns).
 */
export async function fetchSaturation(api, layer) {
  let index;
  try {
    index = await api.activations();
  } catch {
    return [];
  }
  const loaded = await Promise.all(
    activationGroups(index, layer).map(async (g) => {
      try {
        return { run: g.run, direction: g.direction, stats: await api.activationStats(g.group) };
      } catch {
        return null;
      }
    }),
  );
  return loaded.filter(Boolean);
}

/**
 * `rows` (health_data.tableRows) with the SATURATION_COLUMNS of their gate's activations from
 * `saturation` (fetchSaturation), at the latest activation step at or before the row's step;
 * null where there is none. Pure.
 */
export function withSaturation(rows, saturation) {
  return rows.map((row) => {
    const found = saturation.find((s) => s.run === row.run && s.direction === row.direction);
    const entry = found?.stats.names.find((n) => n.name === row.gate);
    const step = entry ? pickStep(entry.steps, row.step) : null;
    const i = step === null ? -1 : entry.steps.indexOf(step);
    const value = (field) => (i < 0 ? null : (entry.values[field]?.[i] ?? null));
    return {
      ...row,
      activation_mean: value("mean"),
      left_saturated: value("left_saturated"),
      right_saturated: value("right_saturated"),
      left_saturated_units: value("left_saturated_units"),
      right_saturated_units: value("right_saturated_units"),
    };
  });
}
