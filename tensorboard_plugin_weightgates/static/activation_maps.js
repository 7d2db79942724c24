// The unit x timestep maps of one run's probe sample: a panel with a map per name (gates,
// c_t, h_t, dL/dh_t), drawn with the weight heatmaps' colour scales (colorscale.js) and
// geometry (heatmap_layout.js), masked timesteps greyed, a hover and a PNG download.

import { nameLabel } from "./activation_data.js";
import { mapCell, mapLimit, mapScale, maskedColumns, nanCells } from "./activation_maps_layout.js";
import { NAN_COLOR, colorOf, cssColor, rasterize } from "./colorscale.js";
import { h, imageCanvas, sizeCanvas } from "./dom.js";
import { composeFigure, downloadPng } from "./figure.js";
import { formatValue, safeFilename } from "./format.js";
import { cellAt, heatmapHeight, rangeLabel } from "./heatmap_layout.js";
import { usableLimit } from "./normalize.js";

const MASKED = [189, 189, 189];

/**
 * The maps' colour key: a bar per scale in use ("magnitude": 0 … L, "diverging": −L … +L, L
 * being each map's range as its label says), and the NaN and masked swatches.
 */
export function mapsLegend(scales) {
  const bar = (scale) => {
    const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const color = scale === "magnitude" ? colorOf(f, 1, scale) : colorOf(2 * f - 1, 1, scale);
      return `${cssColor(color)} ${f * 100}%`;
    });
    return h(
      "span",
      { class: "wg-legend-key wg-step-ramp", dataset: { scale } },
      h("span", { text: scale === "magnitude" ? "0" : "−L" }),
      h("span", { class: "wg-ramp", style: { backgroundImage: `linear-gradient(to right, ${stops.join(", ")})` } }),
      h("span", { text: scale === "magnitude" ? "L" : "+L" }),
    );
  };
  const swatch = (color, text) =>
    h("span", { class: "wg-legend-key" }, h("span", { class: "wg-swatch", style: { backgroundColor: cssColor(color) } }), text);
  return h(
    "div",
    { class: "wg-run-legend wg-maps-legend" },
    [...new Set(scales)].map(bar),
    swatch(NAN_COLOR, "NaN"),
    swatch(MASKED, "masked"),
  );
}

/**
 * One name's map for one run: `{name, values, limit, scale, masked, raster}` from a decoded
 * `activation_maps` response, under the settings' `scale` and `range`; `sharedMax` the largest
 * |x| of the name over the runs shown (for the "runs" range).
 */
export function prepareMap(maps, name, saturationType, { scale, range }, sharedMax) {
  const { header } = maps;
  const values = maps.maps[name].mean;
  const masked = maskedColumns(header.valid);
  const limit = mapLimit(saturationType, values, header.rows, header.cols, range, sharedMax);
  const resolved = mapScale(saturationType, scale);
  return {
    name,
    values,
    limit,
    scale: resolved,
    masked,
    nan: nanCells(values, header.rows, header.cols, masked),
    raster: raster(header, values, limit, resolved, masked),
  };
}

function raster(header, values, limit, scale, masked) {
  const { rows, cols } = header;
  const limits = new Float64Array(cols).fill(usableLimit(limit));
  return imageCanvas(rows, cols, (data) => {
    rasterize(data, values, rows, cols, limits, scale);
    for (const c of masked) {
      for (let r = 0; r < rows; r++) data.set(MASKED, (r * cols + c) * 4);
    }
  });
}

export class ActivationMapsPanel {
  /**
   * `run`, `color`, `maps` (decoded response), `prepared` (prepareMap per name, in order),
   * `describe` (`{layer, direction, multiDirection}`), `tooltip` a Tooltip.
   */
  constructor({ run, color, maps, prepared, describe, tooltip }) {
    Object.assign(this, { run, maps, prepared, describe, tooltip });
    const { header } = maps;
    this.blocks = prepared.map((map) => this.block(map));
    const nan = prepared.reduce((sum, map) => sum + map.nan, 0);
    const where = describe.multiDirection ? ` · ${describe.direction}` : "";
    this.element = h(
      "article",
      { class: "wg-panel wg-maps-panel", dataset: { run, direction: describe.direction, nanCount: String(nan) }, style: { borderTopColor: color } },
      h(
        "header",
        { class: "wg-panel-header" },
        h("span", { class: "wg-swatch", style: { backgroundColor: color }, "aria-hidden": "true" }),
        h("span", { class: "wg-run-name", text: run }),
        h("span", { class: "wg-panel-step", text: `step ${header.step} · sample ${header.sample}${where}` }),
        nan ? h("span", { class: "wg-badge wg-badge-nan", text: `${nan} NaN`, title: "Cells holding NaN (drawn green)" }) : null,
        h("span", { class: "wg-spacer" }),
        h("button", {
          type: "button",
          class: "wg-icon-button",
          text: "PNG",
          title: "Download these maps as PNG",
          onclick: () => this.download(),
        }),
      ),
      h("div", { class: "wg-maps-grid" }, this.blocks.map((block) => block.element)),
    );
  }

  block(map) {
    const canvas = h("canvas", {
      class: "wg-map-canvas",
      dataset: { run: this.run, name: map.name, rows: String(this.maps.header.rows), cols: String(this.maps.header.cols) },
    });
    canvas.addEventListener("mousemove", (event) => this.hover(map, canvas, event));
    canvas.addEventListener("mouseleave", () => this.tooltip.hide());
    const range = map.limit > 0 ? (map.scale === "magnitude" ? `0 … ${formatValue(map.limit, 3)}` : `±${formatValue(map.limit, 3)}`) : "no finite values";
    const wrap = h("div", { class: "wg-canvas-wrap" }, canvas);
    return {
      map,
      canvas,
      wrap,
      element: h(
        "div",
        { class: "wg-map", dataset: { name: map.name } },
        h(
          "div",
          { class: "wg-direction-head" },
          h("span", { class: "wg-map-label", text: nameLabel(map.name) }),
          h("span", { class: "wg-limit-note", text: range }),
        ),
        wrap,
      ),
    };
  }

  draw() {
    const { rows, cols } = this.maps.header;
    for (const { map, canvas, wrap } of this.blocks) {
      const width = wrap.clientWidth;
      if (width === 0) continue;
      const height = heatmapHeight(rows, cols, width);
      const context = sizeCanvas(canvas, width, height);
      context.imageSmoothingEnabled = false;
      context.drawImage(map.raster, 0, 0, width, height);
    }
  }

  hover(map, canvas, event) {
    const { header } = this.maps;
    const rect = canvas.getBoundingClientRect();
    const cell = cellAt(event.clientX - rect.left, event.clientY - rect.top, rect.width, rect.height, header.rows, header.cols);
    if (!cell) {
      this.tooltip.hide();
      return;
    }
    const original = mapCell(header, cell.row, cell.col);
    const value = map.values[cell.row * header.cols + cell.col];
    const masked = map.masked.has(cell.col);
    const spatial = (header.spatial ?? []).length > 0;
    const unitTerm = spatial && original.position === null ? "Rows" : "Unit";
    this.tooltip.show(
      event,
      [
        ["Run", this.run],
        this.describe.multiDirection ? ["Direction", this.describe.direction] : null,
        ["Name", nameLabel(map.name)],
        original.position !== null ? ["Position", String(original.position)] : null,
        [unitTerm, rangeLabel(original.units)],
        ["Timestep", rangeLabel(original.timesteps)],
        ["Value", masked ? "masked" : formatValue(value)],
        ["Step", String(header.step)],
      ],
      {
        color: masked ? cssColor(MASKED) : cssColor(colorOf(value, usableLimit(map.limit), map.scale)),
        dataset: {
          run: this.run,
          name: map.name,
          unit: String(original.units[0]),
          timestep: String(original.timesteps[0]),
          value: String(value),
        },
      },
    );
  }

  download() {
    const { header } = this.maps;
    const { layer, direction, multiDirection } = this.describe;
    const figure = composeFigure({
      title: `${this.run} · ${layer.layer} (${layer.layer_type})${multiDirection ? ` · ${direction}` : ""}`,
      subtitle: `step ${header.step} · probe sample ${header.sample} · rows: units, columns: timesteps 0 … ${header.timesteps - 1}`,
      items: this.blocks.map((block) => ({ label: nameLabel(block.map.name), image: block.canvas })),
      columns: 2,
    });
    downloadPng(figure, safeFilename(`${this.run}_${layer.layer}_${direction}_maps_step${header.step}`));
  }
}
