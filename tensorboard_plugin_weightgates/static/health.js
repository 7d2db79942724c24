// Health view: per direction, a grid of line charts (a row per metric, a column per gate) over
// steps with the selected runs in their colours; then a sortable table of every statistic
// across runs, directions and gates at one step, downloadable as CSV.

import { drawAxes, drawLines, plotBox } from "./chart.js";
import { download, h, ignoreOutliersField, replaceChildren, selectField, sizeCanvas } from "./dom.js";
import { extent, padDomain, valuesDomain } from "./domains.js";
import { formatValue, safeFilename } from "./format.js";
import {
  constantValue,
  firstRecords,
  metricValues,
  metricsFor,
  sortRows,
  tableColumns,
  tableRows,
  toCsv,
} from "./health_data.js";
import { SATURATION_COLUMNS, fetchSaturation, withSaturation } from "./health_saturation.js";
import { pickStep, unionSteps } from "./layers.js";
import { StatsLoader, byDirection, loadErrors, statsByGate } from "./stats_loader.js";

export const DEFAULT_HEALTH_SETTINGS = Object.freeze({
  step: null,
  sortColumn: "run",
  sortOrder: "asc",
  ignoreOutliers: true,
});

const CHART_HEIGHT = 120;

export class HealthView {
  constructor(onSettings) {
    this.onSettings = onSettings;
    this.charts = [];
    this.controls = h("div", { class: "wg-controls" });
    this.sections = h("div", { class: "wg-sections" });
    this.loader = new StatsLoader(this.sections);
    this.table = h("div", { class: "wg-stats-table-wrap" });
    this.tooltip = h("div", { class: "wg-tooltip", role: "tooltip", hidden: true });
    this.element = h("div", { class: "wg-view wg-health" }, this.controls, this.sections, this.table, this.tooltip);
    this.resizeObserver = new ResizeObserver(() => this.redraw());
    this.resizeObserver.observe(this.sections);
  }

  /** `context`: `{api, index, runs, colors, layer, kernel, kind, settings}`. */
  async update(context) {
    const { colors, layer, kernel, kind, settings } = context;
    replaceChildren(
      this.controls,
      ignoreOutliersField(settings.ignoreOutliers, (ignoreOutliers) => this.onSettings({ ignoreOutliers })),
    );
    const [loaded, saturation] = await Promise.all([
      this.loader.load(context),
      fetchSaturation(context.api, layer),
    ]);
    if (loaded === null) return;
    this.charts = [];
    if (loaded.length === 0) {
      this.table.replaceChildren();
      return;
    }
    const multiDirection = layer.directions.length > 1;
    replaceChildren(
      this.sections,
      byDirection(loaded).map(({ direction, items }) =>
        this.section(items, {
          colors,
          kernel,
          kind,
          direction,
          multiDirection: layer.bidirectional && multiDirection,
          ignoreOutliers: settings.ignoreOutliers,
        }),
      ),
    );
    this.renderTable(loaded, { colors, layer, kernel, kind, settings, saturation });
    this.redraw();
  }

  section(items, { colors, kernel, kind, direction, multiDirection, ignoreOutliers }) {
    const perGate = statsByGate(items);
    const gates = perGate.map(({ gate }) => gate);
    const steps = items.flatMap((item) => item.stats?.gates.flatMap((gate) => gate.steps) ?? []);
    const xDomain = padDomain(extent(steps), 0.02);
    const grid = h("div", {
      class: "wg-health-grid",
      style: { gridTemplateColumns: `max-content repeat(${Math.max(1, gates.length)}, minmax(140px, 1fr))` },
    });
    grid.append(h("div"), ...gates.map((gate) => h("div", { class: "wg-grid-head", text: gate ?? kernel })));
    for (const metric of metricsFor(kind)) {
      grid.append(h("div", { class: "wg-grid-label", text: metric.label }));
      for (const { gate, runs } of perGate) {
        const series = runs.map(({ run, stats }) => ({
          run,
          color: colors.get(run),
          xs: stats.steps,
          ys: metricValues(stats, metric),
        }));
        const canvas = h("canvas", { class: "wg-line-canvas", dataset: { metric: metric.id, gate: gate ?? "" } });
        const constant = constantValue(series.map((s) => s.ys));
        const chart = {
          canvas,
          series,
          xDomain,
          // A constant series (no NaN ever, a bias still at 0) on an axis around its value,
          // with one tick there, rather than a -1 … 1 axis.
          yValues: constant === null ? null : [constant],
          yDomain:
            constant === null
              ? valuesDomain(
                  series.map((s) => s.ys),
                  { ignoreOutliers },
                )
              : padDomain([constant, constant], 0, 1),
          metric,
          gate: gate ?? kernel,
        };
        canvas.addEventListener("mousemove", (event) => this.hover(chart, event));
        canvas.addEventListener("mouseleave", () => {
          this.tooltip.hidden = true;
        });
        this.charts.push(chart);
        grid.append(h("div", { class: "wg-grid-cell" }, canvas));
      }
    }
    return h(
      "section",
      { class: "wg-section", dataset: { direction } },
      multiDirection ? h("header", { class: "wg-section-header" }, h("h3", { text: direction })) : null,
      loadErrors(items),
      grid,
    );
  }

  redraw() {
    for (const chart of this.charts) {
      const width = chart.canvas.parentElement?.clientWidth ?? 0;
      if (width === 0) continue;
      const context = sizeCanvas(chart.canvas, width, CHART_HEIGHT);
      context.clearRect(0, 0, width, CHART_HEIGHT);
      const box = plotBox(width, CHART_HEIGHT);
      chart.box = box;
      drawAxes(context, box, chart.xDomain, chart.yDomain, { xTicks: 3, yTicks: 4, yValues: chart.yValues });
      if (chart.xDomain && chart.yDomain) drawLines(context, box, chart.series, chart.xDomain, chart.yDomain);
    }
  }

  hover(chart, event) {
    if (!chart.box || !chart.xDomain) return;
    const rect = chart.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left;
    const step = chart.xDomain[0] + ((x - chart.box.x) / chart.box.width) * (chart.xDomain[1] - chart.xDomain[0]);
    const steps = unionSteps(chart.series.map((s) => s.xs));
    if (steps.length === 0) return;
    const nearest = steps.reduce((best, s) => (Math.abs(s - step) < Math.abs(best - step) ? s : best), steps[0]);
    replaceChildren(
      this.tooltip,
      h("div", { class: "wg-tooltip-title", text: `${chart.metric.label} · ${chart.gate} · step ${nearest}` }),
      chart.series.map((s) => {
        const i = s.xs.indexOf(nearest);
        return h(
          "div",
          { class: "wg-tooltip-row" },
          h("span", { class: "wg-swatch", style: { backgroundColor: s.color } }),
          h("span", { class: "wg-run-name", text: s.run }),
          h("span", { class: "wg-tooltip-value", text: i < 0 ? "—" : formatValue(s.ys[i]) }),
        );
      }),
    );
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.min(event.clientX + 14, window.innerWidth - this.tooltip.offsetWidth - 4)}px`;
    this.tooltip.style.top = `${event.clientY + 14}px`;
  }

  renderTable(loaded, { colors, layer, kernel, kind, settings, saturation }) {
    const ok = loaded.filter((item) => item.stats);
    const steps = unionSteps(ok.flatMap((item) => item.stats.gates.map((gate) => gate.steps)));
    if (steps.length === 0) {
      this.table.replaceChildren();
      return;
    }
    const step = pickStep(steps, settings.step);
    const entries = ok.map((item) => ({
      run: item.run,
      direction: item.direction,
      stats: item.stats,
      countsDeadUnits: item.entry.counts_dead_units ?? true,
    }));
    const kernelColumns = tableColumns({ bidirectional: layer.bidirectional, kind });
    const columns = saturation.length ? [...kernelColumns, ...SATURATION_COLUMNS] : kernelColumns;
    const sortColumn = columns.some((c) => c.id === settings.sortColumn) ? settings.sortColumn : "run";
    const rows = sortRows(
      withSaturation(tableRows(entries, step), saturation),
      sortColumn,
      settings.sortOrder,
      columns,
    );
    const later = firstRecords(entries, step);
    const stepField = selectField(
      "Step",
      steps.map((s) => ({ id: String(s), label: String(s) })),
      String(step),
      (value) => this.onSettings({ step: Number(value) }),
    );
    const csv = h("button", {
      type: "button",
      class: "wg-button",
      text: "Download CSV",
      onclick: () =>
        download(
          new Blob([toCsv(columns, rows)], { type: "text/csv;charset=utf-8" }),
          `${safeFilename(`${layer.layer}_${kernel}_${kind}_step${step}`)}.csv`,
        ),
    });
    const head = h(
      "tr",
      {},
      columns.map((column) => {
        const sorted = sortColumn === column.id;
        const order = sorted && settings.sortOrder === "asc" ? "desc" : "asc";
        return h(
          "th",
          {
            class: column.type === "number" ? "wg-num" : null,
            "aria-sort": sorted ? (settings.sortOrder === "asc" ? "ascending" : "descending") : "none",
          },
          h("button", {
            type: "button",
            class: "wg-sort",
            text: `${column.label}${sorted ? (settings.sortOrder === "asc" ? " ▲" : " ▼") : ""}`,
            onclick: () =>
              this.onSettings({
                sortColumn: column.id,
                sortOrder: sorted ? order : column.type === "number" ? "desc" : "asc",
              }),
          }),
        );
      }),
    );
    const body = rows.map((row) =>
      h(
        "tr",
        { dataset: { run: row.run } },
        columns.map((column) => {
          if (column.id === "run") {
            return h(
              "td",
              {},
              h("span", { class: "wg-swatch", style: { backgroundColor: colors.get(row.run) } }),
              h("span", { class: "wg-run-name", text: row.run }),
            );
          }
          const value = row[column.id];
          const text = column.type === "number" && typeof value !== "string" ? formatValue(value, 4) : String(value);
          const alarm = (column.id === "nan_count" || column.id === "inf_count") && value > 0;
          return h("td", { class: `${column.type === "number" ? "wg-num" : ""}${alarm ? " wg-alarm" : ""}`, text });
        }),
      ),
    );
    replaceChildren(
      this.table,
      h(
        "div",
        { class: "wg-controls" },
        h("h3", { class: "wg-table-title", text: "Statistics at one step" }),
        stepField,
        csv,
      ),
      h("table", { class: "wg-stats-table" }, h("thead", {}, head), h("tbody", {}, body)),
      later.map(({ run, direction, first }) =>
        h(
          "p",
          { class: "wg-first-record", role: "note" },
          h("span", { class: "wg-run-name", text: run }),
          `${layer.bidirectional ? ` (${direction})` : ""}: no record at or before step ${step}, first record at step ${first}`,
        ),
      ),
    );
  }
}
