// Histograms view: per direction and gate, the histograms over steps of every selected run,
// overlaid in the runs' colours, as a ridgeline ("offset") or on one baseline ("overlay").

import { FONT, LABEL_COLOR, drawAxes, plotBox } from "./chart.js";
import { h, ignoreOutliersField, replaceChildren, segmented, sizeCanvas } from "./dom.js";
import { composeFigure, downloadPng, runLegend } from "./figure.js";
import { formatTick, niceTicks, safeFilename } from "./format.js";
import {
  HISTOGRAM_MODES,
  X_AXIS_MODES,
  baselineOf,
  histogramSeries,
  offScaleCount,
  ridgelineLayout,
  stepDomain,
  valueDomain,
} from "./histogram_layout.js";
import { StatsLoader, byDirection, loadErrors, statsByGate } from "./stats_loader.js";

export const DEFAULT_HISTOGRAM_SETTINGS = Object.freeze({ mode: "offset", xAxis: "shared", ignoreOutliers: true });

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
    const gates = byGate.map(({ gate }) => gate);
    const perGate = byGate.map(({ runs }) =>
      runs.map(({ run, stats }) => ({ ...histogramSeries(stats), color: colors.get(run), run })),
    );
    const domainOptions = { ignoreOutliers: settings.ignoreOutliers };
    const shared = valueDomain(perGate.flat(), domainOptions);
    const figures = gates.map((gate, g) => {
      const canvas = h("canvas", { class: "wg-histogram-canvas", dataset: { gate: gate ?? "" } });
      const title = gate ?? kernel;
      const xDomain = settings.xAxis === "shared" ? shared : valueDomain(perGate[g], domainOptions);
      const offScale = xDomain ? offScaleCount(perGate[g], xDomain) : 0;
      const chart = { canvas, title, series: perGate[g], mode: settings.mode, xDomain };
      this.charts.push(chart);
      return h(
        "figure",
        { class: "wg-chart" },
        h(
          "figcaption",
          {},
          title,
          offScale
            ? h("span", {
                class: "wg-off-scale",
                text: ` · ${offScale} off-scale`,
                title: `${offScale} histograms (run and step) reach beyond this axis and are clipped; untick “Ignore outliers” to see them whole`,
              })
            : null,
        ),
        canvas,
      );
    });
    const chartsOfSection = this.charts.slice(this.charts.length - figures.length);
    return h(
      "section",
      { class: "wg-section", dataset: { direction: describe.direction } },
      h(
        "header",
        { class: "wg-section-header" },
        h("h3", { text: describe.multiDirection ? describe.direction : "Gates" }),
        h("span", { class: "wg-spacer" }),
        h("button", {
          type: "button",
          class: "wg-icon-button",
          text: "PNG",
          title: "Download these histograms as PNG",
          onclick: () => this.download(chartsOfSection, describe),
        }),
      ),
      loadErrors(items),
      h("div", { class: "wg-chart-grid" }, figures),
    );
  }

  redraw() {
    for (const chart of this.charts) {
      const width = chart.canvas.parentElement?.clientWidth ?? 0;
      if (width > 0) drawHistogramChart(chart.canvas, width, CHART_HEIGHT, chart);
    }
  }

  download(charts, { layer, kernel, kind, direction, colors }) {
    const runs = [...new Set(charts.flatMap((chart) => chart.series.map((s) => s.run)))];
    const figure = composeFigure({
      title: `${layer.layer} (${layer.layer_type}) · ${direction} · ${kernel} · ${kind} histograms`,
      items: charts.map((chart) => ({ label: chart.title, image: chart.canvas })),
      columns: Math.min(charts.length, 2),
      legend: runLegend(runs, colors),
    });
    downloadPng(figure, safeFilename(`${layer.layer}_${direction}_${kernel}_${kind}_histograms`));
  }
}

function drawHistogramChart(canvas, width, height, { series, mode, xDomain }) {
  const context = sizeCanvas(canvas, width, height);
  context.clearRect(0, 0, width, height);
  const box = plotBox(width, height, { left: 8, right: mode === "offset" ? 44 : 8, top: 6, bottom: 18 });
  if (!xDomain || series.length === 0) {
    context.font = FONT;
    context.fillStyle = LABEL_COLOR;
    context.fillText("no finite values", box.x + 4, box.y + 14);
    return;
  }
  drawAxes(context, box, xDomain, null);
  const curves = ridgelineLayout(series, { width: box.width, height: box.height, mode, xDomain });
  const fillUnder = mode === "offset" && series.length === 1;
  context.save();
  context.beginPath();
  context.rect(box.x, 0, box.width, box.y + box.height);
  context.clip();
  context.translate(box.x, box.y);
  context.lineWidth = 1;
  for (const curve of curves) {
    const color = series[curve.series].color;
    context.beginPath();
    curve.points.forEach(([x, y], i) => (i === 0 ? context.moveTo(x, y) : context.lineTo(x, y)));
    if (fillUnder) {
      context.globalAlpha = 1;
      context.fillStyle = "#ffffff";
      context.fill();
    }
    context.globalAlpha = curve.opacity;
    context.strokeStyle = color;
    context.stroke();
  }
  context.restore();
  if (mode === "offset") drawStepAxis(context, box, series, mode);
}

function drawStepAxis(context, box, series, mode) {
  const steps = stepDomain(series);
  if (!steps) return;
  const { ticks, spacing } = niceTicks(steps[0], steps[1], 4);
  const shown = ticks.length ? ticks : [steps[0]];
  context.save();
  context.font = FONT;
  context.fillStyle = LABEL_COLOR;
  context.textAlign = "left";
  context.textBaseline = "middle";
  for (const step of shown) {
    const { baseline } = baselineOf(step, steps, box.height, mode);
    context.fillText(formatTick(step, spacing || 1), box.x + box.width + 4, box.y + baseline);
  }
  context.restore();
}
