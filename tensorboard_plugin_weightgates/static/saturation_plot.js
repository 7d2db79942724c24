// One saturation plot (saturation_layout.js says what it shows): a square canvas with the
// guides, the axis titles and a dot per unit of every run, and its hover.

import { h, sizeCanvas } from "./dom.js";
import { formatValue } from "./format.js";
import { CORNERS, axisTitles, dotPosition, dotsNear, unitList } from "./saturation_layout.js";

const FONT = "11px Roboto, 'Helvetica Neue', Arial, sans-serif";
const MAX_SIZE = 280;
const MARGIN = { left: 44, right: 10, top: 10, bottom: 38 };
const DOT_RADIUS = 3;

export class SaturationPlot {
  /**
   * `name`, `label`, `saturation` (`{type, low, high}`), `dots` (saturationDots), `colors`
   * (run -> CSS colour), `describe` (`{layer, direction}` for the hover), `tooltip` (a
   * Tooltip), `theme()` the theme's colours.
   */
  constructor({ name, label, saturation, dots, colors, describe, tooltip, theme }) {
    Object.assign(this, { name, saturation, dots, colors, describe, tooltip, theme });
    this.canvas = h("canvas", {
      class: "wg-saturation-canvas",
      dataset: { name, dots: String(dots.length) },
      role: "img",
      "aria-label": `Saturation of the ${label}: ${dots.length} units`,
    });
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => {
      this.highlight = null;
      this.draw();
      this.tooltip.hide();
    });
    this.element = h(
      "figure",
      { class: "wg-saturation-plot", dataset: { name } },
      h("figcaption", { class: "wg-grid-head", text: label }),
      h("div", { class: "wg-saturation-wrap" }, this.canvas),
    );
  }

  /**
   * Redraws at the container's width (square, at most MAX_SIZE pixels); the plot box, in CSS
   * pixels of the canvas, goes in its `data-box` (where a fraction's dot is, for automation).
   */
  draw() {
    const width = this.canvas.parentElement?.clientWidth ?? 0;
    if (width === 0) return;
    const size = Math.min(width, MAX_SIZE);
    const context = sizeCanvas(this.canvas, size, size);
    const colors = this.theme();
    const side = Math.max(1, Math.min(size - MARGIN.left - MARGIN.right, size - MARGIN.top - MARGIN.bottom));
    const box = { x: MARGIN.left, y: MARGIN.top, width: side, height: side };
    this.box = box;
    this.canvas.dataset.box = JSON.stringify(box);
    context.clearRect(0, 0, size, size);
    context.font = FONT;
    drawFrame(context, box, colors, axisTitles(this.saturation));
    context.save();
    context.globalAlpha = 0.75;
    for (const dot of this.dots) {
      const { x, y } = dotPosition(dot.right, dot.left, box);
      context.fillStyle = this.colors.get(dot.run) ?? colors.muted;
      context.beginPath();
      context.arc(x, y, DOT_RADIUS, 0, 2 * Math.PI);
      context.fill();
    }
    context.restore();
    if (this.highlight) {
      const { x, y } = dotPosition(this.highlight.right, this.highlight.left, box);
      context.strokeStyle = colors.fg;
      context.lineWidth = 1.5;
      context.beginPath();
      context.arc(x, y, DOT_RADIUS + 3, 0, 2 * Math.PI);
      context.stroke();
    }
  }

  hover(event) {
    if (!this.box) return;
    const rect = this.canvas.getBoundingClientRect();
    const near = dotsNear(this.dots, this.box, event.clientX - rect.left, event.clientY - rect.top);
    const dot = near[0] ?? null;
    if (dot !== this.highlight) {
      this.highlight = dot;
      this.draw();
    }
    if (!dot) {
      this.tooltip.hide();
      return;
    }
    const { layer, multiDirection } = this.describe;
    this.tooltip.show(
      event,
      [
        ["Run", dot.run],
        ["Layer", layer],
        multiDirection ? ["Direction", dot.direction] : null,
        ["Gate", this.name],
        ["Unit", String(dot.unit)],
        [`Right-saturated (> ${this.saturation.high})`, formatValue(dot.right, 4)],
        [`Left-saturated (< ${this.saturation.low})`, formatValue(dot.left, 4)],
        ["Mean", formatValue(dot.mean, 4)],
        ["Step", String(dot.step)],
        near.length > 1 ? ["Also here", unitList(near.slice(1))] : null,
      ],
      { color: this.colors.get(dot.run), dataset: { run: dot.run, name: this.name, unit: String(dot.unit) } },
    );
  }
}

/** The box, its ticks, the diagonal bound, the corner labels and the axis titles. */
function drawFrame(context, box, colors, titles) {
  const { x, y, width, height } = box;
  context.save();
  context.fillStyle = colors.panel;
  context.fillRect(x, y, width, height);
  context.strokeStyle = colors.border;
  context.lineWidth = 1;
  for (const f of [0.25, 0.5, 0.75]) {
    context.beginPath();
    context.moveTo(x + f * width, y);
    context.lineTo(x + f * width, y + height);
    context.moveTo(x, y + f * height);
    context.lineTo(x + width, y + f * height);
    context.stroke();
  }
  context.strokeStyle = colors.muted;
  context.strokeRect(x + 0.5, y + 0.5, width - 1, height - 1);
  context.setLineDash([4, 3]);
  context.beginPath();
  context.moveTo(x, y);
  context.lineTo(x + width, y + height);
  context.stroke();
  context.setLineDash([]);

  context.fillStyle = colors.muted;
  context.textBaseline = "top";
  for (const f of [0, 0.5, 1]) {
    context.textAlign = f === 0 ? "left" : f === 1 ? "right" : "center";
    context.fillText(String(f), x + f * width, y + height + 3);
  }
  context.textAlign = "right";
  context.textBaseline = "middle";
  for (const f of [0, 0.5, 1]) context.fillText(String(f), x - 4, y + (1 - f) * height);

  context.globalAlpha = 0.8;
  for (const corner of CORNERS) {
    context.textAlign = corner.align;
    context.textBaseline = corner.y === 1 ? "top" : "bottom";
    const cx = x + corner.x * width + (corner.x === 1 ? -4 : 4);
    const cy = y + (1 - corner.y) * height + (corner.y === 1 ? 3 : -3);
    context.fillText(corner.label, cx, cy);
  }
  context.globalAlpha = 1;

  context.fillStyle = colors.fg;
  context.textAlign = "center";
  context.textBaseline = "bottom";
  context.fillText(titles.x, x + width / 2, y + height + 34);
  context.translate(12, y + height / 2);
  context.rotate(-Math.PI / 2);
  context.textBaseline = "middle";
  context.fillText(titles.y, 0, 0);
  context.restore();
}
