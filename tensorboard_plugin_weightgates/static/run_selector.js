// The run selector in the tab's side bar: a regex filter, select all/none for the runs it
// shows, one checkbox per run in the run's colour, and runs that could not be read.

import { h, replaceChildren } from "./dom.js";
import { filterRuns, isSelected, shownRuns } from "./runs.js";

/**
 * The runs that could not be read (`errors`: run → why), under a title of tag `heading`, the
 * level where the list stands (the selector's sidebar, the tab's no-data page); nothing when
 * every run was read.
 */
export function runProblems(errors, heading) {
  const broken = Object.entries(errors ?? {});
  if (broken.length === 0) return [];
  return [
    h(heading, { text: "Runs that could not be read" }),
    broken.map(([run, why]) =>
      h(
        "p",
        { class: "wg-run-problem" },
        h("span", { class: "wg-run-name", text: run }),
        h("span", { text: `: ${why}` }),
      ),
    ),
  ];
}

export class RunSelector {
  /**
   * `onSelect(runs, selected)` sets the selection of some runs; `onFilter(pattern)` changes
   * the filter.
   */
  constructor({ onSelect, onFilter }) {
    this.onSelect = onSelect;
    this.filterInput = h("input", {
      type: "search",
      class: "wg-runs-filter",
      placeholder: "Filter runs (regex)",
      "aria-label": "Filter runs (regular expression)",
      oninput: () => onFilter(this.filterInput.value),
    });
    this.filterError = h("div", { class: "wg-runs-filter-error", role: "status" });
    this.count = h("span", { class: "wg-runs-count" });
    this.list = h("ul", { class: "wg-run-list", "aria-label": "Runs" });
    this.problems = h("div", { class: "wg-runs-problems" });
    this.visible = [];
    this.element = h(
      "section",
      { class: "wg-runs" },
      h("h2", { class: "wg-sidebar-title", text: "Runs" }),
      this.filterInput,
      this.filterError,
      h(
        "div",
        { class: "wg-runs-actions" },
        h("button", {
          type: "button",
          class: "wg-link",
          text: "All",
          title: "Select the runs shown",
          onclick: () => onSelect(this.visible, true),
        }),
        h("button", {
          type: "button",
          class: "wg-link",
          text: "None",
          title: "Deselect the runs shown",
          onclick: () => onSelect(this.visible, false),
        }),
        this.count,
      ),
      this.list,
      this.problems,
    );
  }

  /**
   * `runs`: runs with weightgates data, in order; `colors`: run → CSS colour; `selection`: the
   * persisted selection; `filter`: the regex; `errors`: run → why it could not be read.
   */
  update({ runs, colors, selection, filter, errors }) {
    if (this.filterInput.value !== filter) this.filterInput.value = filter;
    const { runs: visible, error } = filterRuns(runs, filter);
    this.visible = visible;
    this.filterError.textContent = error ?? "";
    const shown = shownRuns(runs, selection, filter).length;
    this.count.textContent = `${shown} of ${runs.length} shown`;
    this.count.title = "Runs whose panels show: ticked and matching the filter";
    replaceChildren(
      this.list,
      visible.map((run) => this.runItem(run, colors.get(run), isSelected(selection, run))),
      visible.length === 0 && runs.length > 0
        ? h("li", { class: "wg-runs-none", text: "No run matches the filter." })
        : null,
    );
    replaceChildren(this.problems, runProblems(errors, "h3"));
  }

  runItem(run, color, checked) {
    const checkbox = h("input", {
      type: "checkbox",
      checked,
      dataset: { run },
      style: { accentColor: color },
      onchange: () => this.onSelect([run], checkbox.checked),
    });
    return h(
      "li",
      { class: "wg-run", title: run },
      h(
        "label",
        {},
        checkbox,
        h("span", { class: "wg-swatch", style: { backgroundColor: color }, "aria-hidden": "true" }),
        h("span", { class: "wg-run-name", text: run }),
      ),
    );
  }
}
