// Runs: order, colours, the regex filter and the persisted selection. Pure functions.
//
// The conventions follow TensorBoard 2.21's own runs table: one colour per run from its
// default palette, assigned in the order of TensorBoard's run list; the filter is a
// case-insensitive regular expression, and an invalid one matches no run; the views show the
// selected runs the filter lets through; select all/none act on the runs the filter shows; a
// run not seen before starts selected.

/** TensorBoard 2.21's default run palette ("Slate" to "Orange"), in its order. */
export const RUN_PALETTE = Object.freeze(["#425066", "#12b5cb", "#e52592", "#f9ab00", "#9334e6", "#7cb342", "#e8710a"]);

/**
 * The runs to list: those with weightgates data (`dataRuns`), in the order of TensorBoard's
 * run list (`hostRuns`, null when not inside TensorBoard); runs TensorBoard does not list yet
 * follow in name order.
 */
export function orderRuns(dataRuns, hostRuns) {
  const withData = new Set(dataRuns);
  const ordered = (hostRuns ?? []).filter((run) => withData.has(run));
  const listed = new Set(ordered);
  const rest = [...withData].filter((run) => !listed.has(run)).sort();
  return [...new Set(ordered), ...rest];
}

/**
 * One colour per run: the palette entry at the run's position in TensorBoard's run list
 * (`hostRuns`), so a run keeps the colour TensorBoard gives it; runs TensorBoard does not list
 * continue the palette after it, in the order given.
 */
export function assignColors(runs, hostRuns) {
  const position = new Map();
  for (const run of hostRuns ?? []) if (!position.has(run)) position.set(run, position.size);
  let next = position.size;
  const colors = new Map();
  for (const run of runs) {
    const index = position.has(run) ? position.get(run) : next++;
    colors.set(run, RUN_PALETTE[index % RUN_PALETTE.length]);
  }
  return colors;
}

/**
 * Compiles a run filter: `{matches(run), error}`; an invalid pattern matches nothing and
 * `error` says why in a few words ("not a valid regex: unterminated group").
 */
export function compileFilter(pattern) {
  if (!pattern) return { matches: () => true, error: null };
  try {
    const regex = new RegExp(pattern, "i");
    return { matches: (run) => regex.test(run), error: null };
  } catch (error) {
    return { matches: () => false, error: `Not a valid regex: ${regexProblem(error)}` };
  }
}

/**
 * The reason in a RegExp SyntaxError without the engine's preamble: V8 says "Invalid regular
 * expression: /(/i: Unterminated group", Firefox "unterminated parenthetical".
 */
function regexProblem(error) {
  const message = String(error?.message ?? error);
  const reason = message.includes(": ") ? message.slice(message.lastIndexOf(": ") + 2) : message;
  return reason.charAt(0).toLowerCase() + reason.slice(1);
}

export function filterRuns(runs, pattern) {
  const filter = compileFilter(pattern);
  return { runs: runs.filter(filter.matches), error: filter.error };
}

/**
 * The runs whose panels show: selected and matching the filter `pattern`, in order. The
 * filter hides runs from the views as it hides them from the list, as TensorBoard's does.
 */
export function shownRuns(runs, selection, pattern) {
  const { matches } = compileFilter(pattern);
  return runs.filter((run) => isSelected(selection, run) && matches(run));
}

/**
 * The persisted selection is an object mapping run names to true/false; a run missing from it
 * is selected. Unknown or malformed stored data gives the default (everything selected).
 */
export function parseSelection(json) {
  try {
    const parsed = JSON.parse(json ?? "{}");
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return {};
    return Object.fromEntries(Object.entries(parsed).filter(([, value]) => typeof value === "boolean"));
  } catch {
    return {};
  }
}

export function isSelected(selection, run) {
  return selection[run] !== false;
}

export function selectedRuns(runs, selection) {
  return runs.filter((run) => isSelected(selection, run));
}

/** A new selection with every run of `runs` set to `selected`. */
export function setSelected(selection, runs, selected) {
  const next = { ...selection };
  for (const run of runs) next[run] = selected;
  return next;
}
