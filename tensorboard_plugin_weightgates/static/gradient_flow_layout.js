// Gradient flow through time: the norm of dL/dh_t against timestep t on a log axis (the
// `activation_gradients` route), one line per logged step of a run or one line per run at one
// step. Pure functions: the series, the log axis and the colours of steps.

import { pickStep } from "./layers.js";

export const FLOW_MODES = Object.freeze([
  { id: "steps", label: "Steps of one run" },
  { id: "runs", label: "Runs at one step" },
]);

/** Colour stops of the steps, early (light) to late (dark): ColorBrewer's sequential PuBu. */
const STEP_STOPS = [
  [208, 209, 230],
  [166, 189, 219],
  [116, 169, 207],
  [54, 144, 192],
  [5, 112, 176],
  [4, 90, 141],
  [2, 56, 88],
];

/** CSS colour of a step at `fraction` (0: the first logged step, 1: the last). */
export function stepColor(fraction) {
  const position = Math.min(Math.max(Number.isFinite(fraction) ? fraction : 1, 0), 1) * (STEP_STOPS.length - 1);
  const i = Math.min(Math.floor(position), STEP_STOPS.length - 2);
  const f = position - i;
  const [r, g, b] = STEP_STOPS[i].map((value, k) => Math.round(value + (STEP_STOPS[i + 1][k] - value) * f));
  return `rgb(${r}, ${g}, ${b})`;
}

/** A norm as the log axis can draw it: positive and finite, else null (a gap). */
export function plottable(value) {
  return value !== null && value !== undefined && Number.isFinite(value) && value > 0 ? value : null;
}

/** One series per logged step of one `activation_gradients` response, coloured by step. */
export function stepSeries(gradients) {
  const { steps, norms } = gradients;
  const first = steps[0];
  const last = steps[steps.length - 1];
  return steps.map((step, i) => ({
    label: `step ${step}`,
    step,
    color: stepColor(last === first ? 1 : (step - first) / (last - first)),
    xs: norms[i].map((_, t) => t),
    ys: norms[i].map(plottable),
  }));
}

/**
 * One series per run at `step` (each run at its latest logged step at or before it): `items`
 * are `{run, gradients}`, `colors` run -> CSS colour.
 */
export function runSeries(items, step, colors) {
  return items.flatMap(({ run, gradients }) => {
    const actual = pickStep(gradients.steps, step);
    if (actual === null) return [];
    const norms = gradients.norms[gradients.steps.indexOf(actual)];
    return [
      {
        label: run,
        run,
        step: actual,
        color: colors.get(run),
        xs: norms.map((_, t) => t),
        ys: norms.map(plottable),
      },
    ];
  });
}

/** [low, high] in whole decades covering the series' plottable values, or null if none. */
export function logDomain(series) {
  let low = Infinity;
  let high = -Infinity;
  for (const s of series) {
    for (const y of s.ys) {
      if (y === null) continue;
      if (y < low) low = y;
      if (y > high) high = y;
    }
  }
  if (!(low <= high)) return null;
  const lowDecade = Math.floor(Math.log10(low));
  const highDecade = Math.max(lowDecade + 1, Math.ceil(Math.log10(high)));
  return [10 ** lowDecade, 10 ** highDecade];
}

/**
 * Tick values of a log domain: powers of ten, every k-th so that at most `count` remain; over
 * two decades or less also 2 and 5 times each power, so that a short domain has ticks inside.
 */
export function logTicks(domain, count = 6) {
  if (!domain) return [];
  const first = Math.round(Math.log10(domain[0]));
  const last = Math.round(Math.log10(domain[1]));
  const every = Math.max(1, Math.ceil((last - first + 1) / count));
  const multiples = last - first <= 2 ? [1, 2, 5] : [1];
  const ticks = [];
  for (let e = first; e <= last; e += every) {
    for (const m of multiples) if (e < last || m === 1) ticks.push(Number((m * 10 ** e).toPrecision(1)));
  }
  return ticks;
}

/** y of `value` in a plot `height` pixels tall (0 at the top) on log `domain`. */
export function logY(value, domain, height) {
  const [low, high] = domain.map(Math.log10);
  return height - ((Math.log10(value) - low) / (high - low)) * height;
}

/** A tick label of a log axis: "1", "20", "0.05", "1e-5", "2e-4". */
export function decadeLabel(value) {
  const exponent = Math.floor(Math.log10(value) + 1e-9);
  if (exponent >= -2 && exponent <= 3) return String(Number(value.toPrecision(1)));
  return `${Math.round(value / 10 ** exponent)}e${exponent}`;
}

/**
 * How the gradient changes back through time in one series: the norm at the first timestep a
 * direction reads over the one at the last it reads (forward: t = 0 over t = T-1; backward:
 * the reverse), skipping timesteps without a norm (masked ones), or null with fewer than two.
 * Far below 1: vanishing.
 */
export function flowRatio(ys, direction) {
  const drawn = ys.filter((y) => y !== null && y !== undefined);
  if (drawn.length < 2) return null;
  const [first, last] = direction === "backward" ? [drawn[drawn.length - 1], drawn[0]] : [drawn[0], drawn[drawn.length - 1]];
  return first / last;
}

/** The timestep nearest to x pixels in a plot `width` wide over timesteps 0 … timesteps-1. */
export function timestepAt(x, width, timesteps) {
  if (timesteps <= 1) return 0;
  return Math.min(timesteps - 1, Math.max(0, Math.round((x / width) * (timesteps - 1))));
}
