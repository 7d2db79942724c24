// Axis domains of the charts. Pure functions.
//
// "Ignore outliers" is TensorBoard's Scalars option with a margin: the domain spans the 5th to
// the 95th percentile of the values widened by half that span on each side (never beyond the
// minimum and maximum), so that one run blowing up by orders of magnitude does not flatten the
// others, while runs that merely spread wider stay whole. What lies beyond is clipped.

export const OUTLIER_QUANTILES = Object.freeze([0.05, 0.95]);

export const IGNORE_OUTLIERS_HELP =
  "Scale axes to the bulk of the values (5th–95th percentile, plus half that span each side) so that one diverging run does not flatten the others; what lies beyond is clipped.";

/** The q-quantile of ascending `sorted` numbers, interpolating linearly (as d3.quantile). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return undefined;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

function finiteSorted(values) {
  return values.filter((value) => value !== null && Number.isFinite(value)).sort((a, b) => a - b);
}

/**
 * [low, high] of the finite numbers of `lows` and `highs` (pass the same list twice for plain
 * values): their minimum and maximum, or with `ignoreOutliers` the 5th percentile of `lows`
 * and the 95th of `highs`, widened by half their distance on each side but not beyond the
 * minimum and maximum. Null when there is no finite number.
 */
export function extent(lows, highs = lows, { ignoreOutliers = false } = {}) {
  const low = finiteSorted(lows);
  const high = finiteSorted(highs);
  if (low.length === 0 || high.length === 0) return null;
  if (!ignoreOutliers) return [low[0], high[high.length - 1]];
  const [qLow, qHigh] = OUTLIER_QUANTILES;
  const [bulkLow, bulkHigh] = [quantile(low, qLow), quantile(high, qHigh)].sort((a, b) => a - b);
  const margin = (bulkHigh - bulkLow) / 2;
  return [Math.max(low[0], bulkLow - margin), Math.min(high[high.length - 1], bulkHigh + margin)];
}

/**
 * `domain` widened by `fraction` of its width on each side; a single value v widens to
 * v ± |v| / 10 (± `zeroPad` for 0) so that it shows in the middle. Null stays null.
 */
export function padDomain(domain, fraction = 0.05, zeroPad = 1) {
  if (!domain) return null;
  const [low, high] = domain;
  if (low === high) {
    const pad = Math.abs(low) / 10 || zeroPad;
    return [low - pad, high + pad];
  }
  const pad = (high - low) * fraction;
  return [low - pad, high + pad];
}

/** Domain of the values in `lists` (arrays with numbers or null) for a line chart's y axis. */
export function valuesDomain(lists, { ignoreOutliers = false } = {}) {
  const values = lists.flat();
  return padDomain(extent(values, values, { ignoreOutliers }));
}

/** Whether [low, high] lies inside `domain` (with a tolerance of 1% of its width). */
export function within(low, high, domain) {
  const tolerance = (domain[1] - domain[0]) * 0.01;
  return low >= domain[0] - tolerance && high <= domain[1] + tolerance;
}
