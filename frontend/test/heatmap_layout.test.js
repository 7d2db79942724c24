import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  MAX_HEIGHT,
  MIN_HEIGHT,
  cellAt,
  heatmapHeight,
  isReduced,
  originalCell,
  rangeLabel,
} from "../../tensorboard_plugin_weightgates/static/heatmap_layout.js";

describe("heatmapHeight", () => {
  it("makes cells square within bounds", () => {
    assert.equal(heatmapHeight(8, 64, 640), 80);
    assert.equal(heatmapHeight(1, 4096, 800), MIN_HEIGHT);
    assert.equal(heatmapHeight(1024, 64, 800), MAX_HEIGHT);
  });
});

describe("cellAt", () => {
  it("maps points to cells and refuses points outside", () => {
    assert.deepEqual(cellAt(0, 0, 100, 50, 5, 10), { row: 0, col: 0 });
    assert.deepEqual(cellAt(99.9, 49.9, 100, 50, 5, 10), { row: 4, col: 9 });
    assert.deepEqual(cellAt(15, 25, 100, 50, 5, 10), { row: 2, col: 1 });
    assert.equal(cellAt(100, 0, 100, 50, 5, 10), null);
    assert.equal(cellAt(-1, 0, 100, 50, 5, 10), null);
  });
});

describe("originalCell", () => {
  it("is the cell itself without reduction", () => {
    const header = { shape: [3, 8], block: [1, 1], gate_boundaries: [0, 4, 8] };
    assert.deepEqual(originalCell(header, [0, 4, 8], 2, 5), {
      gateIndex: 1,
      rows: [2, 3],
      cols: [5, 6],
      units: [1, 2],
    });
    assert.equal(isReduced(header), false);
  });

  it("restarts blocks at each gate and clips the last block", () => {
    // Two gates of 10 original columns, blocks of 4 columns: 3 stored columns per gate.
    const header = { shape: [2, 5, 20], block: [4, 4], gate_boundaries: [0, 3, 6] };
    assert.equal(isReduced(header), true);
    assert.deepEqual(originalCell(header, [0, 10, 20], 2, 2), {
      gateIndex: 0,
      rows: [8, 10],
      cols: [8, 10],
      units: [8, 10],
    });
    assert.deepEqual(originalCell(header, [0, 10, 20], 0, 3), {
      gateIndex: 1,
      rows: [0, 4],
      cols: [10, 14],
      units: [0, 4],
    });
  });
});

describe("rangeLabel", () => {
  it("shows single indices and inclusive ranges", () => {
    assert.equal(rangeLabel([7, 8]), "7");
    assert.equal(rangeLabel([8, 16]), "8–15");
  });
});
