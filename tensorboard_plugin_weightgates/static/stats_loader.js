// Loading for the views that chart per-gate statistics over steps (histograms, health): the
// statistics of one kernel in every selected run, fetched at once, a run that fails kept as an
// error beside the others, and only the latest request drawn. The data functions are pure;
// StatsLoader and loadErrors are the DOM around them.

import { h, messagePanel, replaceChildren } from "./dom.js";
import { kernelSlices } from "./layers.js";

/** The slices of `kernel` (`kind`) of the layer `key` in `runs` that have statistics. */
export function statsSlices(index, runs, key, kernel, kind) {
  return kernelSlices(index, runs, key, kernel, kind).filter((s) => s.steps.stats_steps.length);
}

/**
 * Fetches every slice's statistics at once: per slice, in order, `{...slice, stats}`, or
 * `{...slice, error}` where its request failed, so that one broken run leaves the others.
 */
export function fetchStats(api, slices) {
  return Promise.all(
    slices.map(async (s) => {
      try {
        return { ...s, stats: await api.stats(s.slice) };
      } catch (error) {
        return { ...s, error };
      }
    }),
  );
}

/** Loaded slices grouped by direction, in the order directions first appear: `[{direction, items}]`. */
export function byDirection(items) {
  const groups = new Map();
  for (const item of items) {
    if (!groups.has(item.direction)) groups.set(item.direction, []);
    groups.get(item.direction).push(item);
  }
  return [...groups].map(([direction, grouped]) => ({ direction, items: grouped }));
}

/**
 * The statistics to chart per gate: the gates of the first slice that loaded (null for a
 * non-gated kernel), each with `runs`, the `{run, stats}` of every loaded slice that has that
 * gate, `stats` being its entry of the response's `gates`. Failed slices are left out.
 */
export function statsByGate(items) {
  const loaded = items.filter((item) => item.stats);
  const gates = loaded.length ? loaded[0].stats.gates.map((gate) => gate.gate) : [];
  return gates.map((gate) => ({
    gate,
    runs: loaded.flatMap((item) => {
      const stats = item.stats.gates.find((g) => g.gate === gate);
      return stats ? [{ run: item.run, stats }] : [];
    }),
  }));
}

/**
 * Loads statistics for a view whose charts are in `sections`: says so there when no selected
 * run has any, and marks it aria-busy while loading.
 */
export class StatsLoader {
  constructor(sections) {
    this.sections = sections;
    this.generation = 0;
  }

  /**
   * `context`: `{api, index, runs, layer, kernel, kind}`. Resolves with the loaded slices
   * (fetchStats), `[]` when there are none (the message is shown), or null when a later call
   * began meanwhile: its result is the one to draw.
   */
  async load({ api, index, runs, layer, kernel, kind }) {
    const generation = ++this.generation;
    const slices = statsSlices(index, runs, layer.key, kernel, kind);
    if (slices.length === 0) {
      this.sections.removeAttribute("aria-busy");
      replaceChildren(
        this.sections,
        messagePanel("empty", `No statistics of ${kernel} (${kind}) in the selected runs`),
      );
      return [];
    }
    this.sections.setAttribute("aria-busy", "true");
    const loaded = await fetchStats(api, slices);
    if (generation !== this.generation) return null;
    this.sections.removeAttribute("aria-busy");
    return loaded;
  }
}

/** An alert per slice of `items` that failed to load, naming its run. */
export function loadErrors(items) {
  return items
    .filter((item) => item.error)
    .map((item) =>
      h(
        "div",
        { class: "wg-panel-error", role: "alert" },
        h("span", { class: "wg-run-name", text: item.run }),
        `: ${item.error.message}`,
      ),
    );
}
