// Layout of the per-gate histograms over steps. Pure functions.
//
// "offset" (a ridgeline, like TensorBoard's histograms tab): one filled curve per step, each on
// its own baseline, the first step at the top and the last at the bottom (in front), curves up
// to OFFSET_PEAK of the plot's height tall, coloured from pale (first step) to the run's colour
// (last step). "overlay": every step on the bottom baseline, full height. Heights are bucket
// counts over the largest count in the chart (all runs and steps inside the x range), so steps
// and runs compare. A step whose values are all NaN or Inf has no histogram (its buckets count
// finite values only): it is said, with its NaN and Inf counts, never dropped in silence.

import { extent, padDomain, within } from "./domains.js";

export const HISTOGRAM_MODES = Object.freeze([
  { id: "offset", label: "Offset" },
  { id: "overlay", label: "Overlay" },
]);

export const X_AXIS_MODES = Object.freeze([
  { id: "shared", label: "Shared across gates" },
  { id: "gate", label: "Per gate" },
]);

export const OFFSET_PEAK = 0.4;

/**
 * One gate's histograms from a `stats` response gate: `{steps, lows, highs, counts, nan, inf}`
 * (`nan`, `inf`: the NaN and Inf counts per step).
 */
export function histogramSeries(gate) {
  const counts = (field) => gate.steps.map((_, i) => gate.values?.[field]?.[i] ?? 0);
  return {
    steps: gate.steps,
    lows: gate.histograms.low,
    highs: gate.histograms.high,
    counts: gate.histograms.counts,
    nan: counts("nan_count"),
    inf: counts("inf_count"),
  };
}

/** Whether step `i` has a histogram: a finite range and at least one finite value counted. */
function hasRange(series, i) {
  return (
    Number.isFinite(series.lows[i]) &&
    Number.isFinite(series.highs[i]) &&
    (series.counts[i] ?? []).some((count) => count > 0)
  );
}

/**
 * The steps of `series` without a histogram, every value NaN or Inf: `{steps, nan, inf,
 * all}` with the NaN and Inf counts of the latest of them and whether that is every step;
 * null when every step has finite values.
 */
export function nonFiniteSteps(series) {
  const missing = series.steps.flatMap((step, i) => (hasRange(series, i) ? [] : [i]));
  if (missing.length === 0) return null;
  const last = missing[missing.length - 1];
  return {
    steps: missing.map((i) => series.steps[i]),
    nan: series.nan?.[last] ?? 0,
    inf: series.inf?.[last] ?? 0,
    all: missing.length === series.steps.length,
  };
}

/**
 * What to say of a histogram series without finite values (a nonFiniteSteps result):
 * "No finite values: 1536 NaN, 0 Inf at step 4", or for some steps only "Steps 3, 4 have no
 * finite values (step 4: 12 NaN, 0 Inf)".
 */
export function nonFiniteMessage(missing) {
  const last = missing.steps[missing.steps.length - 1];
  const counts = `${missing.nan} NaN, ${missing.inf} Inf`;
  if (missing.all) {
    const when = missing.steps.length === 1 ? `at step ${last}` : `at every step (last: step ${last})`;
    return `No finite values: ${counts} ${when}`;
  }
  const steps = missing.steps.length > 4 ? `${missing.steps.length} steps` : `Step${missing.steps.length > 1 ? "s" : ""} ${missing.steps.join(", ")}`;
  return `${steps} without finite values (step ${last}: ${counts})`;
}

/** [r, g, b] of a CSS colour "#rrggbb", "#rgb" or "rgb(r, g, b)"; null for anything else. */
export function parseColor(color) {
  const text = String(color).trim();
  let match = /^#([0-9a-f]{6})$/i.exec(text);
  if (match) return [0, 2, 4].map((k) => Number.parseInt(match[1].slice(k, k + 2), 16));
  match = /^#([0-9a-f]{3})$/i.exec(text);
  if (match) return [...match[1]].map((digit) => Number.parseInt(digit + digit, 16));
  match = /^rgba?\(\s*(\d+)[,\s]+(\d+)[,\s]+(\d+)/i.exec(text);
  return match ? match.slice(1, 4).map(Number) : null;
}

/**
 * The fill of a step's curve: the run's colour mixed with the background, `fraction` 0 (the
 * first step) being mostly background and 1 (the last) the run's colour, as TensorBoard
 * shades its histograms by step.
 */
export function stepColor(runColor, background, fraction) {
  const run = parseColor(runColor) ?? [128, 128, 128];
  const back = parseColor(background) ?? [255, 255, 255];
  const weight = 0.3 + 0.7 * Math.min(1, Math.max(0, fraction));
  const mixed = run.map((value, k) => Math.round(back[k] + (value - back[k]) * weight));
  return `rgb(${mixed.join(", ")})`;
}

/**
 * The x range covering the histograms of every step of every series; with `ignoreOutliers`,
 * from the 5th percentile of their low edges to the 95th of their high edges, so a run whose
 * weights blow up does not squeeze the others into one bucket. When all values are one value
 * v (a bias still at zero, say) the range is v ± |v| / 10 (± 0.001 for 0). Null when no
 * histogram has a finite range.
 */
export function valueDomain(seriesList, { ignoreOutliers = false } = {}) {
  const lows = seriesList.flatMap((series) =>
    series.steps.map((_, i) => (hasRange(series, i) ? series.lows[i] : null)),
  );
  const highs = seriesList.flatMap((series) =>
    series.steps.map((_, i) => (hasRange(series, i) ? series.highs[i] : null)),
  );
  return padDomain(extent(lows, highs, { ignoreOutliers }), 0, 1e-3);
}

/** [first, last] step over all series, or null. */
export function stepDomain(seriesList) {
  const steps = seriesList.flatMap((series) => series.steps);
  if (steps.length === 0) return null;
  return [Math.min(...steps), Math.max(...steps)];
}

/** Number of histograms (run and step) that reach beyond `xDomain`, drawn clipped. */
export function offScaleCount(seriesList, xDomain) {
  let count = 0;
  for (const series of seriesList) {
    series.steps.forEach((_, i) => {
      if (hasRange(series, i) && !within(series.lows[i], series.highs[i], xDomain)) count++;
    });
  }
  return count;
}

/**
 * The largest bucket count (at least 1) among the histograms inside `xDomain` (all of them
 * without a domain, or when none is inside): an off-scale histogram squeezed into a few
 * buckets would otherwise flatten every other curve.
 */
export function maxCount(seriesList, xDomain = null) {
  const largest = (inside) => {
    let max = 0;
    for (const series of seriesList) {
      series.counts.forEach((counts, i) => {
        if (inside && !(hasRange(series, i) && within(series.lows[i], series.highs[i], xDomain))) return;
        for (const count of counts) if (count > max) max = count;
      });
    }
    return max;
  };
  return (xDomain && largest(true)) || largest(false) || 1;
}

/** Baseline y (plot coordinates, 0 at top) and curve height of `step` in a `height` plot. */
export function baselineOf(step, steps, height, mode) {
  if (mode === "overlay") return { baseline: height, peak: height };
  const peak = height * OFFSET_PEAK;
  const [first, last] = steps;
  const fraction = last === first ? 1 : (step - first) / (last - first);
  return { baseline: peak + fraction * (height - peak), peak };
}

/**
 * Curves of `seriesList` (one per run) in a `width x height` plot: a list, in drawing order
 * (by step, then series), of `{series, step, baseline, fraction, opacity, points}` (`fraction`:
 * the step's place from first, 0, to last, 1); `points` run from
 * the low edge on the baseline through each bucket's centre to the high edge.
 * `xDomain` is [low, high] in values; steps without a finite range are skipped.
 */
export function ridgelineLayout(seriesList, { width, height, mode, xDomain }) {
  const steps = stepDomain(seriesList);
  if (!steps || !xDomain) return [];
  const top = maxCount(seriesList, xDomain);
  const [x0, x1] = xDomain;
  const xOf = (value) => ((value - x0) / (x1 - x0)) * width;
  const curves = [];
  seriesList.forEach((series, s) => {
    series.steps.forEach((step, i) => {
      if (!hasRange(series, i)) return;
      const { baseline, peak } = baselineOf(step, steps, height, mode);
      const counts = series.counts[i];
      const low = series.lows[i];
      const bucket = (series.highs[i] - low) / counts.length;
      const points = [[xOf(low), baseline]];
      counts.forEach((count, k) => {
        points.push([xOf(low + (k + 0.5) * bucket), baseline - ((count ?? 0) / top) * peak]);
      });
      points.push([xOf(series.highs[i]), baseline]);
      const fraction = steps[1] === steps[0] ? 1 : (step - steps[0]) / (steps[1] - steps[0]);
      curves.push({ series: s, step, baseline, fraction, opacity: 0.25 + 0.75 * fraction, points });
    });
  });
  return curves.sort((a, b) => a.step - b.step || a.series - b.series);
}
