// Layout of the per-gate histograms over steps. Pure functions.
//
// "offset" (a ridgeline, like TensorBoard's histograms tab): one curve per step, each on its
// own baseline, the first step at the top and the last at the bottom, curves up to
// OFFSET_PEAK of the plot's height tall. "overlay": every step on the bottom baseline, full
// height. Later steps are drawn more opaque. Heights are bucket counts over the largest count
// in the chart (all runs and steps inside the x range), so steps and runs compare.

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

/** One gate's histograms from a `stats` response gate: `{steps, lows, highs, counts}`. */
export function histogramSeries(gate) {
  return {
    steps: gate.steps,
    lows: gate.histograms.low,
    highs: gate.histograms.high,
    counts: gate.histograms.counts,
  };
}

function hasRange(series, i) {
  return Number.isFinite(series.lows[i]) && Number.isFinite(series.highs[i]);
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
 * (by step, then series), of `{series, step, baseline, opacity, points}`; `points` run from
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
      curves.push({ series: s, step, baseline, opacity: 0.25 + 0.75 * fraction, points });
    });
  });
  return curves.sort((a, b) => a.step - b.step || a.series - b.series);
}
