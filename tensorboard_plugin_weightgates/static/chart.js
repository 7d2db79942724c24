// Drawing of small canvas charts: axes with ticks, and line series over steps. The data
// layout (ticks, domains) comes from pure functions; this module only paints.

import { formatTick, niceTicks } from "./format.js";
import { themeColor } from "./theme.js";

export const FONT = "11px Roboto, 'Helvetica Neue', Arial, sans-serif";

/** The theme's chart colours (style.css custom properties), read when a chart is drawn. */
export function chartColors() {
  return {
    axis: themeColor("--wg-axis", "#9e9e9e"),
    grid: themeColor("--wg-grid", "#eeeeee"),
    label: themeColor("--wg-muted", "#616161"),
    text: themeColor("--wg-fg", "#212121"),
    panel: themeColor("--wg-panel", "#ffffff"),
  };
}

/** Plot box inside a `width x height` chart, leaving room for tick labels. */
export function plotBox(width, height, { left = 44, right = 8, top = 8, bottom = 18 } = {}) {
  return { x: left, y: top, width: Math.max(1, width - left - right), height: Math.max(1, height - top - bottom) };
}

/**
 * Draws x ticks under the box and, if `yDomain`, y ticks with grid lines left of it; `yValues`
 * replaces the y ticks (a constant series gets one tick, at its value).
 */
export function drawAxes(context, box, xDomain, yDomain, { xTicks = 4, yTicks = 3, yValues = null } = {}) {
  const colors = chartColors();
  context.save();
  context.font = FONT;
  context.fillStyle = colors.label;
  context.strokeStyle = colors.grid;
  context.lineWidth = 1;
  if (yDomain) {
    const { ticks, spacing } = yValues
      ? { ticks: yValues, spacing: Math.abs(yValues[0]) / 10 || 1 }
      : niceTicks(yDomain[0], yDomain[1], yTicks);
    context.textAlign = "right";
    context.textBaseline = "middle";
    for (const tick of ticks) {
      const y = box.y + box.height - ((tick - yDomain[0]) / (yDomain[1] - yDomain[0])) * box.height;
      context.beginPath();
      context.moveTo(box.x, Math.round(y) + 0.5);
      context.lineTo(box.x + box.width, Math.round(y) + 0.5);
      context.stroke();
      context.fillText(formatTick(tick, spacing), box.x - 4, y);
    }
  }
  if (xDomain) {
    const { ticks, spacing } = niceTicks(xDomain[0], xDomain[1], xTicks);
    context.textAlign = "center";
    context.textBaseline = "top";
    for (const tick of ticks) {
      const x = box.x + ((tick - xDomain[0]) / (xDomain[1] - xDomain[0] || 1)) * box.width;
      context.fillText(formatTick(tick, spacing), x, box.y + box.height + 4);
    }
  }
  context.strokeStyle = colors.axis;
  context.beginPath();
  context.moveTo(box.x, box.y + box.height + 0.5);
  context.lineTo(box.x + box.width, box.y + box.height + 0.5);
  context.stroke();
  context.restore();
}

/**
 * Draws `series` (`{color, xs, ys}`, ys may hold null for gaps) as lines in `box`; a point
 * without neighbours is drawn as a dot.
 */
export function drawLines(context, box, series, xDomain, yDomain) {
  const xOf = (x) => box.x + ((x - xDomain[0]) / (xDomain[1] - xDomain[0] || 1)) * box.width;
  const yOf = (y) => box.y + box.height - ((y - yDomain[0]) / (yDomain[1] - yDomain[0])) * box.height;
  context.save();
  context.beginPath();
  context.rect(box.x, box.y - 2, box.width, box.height + 4);
  context.clip();
  context.lineWidth = 1.5;
  context.lineJoin = "round";
  for (const { color, xs, ys } of series) {
    context.strokeStyle = color;
    context.fillStyle = color;
    context.beginPath();
    let drawing = false;
    ys.forEach((y, i) => {
      if (y === null || !Number.isFinite(y)) {
        drawing = false;
        return;
      }
      const isolated = (i === 0 || ys[i - 1] === null) && (i === ys.length - 1 || ys[i + 1] === null);
      if (isolated) {
        context.moveTo(xOf(xs[i]) + 2, yOf(y));
        context.arc(xOf(xs[i]), yOf(y), 2, 0, 2 * Math.PI);
      } else if (drawing) context.lineTo(xOf(xs[i]), yOf(y));
      else context.moveTo(xOf(xs[i]), yOf(y));
      drawing = true;
    });
    context.stroke();
  }
  context.restore();
}
