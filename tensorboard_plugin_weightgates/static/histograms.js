// Histograms view: per direction and gate, the histograms over steps, as TensorBoard draws
// them: filled offset curves (later steps in front, shaded by step) or overlaid on one
// baseline, with a titled step axis and a count scale; one card per run, or the runs overlaid
// in their colours in one chart. A run whose values are all NaN or Inf says so in its card.

import { FONT, chartColors, drawAxes, plotBox } from "./chart.js";
import { h, ignoreOutliersField, replaceChildren, segmented, sizeCanvas } from "./dom.js";
import { composeFigure, downloadPng, runLegend } from "./figure.js";
import { formatTick, niceTicks, safeFilename } from "./format.js";
import {
  HISTOGRAM_MODES,
  X_AXIS_MODES,
  baselineOf,
  histogramSeries,
  maxCount,
  nonFiniteMessage,
  nonFiniteSteps,
  offScaleCount,
  ridgelineLayout,
  stepColor,
  stepDomain,
  valueDomain,
} from "./histogram_layout.js";
import { StatsLoader, byDirection, loadErrors, statsByGate } from "./stats_loader.js";

const RUN_LAYOUTS = Object.freeze([
  { id: "cards", label: "One card per run" },
  { id: "overlay", label: "Overlaid" },
]);

export const DEFAULT_HISTOGRAM_SETTINGS = Object.freeze({
  mode: "offset",
  runs: "cards",
  xAxis: "shared",
  ignoreOutliers: true,
});

const CHART_HEIGHT = 200;

export class HistogramView {
  constructor(onSettings) {
    this.onSettings = onSettings;
    this.charts = [];
    this.controls = h("div", { class: "wg-controls" });
    this.sections = h("div", { class: "wg-sections" });
    this.loader = new StatsLoader(this.sections);
    this.element = h("div", { class: "wg-view wg-histograms" }, this.controls, this.sections);
    this.resizeObserver = new ResizeObserver(() => this.redraw());
    this.resizeObserver.observe(this.sections);
  }

  /** `context`: `{api, index, runs, colors, layer, kernel, kind, settings}`. */
  async update(context) {
    const { colors, layer, kernel, kind, settings } = context;
    replaceChildren(
      this.controls,
      segmented("Mode", HISTOGRAM_MODES, settings.mode, (mode) => this.onSettings({ mode })),
      segmented("Runs", RUN_LAYOUTS, settings.runs, (runs) => this.onSettings({ runs })),
      segmented("X axis", X_AXIS_MODES, settings.xAxis, (xAxis) => this.onSettings({ xAxis })),
      ignoreOutliersField(settings.ignoreOutliers, (ignoreOutliers) => this.onSettings({ ignoreOutliers })),
    );
    const loaded = await this.loader.load(context);
    if (loaded === null) return;
    this.charts = [];
    if (loaded.length === 0) return;
    const multiDirection = layer.directions.length > 1;
    replaceChildren(
      this.sections,
      byDirection(loaded).map(({ direction, items }) =>
        this.section(items, { colors, layer, kernel, kind, settings, direction, multiDirection }),
      ),
    );
    this.redraw();
  }

  section(items, describe) {
    const { colors, settings, kernel } = describe;
    const byGate = statsByGate(items);
    const perGate = byGate.map(({ runs }) =>
      runs.map(({ run, stats }) => ({ ...histogramSeries(stats), color: colors.get(run), run })),
    );
    const runs = [...new Set(perGate.flat().map((series) => series.run))];
    const separate = settings.runs !== "overlay" && runs.length > 1;
    const domainOptions = { ignoreOutliers: settings.ignoreOutliers };
    const shared = valueDomain(perGate.flat(), domainOptions);
    const first = this.charts.length;
    const figures = byGate.flatMap(({ gate }, g) => {
      const xDomain = settings.xAxis === "shared" ? shared : valueDomain(perGate[g], domainOptions);
      const groups = separate ? perGate[g].map((series) => [series]) : [perGate[g]];
      return groups.map((series) => this.figure(series, { gate, kernel, settings, xDomain, separate }));
    });
    const chartsOfSection = this.charts.slice(first);
    return h(
      "section",
      { class: "wg-section", dataset: { direction: describe.direction } },
      h(
        "header",
        { class: "wg-section-header" },
        h("h3", { text: describe.multiDirection ? describe.direction : sectionTitle(byGate.map((g) => g.gate), kernel) }),
        h("span", { class: "wg-spacer" }),
        h("button", {
          type: "button",
          class: "wg-icon-button",
          text: "PNG",
          title: "Download these histograms as PNG",
          onclick: () => this.download(chartsOfSection, describe, separate ? runs.length : 2),
        }),
      ),
      loadErrors(items),
      h(
        "div",
        {
          class: "wg-chart-grid",
          style: separate ? { gridTemplateColumns: `repeat(${runs.length}, minmax(220px, 1fr))` } : null,
        },
        figures,
      ),
    );
  }

  /** One card: `series` (one run, or every run overlaid) of one gate. */
  figure(series, { gate, kernel, settings, xDomain, separate }) {
    const name = gate ?? kernel;
    const run = separate ? series[0].run : null;
    const title = run ? `${name} · ${run}` : name;
    const drawable = series.filter((s) => !nonFiniteSteps(s)?.all);
    const notes = series
      .map((s) => ({ s, missing: nonFiniteSteps(s) }))
      .filter(({ missing }) => missing)
      .map(({ s, missing }) =>
        h(
          "p",
          { class: `wg-no-finite${missing.all ? " wg-no-finite-all" : ""}`, role: "note", dataset: { run: s.run } },
          separate ? null : h("span", { class: "wg-swatch", style: { backgroundColor: s.color } }),
          separate ? null : h("span", { class: "wg-run-name", text: `${s.run}: ` }),
          nonFiniteMessage(missing),
        ),
      );
    const canvas = h("canvas", {
      class: "wg-histogram-canvas",
      dataset: { gate: gate ?? "", run: run ?? "" },
      hidden: drawable.length === 0,
    });
    const offScale = xDomain ? offScaleCount(drawable, xDomain) : 0;
    const chart = { canvas, title, series: drawable, mode: settings.mode, xDomain, separate };
    this.charts.push(chart);
    return h(
      "figure",
      { class: "wg-chart", dataset: { gate: gate ?? "", run: run ?? "" } },
      h(
        "figcaption",
        {},
        run ? h("span", { class: "wg-swatch", style: { backgroundColor: series[0].color } }) : null,
        h("span", { class: "wg-chart-title", text: title }),
        offScale
          ? h("span", {
              class: "wg-off-scale",
              text: ` · ${offScale} off-scale`,
              title: `${offScale} histograms (run and step) reach beyond this axis and are clipped; untick “Ignore outliers” to see them whole`,
            })
          : null,
      ),
      notes,
      canvas,
    );
  }

  redraw() {
    for (const chart of this.charts) {
      if (chart.canvas.hidden) continue;
      const width = chart.canvas.parentElement?.clientWidth ?? 0;
      if (width > 0) drawHistogramChart(chart.canvas, width, CHART_HEIGHT, chart);
    }
  }

  download(charts, { layer, kernel, kind, direction, colors }, columns) {
    const drawn = charts.filter((chart) => !chart.canvas.hidden);
    const runs = [...new Set(drawn.flatMap((chart) => chart.series.map((s) => s.run)))];
    const where = layer.bidirectional ? ` · ${direction}` : "";
    const figure = composeFigure({
      title: `${layer.layer} (${layer.layer_type})${where} · ${kernel} · ${kind} histograms`,
      items: drawn.map((chart) => ({ label: chart.title, image: chart.canvas })),
      columns: Math.max(1, Math.min(drawn.length, columns)),
      legend: runLegend(runs, colors),
    });
    downloadPng(figure, safeFilename(`${layer.layer}_${direction}_${kernel}_${kind}_histograms`));
  }
}

/** "Heads" for an attention projection, "Gates" for gated kernels, the name of an unsplit one. */
function sectionTitle(gates, kernel) {
  if (gates.some((gate) => /^head_\d+$/.test(gate ?? ""))) return "Heads";
  return gates.some((gate) => gate !== null) ? "Gates" : kernel;
}

const MARGIN = { left: 44, right: 48, top: 8, bottom: 20 };

function drawHistogramChart(canvas, width, height, { series, mode, xDomain, separate }) {
  const context = sizeCanvas(canvas, width, height);
  const colors = chartColors();
  context.clearRect(0, 0, width, height);
  const box = plotBox(width, height, { ...MARGIN, right: mode === "offset" ? MARGIN.right : 12 });
  if (!xDomain || series.length === 0) return;
  drawAxes(context, box, xDomain, null);
  const curves = ridgelineLayout(series, { width: box.width, height: box.height, mode, xDomain });
  const top = maxCount(series, xDomain);
  context.save();
  context.beginPath();
  context.rect(box.x, 0, box.width, box.y + box.height);
  context.clip();
  context.translate(box.x, box.y);
  context.lineWidth = 1;
  context.lineJoin = "round";
  for (const curve of curves) {
    const color = series[curve.series].color;
    context.beginPath();
    curve.points.forEach(([x, y], i) => (i === 0 ? context.moveTo(x, y) : context.lineTo(x, y)));
    if (separate || series.length === 1) {
      // TensorBoard's look: each step a filled curve, shaded from pale to the run's colour,
      // outlined in the background colour so the curve in front stays readable.
      context.globalAlpha = mode === "overlay" ? 0.6 : 1;
      context.fillStyle = stepColor(color, colors.panel, curve.fraction);
      context.fill();
      context.globalAlpha = 1;
      context.strokeStyle = mode === "overlay" ? stepColor(color, colors.panel, curve.fraction) : colors.panel;
      context.stroke();
    } else {
      context.globalAlpha = 0.12 * curve.opacity;
      context.fillStyle = color;
      context.fill();
      context.globalAlpha = curve.opacity;
      context.strokeStyle = color;
      context.stroke();
    }
  }
  context.restore();
  drawCountScale(context, box, top, mode, colors);
  if (mode === "offset") drawStepAxis(context, box, series, colors);
}

/**
 * The count scale left of the plot: in overlay mode count ticks on a y axis; in offset mode a
 * bar as tall as a curve of the largest count, on the last step's baseline.
 */
function drawCountScale(context, box, top, mode, colors) {
  context.save();
  context.font = FONT;
  context.fillStyle = colors.label;
  context.strokeStyle = colors.axis;
  context.textAlign = "right";
  context.textBaseline = "middle";
  const { peak } = baselineOf(0, [0, 0], box.height, mode);
  const bottom = box.y + box.height;
  const x = box.x - 4;
  context.beginPath();
  context.moveTo(x + 0.5, bottom);
  context.lineTo(x + 0.5, bottom - peak);
  context.moveTo(x - 2, bottom - peak + 0.5);
  context.lineTo(x + 3, bottom - peak + 0.5);
  context.stroke();
  const ticks = mode === "overlay" ? niceTicks(0, top, 3).ticks.filter((t) => t > 0) : [top];
  for (const tick of ticks) context.fillText(formatTick(tick, 1), x - 3, bottom - (tick / top) * peak);
  context.save();
  context.translate(10, bottom - peak / 2);
  context.rotate(-Math.PI / 2);
  context.textAlign = "center";
  context.fillText("count", 0, 0);
  context.restore();
  context.restore();
}

/** Step ticks right of an offset chart, on their curves' baselines, under the title "step". */
function drawStepAxis(context, box, series, colors) {
  const steps = stepDomain(series);
  if (!steps) return;
  const { ticks, spacing } = niceTicks(steps[0], steps[1], 4);
  const shown = ticks.length ? ticks : [steps[0]];
  context.save();
  context.font = FONT;
  context.fillStyle = colors.label;
  context.textAlign = "left";
  context.textBaseline = "middle";
  for (const step of shown) {
    const { baseline } = baselineOf(step, steps, box.height, "offset");
    context.fillText(formatTick(step, spacing || 1), box.x + box.width + 4, box.y + baseline);
  }
  context.textAlign = "right";
  context.textBaseline = "top";
  context.fillText("step", box.x + box.width + MARGIN.right - 2, 0);
  context.restore();
}
