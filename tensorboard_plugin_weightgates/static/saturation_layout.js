// The saturation plot of Karpathy, Johnson and Fei-Fei (2015, "Visualizing and Understanding
// Recurrent Networks", figure 3): per gate, one dot per unit at (fraction of positions
// right-saturated, fraction left-saturated). Pure functions: the dots, their place in a plot
// box and which ones the pointer is on.
//
// A unit's two fractions add up to at most 1, so every dot lies on or below the diagonal from
// (0, 1) to (1, 0); dots on it are units that are always saturated on one side or the other.

/**
 * Where a corner of the plot is and what a unit there does; `x` and `y` are the fractions.
 */
export const CORNERS = Object.freeze([
  { x: 0, y: 0, label: "switches", align: "left" },
  { x: 1, y: 0, label: "always right-saturated", align: "right" },
  { x: 0, y: 1, label: "always left-saturated", align: "left" },
]);

/** The names of `activation_stats` responses that have a saturation type, in first-seen order. */
export function saturationNames(responses) {
  const names = [];
  for (const stats of responses) {
    for (const entry of stats.names) {
      if (entry.saturation && !names.some((n) => n.name === entry.name)) {
        names.push({ name: entry.name, saturation: entry.saturation });
      }
    }
  }
  return names;
}

/**
 * The per-unit values of one name (an entry of an `activation_stats` response's `names`) at
 * `step`: `{step, left, right, mean}` (lists, one number or null per unit), at the latest of
 * `units.steps` at or before `step` (the first if none), or null when it has no unit values.
 */
export function unitsAt(entry, step) {
  const steps = entry.units?.steps ?? [];
  if (steps.length === 0) return null;
  let i = 0;
  for (let k = 0; k < steps.length; k++) if (steps[k] <= step) i = k;
  return {
    step: steps[i],
    left: entry.units.left_saturated[i],
    right: entry.units.right_saturated[i],
    mean: entry.units.mean[i],
  };
}

/**
 * The dots of one name at `step` over `items` (`{run, direction, stats}`, `stats` an
 * `activation_stats` response): `{dots, missing}`, `dots` being `{run, direction, unit, left,
 * right, mean, step}` for every unit with both fractions, `missing` the units without (no finite
 * value: NaN runs), per run.
 */
export function saturationDots(items, name, step) {
  const dots = [];
  const missing = new Map();
  for (const { run, direction, stats } of items) {
    const entry = stats.names.find((n) => n.name === name);
    const units = entry && unitsAt(entry, step);
    if (!units) continue;
    units.left.forEach((left, unit) => {
      const right = units.right[unit];
      if (left === null || right === null || !Number.isFinite(left) || !Number.isFinite(right)) {
        missing.set(run, (missing.get(run) ?? 0) + 1);
        return;
      }
      dots.push({ run, direction, unit, left, right, mean: units.mean[unit], step: units.step });
    });
  }
  return { dots, missing };
}

/** Canvas position of fractions (right, left) in `box` (`{x, y, width, height}`). */
export function dotPosition(right, left, box) {
  return { x: box.x + right * box.width, y: box.y + (1 - left) * box.height };
}

/**
 * The dots within `radius` pixels of (px, py), nearest first (ties in their order): units at
 * the same fractions (many sit at a corner) are all found, not only the one drawn on top.
 */
export function dotsNear(dots, box, px, py, radius = 6) {
  const near = [];
  dots.forEach((dot, i) => {
    const { x, y } = dotPosition(dot.right, dot.left, box);
    const distance = (x - px) ** 2 + (y - py) ** 2;
    if (distance <= radius * radius) near.push({ dot, distance, i });
  });
  return near.sort((a, b) => a.distance - b.distance || a.i - b.i).map(({ dot }) => dot);
}

/** "lstm: units 3, 7 · gru: unit 1" for `dots`, at most `limit` units, then how many more. */
export function unitList(dots, limit = 12) {
  const byRun = new Map();
  for (const dot of dots.slice(0, limit)) {
    if (!byRun.has(dot.run)) byRun.set(dot.run, []);
    byRun.get(dot.run).push(dot.unit);
  }
  const parts = [...byRun].map(([run, units]) => `${run}: unit${units.length > 1 ? "s" : ""} ${units.join(", ")}`);
  const more = dots.length - Math.min(dots.length, limit);
  return `${parts.join(" · ")}${more ? ` and ${more} more` : ""}`;
}

/**
 * Units of `dots` saturated on one side at more than `fraction` of their positions, per run:
 * `Map(run -> {left, right, units})`, as the `left_saturated_units` statistic counts them.
 */
export function saturatedUnits(dots, fraction = 0.9) {
  const counts = new Map();
  for (const dot of dots) {
    const count = counts.get(dot.run) ?? { left: 0, right: 0, units: 0 };
    count.units += 1;
    if (dot.left > fraction) count.left += 1;
    if (dot.right > fraction) count.right += 1;
    counts.set(dot.run, count);
  }
  return counts;
}

/** The thresholds of a saturation type as axis titles: `{x, y}`. */
export function axisTitles(saturation) {
  return {
    x: `fraction right-saturated (> ${saturation.high})`,
    y: `fraction left-saturated (< ${saturation.low})`,
  };
}
