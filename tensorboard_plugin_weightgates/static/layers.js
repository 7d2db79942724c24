// The model as the `index` route describes it: layers in model order, their directions,
// kernels, gates and logged steps, merged over the selected runs. Pure functions.

export const KINDS = Object.freeze(["weights", "gradients"]);

/**
 * The shape of an index layer's first kernel in storage order, as Keras stores it
 * ("kernel 8×64"): what tells two layers of one name apart (the kernels a run lists depend on
 * what it logged; the first one's shape follows from the layer's configuration).
 */
export function layerShape(layer) {
  const kernels = layer.directions?.[0]?.kernels ?? [];
  const first = kernels.reduce(
    (best, k) => (best === null || (k.kernel_order ?? Infinity) < (best.kernel_order ?? Infinity) ? k : best),
    null,
  );
  return first ? `${first.kernel} ${(first.variable_shape ?? first.shape ?? []).join("×")}` : "";
}

/**
 * Identifies a layer (or one cell of stacked cells) across runs: its path, cell, type and
 * kernel shapes, so that runs of different models that name a layer alike are not merged.
 * `layer` is an entry of the index's `layers`.
 */
export function layerKey(layer) {
  return [layer.layer, layer.cell ?? "", layer.layer_type, layerShape(layer)].join("\u0000");
}

/**
 * A layer's name for the picker: "encoder/lstm (LSTM)", "stack cell 1 (GRU)"; with
 * `withShape`, its first kernel's shape too: "lstm (LSTM, kernel 8×64)".
 */
export function layerLabel(layer, { withShape = false } = {}) {
  const cell = layer.cell === null || layer.cell === undefined ? "" : ` cell ${layer.cell}`;
  const shape = withShape && layer.shape ? `, ${layer.shape}` : "";
  return `${layer.layer}${cell} (${layer.layer_type}${shape})`;
}

/** Kernels in storage order: by `kernel_order`, those without one (format 1) after, by name. */
function byStorageOrder(a, b) {
  const x = a.kernelOrder ?? Infinity;
  const y = b.kernelOrder ?? Infinity;
  if (x !== y) return x - y;
  return a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0;
}

/**
 * The layers of `runs` (names in `index.runs`) in model order: one entry per layer key with
 * `key`, `layer`, `layer_type`, `cell`, `order`, `bidirectional`, `shape` (layerShape),
 * `directions` (first-seen order), `kernels` (storage order), `kinds` (kinds logged for any
 * kernel), `runs` (the runs that have it) and `ambiguous` (another entry has its name and
 * cell: label it with its shape). Layers the runs order differently are placed by their
 * smallest `order`, then by name.
 */
export function listLayers(index, runs) {
  const byKey = new Map();
  for (const run of runs) {
    for (const layer of index.runs[run]?.layers ?? []) {
      const key = layerKey(layer);
      let entry = byKey.get(key);
      if (!entry) {
        entry = {
          key,
          layer: layer.layer,
          layer_type: layer.layer_type,
          cell: layer.cell ?? null,
          order: layer.order,
          bidirectional: layer.bidirectional ?? layer.directions.length > 1,
          shape: layerShape(layer),
          directions: [],
          kernels: [],
          kinds: [],
          runs: [],
          ambiguous: false,
          kernelOrders: new Map(),
        };
        byKey.set(key, entry);
      }
      entry.order = Math.min(entry.order, layer.order);
      entry.runs.push(run);
      for (const direction of layer.directions) {
        addOnce(entry.directions, direction.direction);
        for (const kernel of direction.kernels) {
          const known = entry.kernelOrders.get(kernel.kernel);
          const order = kernel.kernel_order ?? null;
          if (known === undefined || (order !== null && (known === null || order < known))) {
            entry.kernelOrders.set(kernel.kernel, order);
          }
          for (const kind of Object.keys(kernel.kinds ?? {})) addOnce(entry.kinds, kind);
        }
      }
    }
  }
  const entries = [...byKey.values()];
  for (const entry of entries) {
    entry.kinds.sort((a, b) => KINDS.indexOf(a) - KINDS.indexOf(b));
    entry.kernels = [...entry.kernelOrders]
      .map(([kernel, kernelOrder]) => ({ kernel, kernelOrder }))
      .sort(byStorageOrder)
      .map((k) => k.kernel);
    delete entry.kernelOrders;
    entry.ambiguous = entries.some((other) => other !== entry && other.layer === entry.layer && other.cell === entry.cell);
  }
  return entries.sort((a, b) => a.order - b.order || a.key.localeCompare(b.key));
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
    const layer = (index.runs[run]?.layers ?? []).find((l) => layerKey(l) === key);
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
 * first; null for no steps. The slider's own step: it always has a position.
 */
export function pickStep(steps, target) {
  if (!steps || steps.length === 0) return null;
  if (target === null || target === undefined) return steps[steps.length - 1];
  return stepAtOrBefore(steps, target) ?? steps[0];
}

/**
 * The latest of `steps` (sorted) at or before `target` (the latest of all for a null target),
 * or null when there is none: a run first logged after `target` has nothing to show there,
 * rather than a state from its future.
 */
export function stepAtOrBefore(steps, target) {
  if (!steps || steps.length === 0) return null;
  if (target === null || target === undefined) return steps[steps.length - 1];
  if (target < steps[0]) return null;
  let low = 0;
  let high = steps.length - 1;
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
