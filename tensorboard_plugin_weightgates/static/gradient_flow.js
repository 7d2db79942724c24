// The gradient-flow chart (gradient_flow_layout.js says what it shows): ‖dL/dh_t‖ against
// timestep t on a log y axis, one line per series, and its hover.

import { h, sizeCanvas } from "./dom.js";
import { formatTick, formatValue, niceTicks } from "./format.js";
import { decadeLabel, logDomain, logTicks, logY, timestepAt } from "./gradient_flow_layout.js";

const FONT = "11px Roboto, 'Helvetica Neue', Arial, sans-serif";
const HEIGHT = 240;
const MARGIN = { left: 56, right: 12, top: 10, bottom: 36 };
const MAX_TOOLTIP_LINES = 12;

export class GradientFlowChart {
  /**
   * `series` (`{label, color, xs, ys}` from stepSeries or runSeries), `timesteps`, `title`
   * (what the hover names: run or step), `tooltip` a Tooltip, `theme()` the theme's colours.
   */
  constructor({ series, timesteps, title, tooltip, theme }) {
    Object.assign(this, { series, timesteps, title, tooltip, theme });
    this.domain = logDomain(series);
    this.canvas = h("canvas", {
      class: "wg-flow-canvas",
      dataset: { scale: "log", series: String(series.length), timesteps: String(timesteps) },
      role: "img",
      "aria-label": `Norm of dL/dh_t against timestep, log scale, ${series.length} lines`,
    });
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => {
      this.hoverT = null;
      this.draw();
      this.tooltip.hide();
    });
    this.element = h("div", { class: "wg-flow-wrap" }, this.canvas);
  }

  draw() {
    const width = this.element.clientWidth;
    if (width === 0) return;
    const context = sizeCanvas(this.canvas, width, HEIGHT);
    const colors = this.theme();
    const box = {
      x: MARGIN.left,
      y: MARGIN.top,
      width: Math.max(1, width - MARGIN.left - MARGIN.right),
      height: HEIGHT - MARGIN.top - MARGIN.bottom,
    };
    this.box = box;
    context.clearRect(0, 0, width, HEIGHT);
    context.font = FONT;
    const xOf = (t) => box.x + (this.timesteps > 1 ? t / (this.timesteps - 1) : 0.5) * box.width;
    context.strokeStyle = colors.border;
    context.fillStyle = colors.muted;
    context.lineWidth = 1;
    context.textAlign = "right";
    context.textBaseline = "middle";
    if (this.domain) {
      for (const tick of logTicks(this.domain)) {
        const y = Math.round(box.y + logY(tick, this.domain, box.height)) + 0.5;
        context.beginPath();
        context.moveTo(box.x, y);
        context.lineTo(box.x + box.width, y);
        context.stroke();
        context.fillText(decadeLabel(tick), box.x - 4, y);
      }
    }
    const { ticks, spacing } = niceTicks(0, Math.max(0, this.timesteps - 1), 8);
    context.textAlign = "center";
    context.textBaseline = "top";
    for (const t of ticks.filter(Number.isInteger)) context.fillText(formatTick(t, spacing || 1), xOf(t), box.y + box.height + 4);
    context.strokeStyle = colors.muted;
    context.strokeRect(box.x + 0.5, box.y + 0.5, box.width - 1, box.height - 1);
    context.fillStyle = colors.fg;
    context.textBaseline = "bottom";
    context.fillText("timestep t", box.x + box.width / 2, HEIGHT - 2);
    context.save();
    context.translate(12, box.y + box.height / 2);
    context.rotate(-Math.PI / 2);
    context.textBaseline = "middle";
    context.fillText("‖dL/dh_t‖ (log scale)", 0, 0);
    context.restore();
    if (!this.domain) return;

    context.save();
    context.beginPath();
    context.rect(box.x, box.y, box.width, box.height);
    context.clip();
    context.lineWidth = 1.5;
    context.lineJoin = "round";
    for (const { color, xs, ys } of this.series) {
      context.strokeStyle = color;
      context.fillStyle = color;
      context.beginPath();
      let drawing = false;
      ys.forEach((y, i) => {
        if (y === null) {
          drawing = false;
          return;
        }
        const px = xOf(xs[i]);
        const py = box.y + logY(y, this.domain, box.height);
        const isolated = (i === 0 || ys[i - 1] === null) && (i === ys.length - 1 || ys[i + 1] === null);
        if (isolated) {
          context.moveTo(px + 2, py);
          context.arc(px, py, 2, 0, 2 * Math.PI);
        } else if (drawing) context.lineTo(px, py);
        else context.moveTo(px, py);
        drawing = true;
      });
      context.stroke();
    }
    if (this.hoverT !== null && this.hoverT !== undefined) {
      context.strokeStyle = colors.muted;
      context.setLineDash([3, 3]);
      context.beginPath();
      context.moveTo(Math.round(xOf(this.hoverT)) + 0.5, box.y);
      context.lineTo(Math.round(xOf(this.hoverT)) + 0.5, box.y + box.height);
      context.stroke();
    }
    context.restore();
  }

  hover(event) {
    if (!this.box) return;
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left - this.box.x;
    if (x < 0 || x > this.box.width) {
      this.tooltip.hide();
      return;
    }
    const t = timestepAt(x, this.box.width, this.timesteps);
    if (t !== this.hoverT) {
      this.hoverT = t;
      this.draw();
    }
    const shown = this.series.length > MAX_TOOLTIP_LINES ? thin(this.series, MAX_TOOLTIP_LINES) : this.series;
    const lines = shown.map((s) => [s.label, formatValue(s.ys[s.xs.indexOf(t)] ?? null, 4)]);
    if (shown.length < this.series.length) lines.push(["…", `${this.series.length - shown.length} more lines`]);
    this.tooltip.show(event, lines, { title: `${this.title} · timestep ${t} · ‖dL/dh_t‖`, dataset: { timestep: String(t) } });
  }
}

/** `count` entries of `list` spread evenly, the first and the last included. */
function thin(list, count) {
  const picked = [];
  for (let i = 0; i < count; i++) picked.push(list[Math.round((i * (list.length - 1)) / (count - 1))]);
  return [...new Set(picked)];
}
