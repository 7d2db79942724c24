// The model as the `index` route describes it: layers in model order, their directions,
// kernels, gates and logged steps, merged over the selected runs. Pure functions.

export const KINDS = Object.freeze(["weights", "gradients"]);

/** Identifies a layer (or one cell of stacked cells) across runs. */
export function layerKey(layer, cell) {
  return cell === null || cell === undefined ? layer : `${layer}\u0000cell ${cell}`;
}

/** A layer's name for the picker: "encoder/lstm (LSTM)", "stack cell 1 (GRU)". */
export function layerLabel(layer) {
  const cell = layer.cell === null || layer.cell === undefined ? "" : ` cell ${layer.cell}`;
  return `${layer.layer}${cell} (${layer.layer_type})`;
}

/**
 * The layers of `runs` (names in `index.runs`) in model order: one entry per layer key with
 * `layer`, `layer_type`, `cell`, `order`, `directions` and `kernels` (each in first-seen order,
 * unions over the runs), `kinds` (kinds logged for any kernel) and `runs` (the runs that have it).
 * Layers the runs order differently are placed by their smallest `order`, then by name.
 */
export function listLayers(index, runs) {
  const byKey = new Map();
  for (const run of runs) {
    for (const layer of index.runs[run]?.layers ?? []) {
      const key = layerKey(layer.layer, layer.cell);
      let entry = byKey.get(key);
      if (!entry) {
        entry = {
          key,
          layer: layer.layer,
          layer_type: layer.layer_type,
          cell: layer.cell ?? null,
          order: layer.order,
          directions: [],
          kernels: [],
          kinds: [],
          runs: [],
        };
        byKey.set(key, entry);
      }
      entry.order = Math.min(entry.order, layer.order);
      entry.runs.push(run);
      for (const direction of layer.directions) {
        addOnce(entry.directions, direction.direction);
        for (const kernel of direction.kernels) {
          addOnce(entry.kernels, kernel.kernel);
          for (const kind of Object.keys(kernel.kinds ?? {})) addOnce(entry.kinds, kind);
        }
      }
    }
  }
  for (const entry of byKey.values()) entry.kinds.sort((a, b) => KINDS.indexOf(a) - KINDS.indexOf(b));
  return [...byKey.values()].sort((a, b) => a.order - b.order || a.key.localeCompare(b.key));
}

function addOnce(list, value) {
  if (!list.includes(value)) list.push(value);
}

/**
 * The slices to show for one kernel and kind: for each run in `runs` and each direction of the
 * layer, `{run, direction, slice, entry, steps}` where `slice` holds the API's slice parameters,
 * `entry` the index's kernel entry (shape, gates, gate_boundaries) and `steps` that kind's
 * `{stats_steps, snapshot_steps}`. Runs without the kernel or kind are left out.
 */
export function kernelSlices(index, runs, key, kernel, kind) {
  const slices = [];
  for (const run of runs) {
    const layer = (index.runs[run]?.layers ?? []).find((l) => layerKey(l.layer, l.cell) === key);
    if (!layer) continue;
    for (const direction of layer.directions) {
      const entry = direction.kernels.find((k) => k.kernel === kernel);
      const steps = entry?.kinds?.[kind];
      if (!steps) continue;
      slices.push({
        run,
        direction: direction.direction,
        slice: { run, layer: layer.layer, cell: layer.cell ?? null, direction: direction.direction, kernel, kind },
        entry,
        steps,
      });
    }
  }
  return slices;
}

/** Sorted union of integer step lists. */
export function unionSteps(lists) {
  const steps = new Set();
  for (const list of lists) for (const step of list ?? []) steps.add(step);
  return [...steps].sort((a, b) => a - b);
}

/**
 * The step of `steps` (sorted) to show for `target`: the latest at or before it, else the
 * first; null for no steps. Runs logged at other steps then show their latest state so far.
 */
export function pickStep(steps, target) {
  if (!steps || steps.length === 0) return null;
  if (target === null || target === undefined) return steps[steps.length - 1];
  let low = 0;
  let high = steps.length - 1;
  if (target < steps[0]) return steps[0];
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (steps[mid] <= target) low = mid;
    else high = mid - 1;
  }
  return steps[low];
}

/**
 * The gates of a kernel as column ranges: `[{gate, label, start, end}]`. A non-gated kernel
 * (`gates == [null]`) is one range labelled with the kernel's name.
 */
export function gateRanges(gates, boundaries, kernelName = "") {
  return gates.map((gate, i) => ({
    gate,
    label: gate ?? kernelName,
    start: boundaries[i],
    end: boundaries[i + 1],
  }));
}

/** Index of the gate range holding column `col`, or -1. */
export function gateIndexAt(boundaries, col) {
  for (let i = 0; i + 1 < boundaries.length; i++) {
    if (col >= boundaries[i] && col < boundaries[i + 1]) return i;
  }
  return -1;
}
