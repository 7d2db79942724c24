// The activation index (`activations` route, docs/http-api.md#activations) for one layer of
// the tab: its groups (run, direction) in the selected runs, their steps, and the names they
// log. Pure functions.

import { unionSteps } from "./layers.js";

/** What a name is, in the labels of the view. */
const NAME_LABELS = Object.freeze({
  cell_state: "cell state c_t",
  hidden_state: "hidden state h_t",
  hidden_state_gradient: "dL/dh_t",
});

/** A name's label: "forget gate", "cell state c_t"... */
export function nameLabel(name) {
  return NAME_LABELS[name] ?? `${name} gate`;
}

/** Whether an index layer is the layer `name` (and `cell`, null outside stacked cells). */
function isLayer(indexLayer, name, cell) {
  return indexLayer.layer === name && (indexLayer.cell ?? null) === (cell ?? null);
}

/**
 * The groups of the tab's layer entry `layer` (listLayers or withActivationLayers: `layer`,
 * `cell`, `runs`): per run of `layer.runs`, in order, and per direction, `{run, direction,
 * layer_type, group, entry}` where `group` holds the query parameters of the activation routes
 * and `entry` the index's direction entry (names, saturations, units, timesteps, steps).
 * Matched by name and cell in the entry's own runs, so whatever tells layers apart in the
 * toolbar (say, two models naming a layer alike) tells their activations apart too.
 */
export function activationGroups(activationIndex, layer) {
  const groups = [];
  for (const run of layer.runs) {
    const found = (activationIndex.runs[run]?.layers ?? []).find((l) => isLayer(l, layer.layer, layer.cell));
    if (!found) continue;
    for (const entry of found.directions) {
      groups.push({
        run,
        direction: entry.direction,
        layer_type: found.layer_type,
        group: { run, layer: found.layer, cell: found.cell ?? null, direction: entry.direction },
        entry,
      });
    }
  }
  return groups;
}

/**
 * `layers` (listLayers of the weights index over `runs`) with the layers that have only
 * activations logged in a run (`log_activations` without `log_weights`): entries of the same
 * shape without kernels or kinds, keyed apart from the weights' layers, in model order.
 */
export function withActivationLayers(layers, activationIndex, runs) {
  const added = new Map();
  for (const run of runs) {
    for (const l of activationIndex.runs[run]?.layers ?? []) {
      const logged = layers.some((entry) => entry.runs.includes(run) && isLayer(entry, l.layer, l.cell));
      if (logged) continue;
      const key = `activations\u0000${l.layer}\u0000${l.cell ?? ""}`;
      let entry = added.get(key);
      if (!entry) {
        entry = {
          key,
          layer: l.layer,
          layer_type: l.layer_type,
          cell: l.cell ?? null,
          order: l.order,
          bidirectional: l.directions.length > 1,
          directions: l.directions.map((d) => d.direction),
          kernels: [],
          kinds: [],
          runs: [],
        };
        added.set(key, entry);
      }
      entry.order = Math.min(entry.order, l.order);
      if (!entry.runs.includes(run)) entry.runs.push(run);
    }
  }
  return [...layers, ...added.values()].sort((a, b) => a.order - b.order || a.key.localeCompare(b.key));
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
