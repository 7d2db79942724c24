// Figures for download: a panel's canvases composed with their titles and labels into one
// PNG. Canvas text is drawn here because the on-screen labels are DOM elements.

import { canvasScale, download } from "./dom.js";
import { themeColor } from "./theme.js";

const FONT = "Roboto, 'Helvetica Neue', Arial, sans-serif";

/**
 * Composes a figure. `items` are `{label, image, marks}`: `image` a canvas, `label` a caption
 * above it, `marks` optional `[{text, start, end}]` (fractions of the image's width) written
 * between caption and image (gate names). Items are laid out `columns` per row, at the
 * images' own pixel size; `legend` (a canvas) goes at the bottom.
 */
export function composeFigure({ title, subtitle = "", items, columns = 1, legend = null }) {
  const scale = canvasScale();
  const TEXT = themeColor("--wg-fg", "#212121");
  const MUTED = themeColor("--wg-muted", "#616161");
  const pad = Math.round(12 * scale);
  const line = Math.round(18 * scale);
  const cellWidth = Math.max(1, ...items.map((item) => item.image.width));
  const cellHeights = items.map(
    (item) => (item.label ? line : 0) + (item.marks?.length ? line : 0) + item.image.height + pad,
  );
  const rows = [];
  for (let i = 0; i < items.length; i += columns) {
    rows.push(Math.max(...cellHeights.slice(i, i + columns)));
  }
  const header = line * (subtitle ? 2 : 1) + pad;
  const width = pad * 2 + columns * cellWidth + (columns - 1) * pad;
  const legendHeight = legend ? legend.height + pad : 0;
  const canvas = document.createElement("canvas");
  canvas.width = Math.min(width, 16384);
  canvas.height = Math.min(pad + header + rows.reduce((a, b) => a + b, 0) + legendHeight, 16384);
  const context = canvas.getContext("2d");
  context.fillStyle = themeColor("--wg-panel", "#ffffff");
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.textBaseline = "top";

  context.fillStyle = TEXT;
  context.font = `500 ${Math.round(14 * scale)}px ${FONT}`;
  context.fillText(title, pad, pad);
  if (subtitle) {
    context.fillStyle = MUTED;
    context.font = `${Math.round(12 * scale)}px ${FONT}`;
    context.fillText(subtitle, pad, pad + line);
  }

  let y = pad + header;
  rows.forEach((rowHeight, r) => {
    items.slice(r * columns, (r + 1) * columns).forEach((item, c) => {
      const x = pad + c * (cellWidth + pad);
      let top = y;
      context.font = `500 ${Math.round(12 * scale)}px ${FONT}`;
      context.fillStyle = TEXT;
      if (item.label) {
        context.fillText(item.label, x, top);
        top += line;
      }
      if (item.marks?.length) {
        context.font = `${Math.round(11 * scale)}px ${FONT}`;
        context.fillStyle = MUTED;
        for (const mark of item.marks) {
          const left = x + mark.start * item.image.width;
          const available = (mark.end - mark.start) * item.image.width;
          context.save();
          context.beginPath();
          context.rect(left, top, available, line);
          context.clip();
          context.fillText(mark.text, left + 2 * scale, top + 2 * scale);
          context.restore();
        }
        top += line;
      }
      context.drawImage(item.image, x, top);
    });
    y += rowHeight;
  });
  if (legend) context.drawImage(legend, pad, y);
  return canvas;
}

/** A canvas listing `runs` with a swatch of each one's colour (`colors`: run → CSS colour). */
export function runLegend(runs, colors) {
  const scale = canvasScale();
  const TEXT = themeColor("--wg-fg", "#212121");
  const MUTED = themeColor("--wg-muted", "#616161");
  const line = Math.round(18 * scale);
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");
  context.font = `${Math.round(12 * scale)}px ${FONT}`;
  const widths = runs.map((run) => context.measureText(run).width);
  canvas.width = Math.max(1, Math.ceil(Math.max(0, ...widths) + 24 * scale));
  canvas.height = Math.max(1, runs.length * line);
  context.font = `${Math.round(12 * scale)}px ${FONT}`;
  context.textBaseline = "middle";
  runs.forEach((run, i) => {
    context.fillStyle = colors.get(run) ?? MUTED;
    context.fillRect(0, i * line + line / 2 - 5 * scale, 10 * scale, 10 * scale);
    context.fillStyle = TEXT;
    context.fillText(run, 16 * scale, i * line + line / 2);
  });
  return canvas;
}

/** Saves a canvas as a PNG file. */
export function downloadPng(canvas, filename) {
  canvas.toBlob((blob) => {
    if (blob) download(blob, filename.endsWith(".png") ? filename : `${filename}.png`);
  }, "image/png");
}
