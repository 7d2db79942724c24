// The activation index (`activations` route, docs/http-api.md#activations) for one layer of
// the tab: its groups (run, direction) in the selected runs, their steps, and the names they
// log. Pure functions.

import { layerKey, unionSteps } from "./layers.js";

/** What a name is, in the labels of the view. */
export const NAME_LABELS = Object.freeze({
  cell_state: "cell state c_t",
  hidden_state: "hidden state h_t",
  hidden_state_gradient: "dL/dh_t",
});

/** A name's label: "forget gate", "cell state c_t"... */
export function nameLabel(name) {
  return NAME_LABELS[name] ?? `${name} gate`;
}

/**
 * The groups of layer `key` in `runs` (names in `activationIndex.runs`): per run, in order, and
 * per direction, `{run, direction, layer_type, group, entry}` where `group` holds the query
 * parameters of the activation routes and `entry` the index's direction entry (names,
 * saturations, units, timesteps, steps).
 */
export function activationGroups(activationIndex, runs, key) {
  const groups = [];
  for (const run of runs) {
    const layer = (activationIndex.runs[run]?.layers ?? []).find((l) => layerKey(l.layer, l.cell) === key);
    if (!layer) continue;
    for (const entry of layer.directions) {
      groups.push({
        run,
        direction: entry.direction,
        layer_type: layer.layer_type,
        group: { run, layer: layer.layer, cell: layer.cell ?? null, direction: entry.direction },
        entry,
      });
    }
  }
  return groups;
}

/**
 * The layers with activations in `runs`, in model order: `[{key, label}]` (one per layer key,
 * "lstm (LSTM)", "stack cell 1 (GRUCell)"), for the view's "go to" buttons.
 */
export function activationLayers(activationIndex, runs) {
  const byKey = new Map();
  for (const run of runs) {
    for (const layer of activationIndex.runs[run]?.layers ?? []) {
      const key = layerKey(layer.layer, layer.cell);
      const cell = layer.cell === null || layer.cell === undefined ? "" : ` cell ${layer.cell}`;
      const known = byKey.get(key);
      if (!known || layer.order < known.order) {
        byKey.set(key, { key, order: layer.order, label: `${layer.layer}${cell} (${layer.layer_type})` });
      }
    }
  }
  return [...byKey.values()].sort((a, b) => a.order - b.order || a.key.localeCompare(b.key));
}

/** Sorted union of the groups' steps of one kind: "stats_steps", "gradient_steps" or "map_steps". */
export function groupSteps(groups, kind) {
  return unionSteps(groups.map((g) => g.entry[kind]));
}

/** Directions in the order they first appear, each with its groups: `[{direction, groups}]`. */
export function groupsByDirection(groups) {
  const byDirection = new Map();
  for (const g of groups) {
    if (!byDirection.has(g.direction)) byDirection.set(g.direction, []);
    byDirection.get(g.direction).push(g);
  }
  return [...byDirection].map(([direction, items]) => ({ direction, groups: items }));
}

/**
 * Non-finite values of a loaded `activation_stats` response at `step`: the total NaN and Inf
 * counts over its names there (`{nan, inf, step}`), or null when it has none.
 */
export function nonFinite(stats, step) {
  let nan = 0;
  let inf = 0;
  for (const entry of stats.names) {
    const i = entry.steps.indexOf(step);
    if (i < 0) continue;
    nan += entry.values.nan_count?.[i] ?? 0;
    inf += entry.values.inf_count?.[i] ?? 0;
  }
  return nan + inf > 0 ? { nan, inf, step } : null;
}
