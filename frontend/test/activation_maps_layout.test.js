import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  MAP_RANGES,
  mapCell,
  mapLimit,
  mapScale,
  maskedColumns,
  nanCells,
} from "../../tensorboard_plugin_weightgates/static/activation_maps_layout.js";

describe("mapScale", () => {
  it("draws gates from 0 on the magnitude scale and everything else signed, unless chosen", () => {
    assert.equal(mapScale("sigmoid", "auto"), "magnitude");
    assert.equal(mapScale("tanh", "auto"), "diverging");
    assert.equal(mapScale(null, "auto"), "diverging");
    assert.equal(mapScale("sigmoid", "diverging"), "diverging");
  });
});

describe("mapLimit", () => {
  const values = new Float32Array([0.2, -3, NaN, Infinity]);

  it("uses the value's own range for gates and tanh values, the largest |x| otherwise", () => {
    assert.equal(mapLimit("sigmoid", values, 2, 2, "natural"), 1);
    assert.equal(mapLimit("tanh", values, 2, 2, "natural"), 1);
    assert.equal(mapLimit(null, values, 2, 2, "natural"), 3);
    assert.equal(mapLimit("sigmoid", values, 2, 2, "map"), 3);
    assert.equal(mapLimit("sigmoid", values, 2, 2, "runs", 7), 7);
  });

  it("has a help text for every range", () => {
    assert.ok(MAP_RANGES.every((range) => range.help.length > 10));
  });
});

describe("masked columns and NaN cells", () => {
  it("finds the columns the mask drops entirely", () => {
    assert.deepEqual([...maskedColumns([1, 0.5, 0, 0])], [2, 3]);
    assert.deepEqual([...maskedColumns(null)], []);
  });

  it("counts NaN outside masked columns only", () => {
    const values = new Float32Array([NaN, 1, NaN, NaN, NaN, 2]);
    assert.equal(nanCells(values, 2, 3, new Set([2])), 3);
    assert.equal(nanCells(values, 2, 3, new Set()), 4);
  });
});

describe("mapCell", () => {
  it("maps a stored cell to its unit and timestep", () => {
    const header = { shape: [4, 6], units: 4, spatial: [], block: [1, 1] };
    assert.deepEqual(mapCell(header, 3, 5), { units: [3, 4], timesteps: [5, 6], position: null });
  });

  it("gives the ranges of a block-reduced map, clipped at the edges", () => {
    const header = { shape: [5, 7], units: 5, spatial: [], block: [2, 3] };
    assert.deepEqual(mapCell(header, 2, 2), { units: [4, 5], timesteps: [6, 7], position: null });
  });

  it("splits a ConvLSTM row into its position and unit (the unit varies fastest)", () => {
    const header = { shape: [12, 4], units: 3, spatial: [2, 2], block: [1, 1] };
    assert.deepEqual(mapCell(header, 7, 0), { units: [1, 2], timesteps: [0, 1], position: 2 });
  });
});
