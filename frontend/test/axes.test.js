import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  axesCaption,
  axisWord,
  columnTicks,
  describeColumns,
  describeRows,
  gateWords,
  rowBlocks,
  rowSeparators,
  rowTickChars,
  rowTicks,
  unravel,
} from "../../tensorboard_plugin_weightgates/static/axes.js";

const CONV = { axes: ["offset_0", "offset_1", "input_channel", "unit"], shape: [3, 3, 2, 16] };

describe("axisWord", () => {
  it("names the documented axes and falls back to the name", () => {
    assert.equal(axisWord("input"), "input feature");
    assert.equal(axisWord("hidden"), "hidden unit");
    assert.equal(axisWord("head_dim"), "head dim");
    assert.equal(axisWord("output_1"), "output unit (axis 1)");
    assert.equal(axisWord("axis_2"), "axis 2");
    assert.equal(axisWord("mystery"), "mystery");
  });
});

describe("describeRows", () => {
  it("reads a ConvLSTM row as its window offset and input channel, row-major", () => {
    // Row r of 18 is offset (r // 6, r // 2 % 3), channel r % 2 (docs/http-api.md).
    for (let r = 0; r < 18; r++) {
      assert.equal(
        describeRows(CONV.axes, CONV.shape, [r, r + 1]),
        `window offset (${Math.floor(r / 6)}, ${Math.floor(r / 2) % 3}), input channel ${r % 2}`,
      );
    }
    assert.equal(
      describeRows(CONV.axes, CONV.shape, [0, 4]),
      "window offset (0, 0), input channel 0 to window offset (0, 1), input channel 1",
    );
  });

  it("names single-axis rows, ranges included, and has none for a bias", () => {
    assert.equal(describeRows(["input", "unit"], [8, 64], [3, 4]), "input feature 3");
    assert.equal(describeRows(["hidden", "unit"], [16, 64], [0, 8]), "hidden unit 0–7");
    assert.equal(describeRows(["output", "head_dim"], [32, 32], [5, 6]), "output unit 5");
    assert.equal(describeRows(["unit"], [16], [0, 1]), null);
    assert.equal(describeRows(undefined, [8, 4], [2, 3]), "row 2");
  });
});

describe("describeColumns", () => {
  it("names gate and unit, head and head dim", () => {
    assert.equal(describeColumns(["input", "unit"], "forget", [2, 3]), "forget gate, unit 2");
    assert.equal(describeColumns(["input", "head_dim"], "head_1", [0, 4]), "head 1, head dim 0–3");
    assert.equal(describeColumns(["output"], null, [5, 6]), "output unit 5");
    assert.equal(gateWords("head_12"), "head 12");
    assert.equal(gateWords(null), null);
  });
});

describe("axesCaption", () => {
  it("says what rows and columns are", () => {
    assert.equal(
      axesCaption(CONV.axes, CONV.shape, ["input", "forget"]),
      "rows: window offset, input channel · columns: gate, unit",
    );
    assert.equal(
      axesCaption(["input", "head_dim"], [32, 32], ["head_0", "head_1"]),
      "rows: input feature · columns: head, head dim",
    );
    assert.equal(axesCaption(["output"], [32], [null]), "columns: output unit");
  });
});

describe("row blocks", () => {
  it("unravels row-major", () => {
    assert.deepEqual(unravel(13, [3, 3, 2]), [2, 0, 1]);
  });

  it("finds the blocks of each outer axis", () => {
    assert.deepEqual(rowBlocks(CONV.axes, CONV.shape), [
      { size: 6, level: 0 },
      { size: 2, level: 1 },
    ]);
    assert.deepEqual(rowBlocks(["input", "unit"], [8, 64]), []);
  });

  it("separates every offset, the outer axis first, when lines are far enough apart", () => {
    const lines = rowSeparators(CONV.axes, CONV.shape, 18, 1, 180);
    assert.deepEqual(
      lines.map((l) => l.y),
      [2, 4, 6, 8, 10, 12, 14, 16],
    );
    assert.equal(lines.find((l) => l.y === 6).level, 0);
    assert.equal(lines.find((l) => l.y === 2).level, 1);
    assert.deepEqual(
      rowSeparators(CONV.axes, CONV.shape, 18, 1, 20).map((l) => l.y),
      [6, 12],
    );
    // Stored rows of 4 original rows do not start on offset blocks of 2 rows.
    assert.deepEqual(
      rowSeparators(CONV.axes, CONV.shape, 5, 4, 300).map((l) => l.y),
      [],
    );
  });
});

describe("rowTicks", () => {
  it("labels each offset block when it fits, else the coarser one", () => {
    const fine = rowTicks(CONV.axes, CONV.shape, 18, 1, 360);
    assert.equal(fine.length, 9);
    assert.deepEqual(fine[4], { y: (8 + 1) / 18, text: "(1, 1)" });
    const coarse = rowTicks(CONV.axes, CONV.shape, 18, 1, 60);
    assert.deepEqual(
      coarse.map((t) => t.text),
      ["(0)", "(1)", "(2)"],
    );
  });

  it("spaces single-axis ticks at a round stride", () => {
    const ticks = rowTicks(["input", "unit"], [64, 4], 64, 1, 320);
    assert.deepEqual(
      ticks.map((t) => t.text).slice(0, 3),
      ["0", "5", "10"],
    );
    for (let i = 1; i < ticks.length; i++) assert.ok((ticks[i].y - ticks[i - 1].y) * 320 >= 14);
    assert.deepEqual(rowTicks(["unit"], [16], 1, 1, 20), []);
  });
});

describe("columnTicks", () => {
  it("counts units from 0 in every gate", () => {
    const ticks = columnTicks([0, 8, 16], [0, 8, 16], 16, 1, 800);
    assert.deepEqual(
      ticks.map((t) => t.text),
      ["0", "1", "2", "3", "4", "5", "6", "7", "0", "1", "2", "3", "4", "5", "6", "7"],
    );
    assert.equal(ticks[8].x, 8.5 / 16);
    const sparse = columnTicks([0, 64, 128], [0, 64, 128], 128, 1, 640);
    assert.deepEqual(
      sparse.slice(0, 3).map((t) => t.text),
      ["0", "5", "10"],
    );
  });
});

describe("rowTickChars", () => {
  it("is the length of the longest tick", () => {
    assert.equal(rowTickChars(CONV.axes, CONV.shape), "(2, 2)".length);
    assert.equal(rowTickChars(["input", "unit"], [128, 4]), 3);
    assert.equal(rowTickChars(["unit"], [16]), 0);
  });
});
