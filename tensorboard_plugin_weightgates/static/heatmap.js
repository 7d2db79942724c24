// Heatmap view: one kernel at one step, a panel per selected run with every direction, all
// gates (or attention heads) side by side in labelled bands, rows and columns named from the
// kernel's axes, with ticks where they fit and separators between the blocks of multi-axis
// rows. Cells are rasterised once per snapshot into an ImageData (one pixel per stored cell)
// and scaled onto the visible canvas, so redrawing on resize is one drawImage.

import {
  axesCaption,
  columnTicks,
  describeColumns,
  describeRows,
  rowSeparators,
  rowTickChars,
  rowTicks,
} from "./axes.js";
import {
  COLOR_SCALES,
  INF_COLOR,
  NAN_COLOR,
  colorOf,
  cssColor,
  legendLabels,
  limitText,
  rasterize,
} from "./colorscale.js";
import { h, imageCanvas, messagePanel, replaceChildren, selectField, sizeCanvas, stepSlider } from "./dom.js";
import { composeFigure, downloadPng } from "./figure.js";
import { formatValue, safeFilename } from "./format.js";
import { cellAt, heatmapHeight, isReduced, originalCell } from "./heatmap_layout.js";
import { gateRanges, kernelSlices, pickStep, stepAtOrBefore, unionSteps } from "./layers.js";
import { NORMALISATIONS, columnLimits, computeLimits, sharedLimit, usableLimit } from "./normalize.js";
import { themeColor } from "./theme.js";

const PLANES = [
  { id: "mean", label: "Block mean" },
  { id: "max_abs", label: "Block largest |x|" },
];

/** Performance mark set each time new heatmaps are drawn (bench/bench_first_paint.py reads it). */
export const PAINT_MARK = "weightgates:heatmap-paint";

export const DEFAULT_HEATMAP_SETTINGS = Object.freeze({
  normalisation: "kernel",
  fixedLimit: 1,
  scale: "diverging",
  plane: "mean",
  step: null,
});

export class HeatmapView {
  /** `onSettings(partial)` changes this view's settings (see DEFAULT_HEATMAP_SETTINGS). */
  constructor(onSettings) {
    this.onSettings = onSettings;
    this.generation = 0;
    this.drawn = [];
    this.steps = [];

    this.normalisation = selectField(
      "Normalisation",
      NORMALISATIONS,
      DEFAULT_HEATMAP_SETTINGS.normalisation,
      (normalisation) => onSettings({ normalisation }),
    );
    this.fixedLimit = h("input", {
      type: "number",
      class: "wg-fixed-limit",
      min: "0",
      step: "any",
      "aria-label": "Fixed range: largest |value|",
      title: "Colours span −L … +L",
      onchange: () => {
        const value = Number(this.fixedLimit.value);
        if (value > 0 && Number.isFinite(value)) onSettings({ fixedLimit: value });
      },
    });
    this.fixedField = h(
      "label",
      { class: "wg-field" },
      h("span", { class: "wg-field-label", text: "±" }),
      this.fixedLimit,
    );
    this.scale = selectField("Colour", COLOR_SCALES, DEFAULT_HEATMAP_SETTINGS.scale, (scale) => onSettings({ scale }));
    this.plane = selectField("Cells", PLANES, DEFAULT_HEATMAP_SETTINGS.plane, (plane) => onSettings({ plane }), {
      title: "Large kernels are stored in blocks: show each block's mean or its value of largest magnitude",
    });
    this.slider = stepSlider(
      () => this.steps,
      (step) => onSettings({ step }),
    );
    this.stepLabel = h("output", { class: "wg-step-label" });
    this.legend = h("div", { class: "wg-legend" });
    this.help = h("p", { class: "wg-help" });
    this.controls = h(
      "div",
      { class: "wg-controls" },
      this.normalisation,
      this.fixedField,
      this.scale,
      this.plane,
      h(
        "label",
        { class: "wg-field wg-step-field" },
        h("span", { class: "wg-field-label", text: "Step" }),
        this.slider,
        this.stepLabel,
      ),
    );
    this.panels = h("div", { class: "wg-panels wg-heatmap-panels" });
    this.tooltip = h("div", { class: "wg-tooltip", role: "tooltip", hidden: true });
    this.element = h(
      "div",
      { class: "wg-view wg-heatmap" },
      this.controls,
      h("div", { class: "wg-legend-row" }, this.legend, this.help),
      this.panels,
      this.tooltip,
    );
    this.resizeObserver = new ResizeObserver(() => this.redraw());
    this.resizeObserver.observe(this.panels);
  }

  /**
   * Shows `kernel` (`kind`) of `layer` for `runs`. `context`: `{api, index, runs, colors,
   * layer, kernel, kind, settings}`.
   */
  async update(context) {
    const generation = ++this.generation;
    const { api, index, runs, colors, layer, kernel, kind, settings } = context;
    const slices = kernelSlices(index, runs, layer.key, kernel, kind).filter((s) => s.steps.snapshot_steps.length);
    this.steps = unionSteps(slices.map((s) => s.steps.snapshot_steps));
    this.syncControls(settings);
    if (this.steps.length === 0) {
      this.showMessage(messagePanel("empty", `No snapshots of ${kernel} (${kind})`, ...noSnapshotHints(kind)));
      return;
    }
    const target = pickStep(this.steps, settings.step);
    this.slider.max = String(this.steps.length - 1);
    this.slider.value = String(this.steps.indexOf(target));
    this.stepLabel.textContent = `${target}`;
    this.panels.setAttribute("aria-busy", "true");

    const loaded = await Promise.all(
      slices.map(async (s) => {
        const step = stepAtOrBefore(s.steps.snapshot_steps, target);
        if (step === null) return { ...s, step, firstStep: s.steps.snapshot_steps[0] };
        try {
          return { ...s, step, snapshot: await api.snapshot(s.slice, step) };
        } catch (error) {
          return { ...s, step, error };
        }
      }),
    );
    if (generation !== this.generation) return;
    this.panels.removeAttribute("aria-busy");
    this.render(loaded, { colors, layer, kernel, kind, settings, target });
  }

  /** Moves the step slider `delta` snapshot steps (arrow keys outside the slider). */
  stepBy(delta) {
    if (this.steps.length < 2) return;
    const i = Math.min(this.steps.length - 1, Math.max(0, Number(this.slider.value) + delta));
    this.onSettings({ step: this.steps[i] });
  }

  syncControls(settings) {
    this.normalisation.select.value = settings.normalisation;
    this.fixedField.hidden = settings.normalisation !== "fixed";
    if (document.activeElement !== this.fixedLimit) this.fixedLimit.value = String(settings.fixedLimit);
    this.scale.select.value = settings.scale;
    this.plane.select.value = settings.plane;
    this.help.textContent = NORMALISATIONS.find((n) => n.id === settings.normalisation)?.help ?? "";
    this.slider.disabled = this.steps.length < 2;
  }

  showMessage(message) {
    this.drawn = [];
    this.legend.replaceChildren();
    replaceChildren(this.panels, message);
  }

  render(loaded, { colors, layer, kernel, kind, settings, target }) {
    const ok = loaded.filter((item) => item.snapshot);
    this.plane.hidden = !ok.some((item) => isReduced(item.snapshot.header));
    const plane = this.plane.hidden ? "mean" : settings.plane;
    const valuesOf = (item) => item.snapshot.planes[plane] ?? item.snapshot.planes.mean;
    const limits = computeLimits(
      ok.map((item) => ({
        values: valuesOf(item),
        rows: item.snapshot.header.rows,
        cols: item.snapshot.header.cols,
        boundaries: item.snapshot.header.gate_boundaries,
      })),
      settings.normalisation,
      settings.fixedLimit,
    );
    performance.mark("weightgates:rasterize-start");
    ok.forEach((item, i) => {
      item.limits = limits[i];
      item.values = valuesOf(item);
      item.raster = rasterCanvas(item.snapshot.header, item.values, limits[i], settings.scale);
    });
    performance.measure("weightgates:rasterize", "weightgates:rasterize-start");
    const shared = sharedLimit(limits);
    this.drawLegend(settings.scale, shared, ok.some((item) => hasFinite(item.snapshot.header)));

    const byRun = new Map();
    for (const item of loaded) {
      if (!byRun.has(item.run)) byRun.set(item.run, []);
      byRun.get(item.run).push(item);
    }
    this.drawn = [];
    const describe = { layer, kernel, kind, settings, target, shared };
    replaceChildren(
      this.panels,
      [...byRun].map(([run, items]) => this.panel(run, colors.get(run), items, describe)),
    );
    this.redraw();
    performance.mark(PAINT_MARK);
  }

  panel(run, color, items, describe) {
    const nan = items.reduce((sum, item) => sum + (item.snapshot?.header.nan_count ?? 0), 0);
    const inf = items.reduce((sum, item) => sum + (item.snapshot?.header.inf_count ?? 0), 0);
    const steps = [...new Set(items.map((item) => item.step).filter((step) => step !== null))];
    const multiDirection = describe.layer.bidirectional && describe.layer.directions.length > 1;
    const blocks = items.map((item) => this.directionBlock(run, item, multiDirection, describe));
    const article = h(
      "article",
      {
        class: "wg-panel",
        dataset: { run, nanCount: String(nan), infCount: String(inf) },
        style: { borderTopColor: color },
      },
      h(
        "header",
        { class: "wg-panel-header" },
        h("span", { class: "wg-swatch", style: { backgroundColor: color }, "aria-hidden": "true" }),
        h("span", { class: "wg-run-name", text: run }),
        h("span", {
          class: "wg-panel-step",
          text: steps.length ? `step ${steps.join(", ")}` : "",
          title: steps.some((s) => s !== describe.target)
            ? `No snapshot at step ${describe.target}: showing the latest before it`
            : null,
        }),
        nan
          ? h("span", { class: "wg-badge wg-badge-nan", text: `${nan} NaN`, title: "Cells holding NaN (drawn green)" })
          : null,
        inf
          ? h("span", { class: "wg-badge wg-badge-inf", text: `${inf} Inf`, title: "Cells holding ±Inf (drawn amber)" })
          : null,
        h("span", { class: "wg-spacer" }),
        h("button", {
          type: "button",
          class: "wg-icon-button",
          text: "PNG",
          title: "Download this panel as PNG",
          disabled: steps.length === 0,
          onclick: () => this.downloadPanel(run, items, blocks, describe, { nan, inf, steps }),
        }),
      ),
      blocks.map((block) => block.element),
    );
    return article;
  }

  directionBlock(run, item, multiDirection, describe) {
    const label = multiDirection ? h("div", { class: "wg-direction-label", text: item.direction }) : null;
    if (item.firstStep !== undefined) {
      return {
        element: h(
          "div",
          { class: "wg-direction" },
          label,
          h("p", {
            class: "wg-first-record",
            role: "note",
            text: `No record at or before step ${describe.target}: first record at step ${item.firstStep}`,
          }),
        ),
      };
    }
    if (item.error) {
      return {
        element: h(
          "div",
          { class: "wg-direction" },
          label,
          h("div", { class: "wg-panel-error", role: "alert", text: item.error.message }),
        ),
      };
    }
    const { header } = item.snapshot;
    const ranges = gateRanges(header.gates, header.gate_boundaries, "");
    const perGate = describe.settings.normalisation === "gate";
    const cells = header.rows * header.cols;
    const noFinite = !hasFinite(header);
    const scale = describe.settings.scale;
    const limitOf = (g) => limitText(item.limits[g], scale, (x) => formatValue(x, 3));
    const marks = ranges.map((range, g) => ({
      text: perGate && !noFinite ? `${range.label} ${limitOf(g)}`.trim() : range.label,
      start: range.start / header.cols,
      end: range.end / header.cols,
    }));
    const gateLabels = marks.every((mark) => !mark.text)
      ? null
      : h(
          "div",
          { class: "wg-gate-labels" },
          marks.map((mark, g) =>
            mark.text
              ? h("span", {
                  class: "wg-gate-label",
                  text: mark.text,
                  title: `${ranges[g].label || describe.kernel}: colours span ${limitText(item.limits[g], scale, formatValue)}`,
                  dataset: { gate: ranges[g].gate ?? "" },
                  style: { left: `${mark.start * 100}%`, width: `${(mark.end - mark.start) * 100}%` },
                })
              : null,
          ),
        );
    const canvas = h("canvas", {
      class: "wg-heatmap-canvas",
      dataset: {
        run,
        direction: item.direction,
        rows: String(header.rows),
        cols: String(header.cols),
        step: String(item.step),
      },
    });
    const wrap = h("div", { class: "wg-canvas-wrap" }, canvas);
    const scaleNote = noFinite
      ? h("span", { class: "wg-limit-note", text: "no finite values" })
      : describe.settings.normalisation === "kernel" && describe.shared === null
        ? h("span", { class: "wg-limit-note", text: limitOf(0) })
        : null;
    const entry = item.entry;
    const axes = entry.axes ?? header.axes;
    const rowTickBox = h("div", {
      class: "wg-row-ticks",
      "aria-hidden": "true",
      style: { width: `${rowTickChars(axes, header.shape) * 6 + 2}px` },
    });
    const columnTickBox = h("div", { class: "wg-column-ticks", "aria-hidden": "true" });
    const heads = header.gates.some((gate) => /^head_\d+$/.test(gate ?? ""));
    const drawn = { run, item, canvas, wrap, describe, axes, rowTickBox, columnTickBox };
    this.drawn.push(drawn);
    canvas.addEventListener("mousemove", (event) => this.hover(drawn, event));
    canvas.addEventListener("mouseleave", () => {
      this.tooltip.hidden = true;
    });
    return {
      element: h(
        "div",
        { class: `wg-direction${heads ? " wg-heads" : ""}` },
        label || scaleNote ? h("div", { class: "wg-direction-head" }, label, scaleNote) : null,
        h(
          "div",
          { class: "wg-heatmap-grid" },
          h("div"),
          gateLabels ?? h("div"),
          rowTickBox,
          wrap,
          h("div"),
          columnTickBox,
        ),
        h("div", { class: "wg-axes-caption", text: axesCaption(axes, header.shape, header.gates) }),
      ),
      canvas,
      label: multiDirection ? item.direction : "",
      marks,
    };
  }

  /** Redraws every heatmap at its container's current size from its raster. */
  redraw() {
    const separator = themeColor("--wg-separator", "rgba(33, 33, 33, 0.9)");
    for (const drawn of this.drawn) {
      const { item, canvas, wrap, axes } = drawn;
      const width = wrap.clientWidth;
      if (width === 0) continue;
      const { header } = item.snapshot;
      const { rows, cols, gate_boundaries: boundaries } = header;
      const [blockRows, blockCols] = header.block ?? [1, 1];
      const height = heatmapHeight(rows, cols, width);
      const context = sizeCanvas(canvas, width, height);
      context.imageSmoothingEnabled = false;
      context.drawImage(item.raster, 0, 0, width, height);
      context.fillStyle = separator;
      for (const boundary of boundaries.slice(1, -1)) {
        context.fillRect(Math.round((boundary / cols) * width) - 0.5, 0, 1, height);
      }
      // Blocks of multi-axis rows (a window offset's channels): thin lines, the outer axis solid.
      for (const { y, level } of rowSeparators(axes, header.shape, rows, blockRows, height)) {
        context.globalAlpha = level === 0 ? 0.9 : 0.45;
        context.fillRect(0, Math.round((y / rows) * height) - 0.5, width, 1);
      }
      context.globalAlpha = 1;
      placeTicks(drawn.rowTickBox, rowTicks(axes, header.shape, rows, blockRows, height), "top", "y");
      placeTicks(
        drawn.columnTickBox,
        columnTicks(item.entry.gate_boundaries, boundaries, cols, blockCols, width),
        "left",
        "x",
      );
      drawn.rowTickBox.style.height = `${height}px`;
    }
  }

  hover(drawn, event) {
    const { item, canvas } = drawn;
    const { header } = item.snapshot;
    const rect = canvas.getBoundingClientRect();
    const cell = cellAt(
      event.clientX - rect.left,
      event.clientY - rect.top,
      rect.width,
      rect.height,
      header.rows,
      header.cols,
    );
    if (!cell) {
      this.tooltip.hidden = true;
      return;
    }
    const entry = item.entry;
    const original = originalCell(header, entry.gate_boundaries, cell.row, cell.col);
    const gate = header.gates[original.gateIndex];
    const value = item.values[cell.row * header.cols + cell.col];
    const reduced = isReduced(header);
    const rowText = describeRows(drawn.axes, header.shape, original.rows);
    const columnText = describeColumns(drawn.axes, gate, original.units);
    const lines = [
      ["Run", drawn.run],
      drawn.describe.layer.bidirectional ? ["Direction", item.direction] : null,
      rowText ? ["Row", rowText] : null,
      ["Column", columnText],
      ["Step", String(item.step)],
      [
        reduced ? (this.plane.select.value === "max_abs" ? "Block largest |x|" : "Block mean") : "Value",
        formatValue(value),
      ],
    ];
    if (reduced) {
      const other = this.plane.select.value === "max_abs" ? "mean" : "max_abs";
      lines.push([
        other === "mean" ? "Block mean" : "Block largest |x|",
        formatValue(item.snapshot.planes[other][cell.row * header.cols + cell.col]),
      ]);
    }
    replaceChildren(
      this.tooltip,
      h("span", {
        class: "wg-tooltip-swatch",
        style: {
          backgroundColor: cssColor(
            colorOf(value, usableLimit(item.limits[original.gateIndex]), drawn.describe.settings.scale),
          ),
        },
      }),
      h(
        "dl",
        {},
        lines.filter(Boolean).map(([term, text]) => [h("dt", { text: term }), h("dd", { text })]),
      ),
    );
    Object.assign(this.tooltip.dataset, {
      run: drawn.run,
      direction: item.direction,
      row: String(cell.row),
      col: String(cell.col),
      gate: gate ?? "",
      rowText: rowText ?? "",
      columnText,
      value: String(value),
    });
    this.tooltip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - this.tooltip.offsetWidth - 4);
    const y =
      event.clientY + 14 + this.tooltip.offsetHeight > window.innerHeight
        ? event.clientY - this.tooltip.offsetHeight - 8
        : event.clientY + 14;
    this.tooltip.style.left = `${Math.max(4, x)}px`;
    this.tooltip.style.top = `${Math.max(4, y)}px`;
  }

  drawLegend(scale, shared, finite) {
    const canvas = legendCanvas(scale, shared, this.normalisation.select.value, finite);
    replaceChildren(
      this.legend,
      canvas,
      h(
        "span",
        { class: "wg-legend-key" },
        h("span", { class: "wg-swatch", style: { backgroundColor: cssColor(NAN_COLOR) } }),
        "NaN",
      ),
      h(
        "span",
        { class: "wg-legend-key" },
        h("span", { class: "wg-swatch", style: { backgroundColor: cssColor(INF_COLOR) } }),
        "±Inf",
      ),
    );
    this.legendCanvas = canvas;
  }

  downloadPanel(run, items, blocks, describe, { nan, inf, steps }) {
    const { layer, kernel, kind, settings } = describe;
    const norm = NORMALISATIONS.find((n) => n.id === settings.normalisation)?.label ?? "";
    const figure = composeFigure({
      title: `${run} · ${layer.layer} (${layer.layer_type}) · ${kernel} · ${kind}`,
      subtitle: `step ${steps.join(", ")} · ${norm}${nan ? ` · ${nan} NaN` : ""}${inf ? ` · ${inf} Inf` : ""}`,
      items: blocks
        .filter((block) => block.canvas)
        .map((block) => ({ label: block.label, image: block.canvas, marks: block.marks })),
      legend: this.legendCanvas,
    });
    downloadPng(figure, safeFilename(`${run}_${layer.layer}_${kernel}_${kind}_step${steps.join("-")}`));
  }
}

/** An offscreen canvas holding one pixel per stored cell. */
function rasterCanvas(header, values, gateLimits, scale) {
  const { rows, cols } = header;
  const limits = columnLimits(gateLimits, header.gate_boundaries, cols);
  return imageCanvas(rows, cols, (data) => rasterize(data, values, rows, cols, limits, scale));
}

/** Whether a snapshot holds a finite cell. */
function hasFinite(header) {
  const cells = header.rows * header.cols;
  return cells > 0 && header.nan_count + header.inf_count < cells;
}

/**
 * What to do when a kernel has no snapshot: weights come from the callback's snapshot_freq or
 * log_weights; gradients from gradients= with snapshot_freq, or log_gradients (both snapshot
 * by default in a custom loop).
 */
function noSnapshotHints(kind) {
  const custom =
    kind === "gradients"
      ? "In a custom loop, log_gradients(model, pairs, step, writer) stores them unless snapshot=False."
      : "In a custom loop, log_weights(model, step, writer) stores them unless snapshot=False.";
  return [
    "WeightGatesCallback stores heatmap snapshots at its snapshot_freq (every epoch by default; snapshot_freq=None turns them off).",
    custom,
    "Per-gate statistics are in the Histograms and Health views.",
  ];
}

/** Ticks `[{y or x, text}]` (fractions) as labels in `box`, positioned along `side`. */
function placeTicks(box, ticks, side, key) {
  replaceChildren(
    box,
    ticks.map((tick) => h("span", { class: "wg-tick", text: tick.text, style: { [side]: `${tick[key] * 100}%` } })),
  );
}

/** The colour bar with its end labels: numbers when one range is shared, else words. */
function legendCanvas(scale, shared, normalisation, finite) {
  const width = 260;
  const height = 30;
  const canvas = document.createElement("canvas");
  canvas.className = "wg-legend-bar";
  const context = sizeCanvas(canvas, width, height);
  const bar = { x: 6, y: 2, width: width - 12, height: 10 };
  for (let i = 0; i < bar.width; i++) {
    const t = i / (bar.width - 1);
    context.fillStyle = cssColor(scale === "magnitude" ? colorOf(t, 1, scale) : colorOf(2 * t - 1, 1, scale));
    context.fillRect(bar.x + i, bar.y, 1, bar.height);
  }
  context.strokeStyle = themeColor("--wg-border", "#bdbdbd");
  context.strokeRect(bar.x + 0.5, bar.y + 0.5, bar.width - 1, bar.height - 1);
  const labels = legendLabels(scale, shared, normalisation, finite, (x) => formatValue(x, 3));
  context.font = "11px Roboto, 'Helvetica Neue', Arial, sans-serif";
  context.fillStyle = themeColor("--wg-muted", "#616161");
  context.textBaseline = "top";
  for (const [text, align] of labels) {
    context.textAlign = align;
    const x = align === "left" ? bar.x : align === "right" ? bar.x + bar.width : bar.x + bar.width / 2;
    context.fillText(text, x, bar.y + bar.height + 3);
  }
  return canvas;
}
