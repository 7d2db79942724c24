import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { NORMALISATIONS, columnLimits, computeLimits, maxAbs, sharedLimit, usableLimit } from "../../tensorboard_plugin_weightgates/static/normalize.js";

// Two panels (say two runs) of a 2 x 4 kernel with two gates of two columns each.
const boundaries = [0, 2, 4];
const panelA = { rows: 2, cols: 4, boundaries, values: Float32Array.from([1, -2, 0.5, 0, -1, 0, 0.25, NaN]) };
const panelB = { rows: 2, cols: 4, boundaries, values: Float32Array.from([0, 8, Infinity, 0, 0, 0, -3, 0]) };

describe("maxAbs", () => {
  it("takes the largest finite magnitude of the column range", () => {
    assert.equal(maxAbs(panelA.values, 2, 4), 2);
    assert.equal(maxAbs(panelA.values, 2, 4, 2, 4), 0.5);
    assert.equal(maxAbs(panelB.values, 2, 4, 2, 4), 3, "Inf is left out");
    assert.equal(maxAbs(Float32Array.from([NaN, NaN]), 1, 2), 0);
  });
});

describe("computeLimits", () => {
  it("per gate: each gate of each panel by itself", () => {
    assert.deepEqual(computeLimits([panelA, panelB], "gate"), [
      [2, 0.5],
      [8, 3],
    ]);
  });

  it("per kernel: the gates of one panel share its largest value", () => {
    assert.deepEqual(computeLimits([panelA, panelB], "kernel"), [
      [2, 2],
      [8, 8],
    ]);
  });

  it("shared across runs: one limit for every panel", () => {
    assert.deepEqual(computeLimits([panelA, panelB], "runs"), [
      [8, 8],
      [8, 8],
    ]);
  });

  it("fixed: the given limit everywhere", () => {
    assert.deepEqual(computeLimits([panelA, panelB], "fixed", 0.1), [
      [0.1, 0.1],
      [0.1, 0.1],
    ]);
  });

  it("reports an all-zero range as 0, and draws it with a unit range", () => {
    const zeros = { rows: 1, cols: 2, boundaries: [0, 2], values: new Float32Array(2) };
    assert.deepEqual(computeLimits([zeros], "kernel"), [[0]]);
    assert.deepEqual([...columnLimits([0], [0, 2], 2)], [1, 1]);
    assert.equal(usableLimit(0), 1);
    assert.equal(usableLimit(NaN), 1);
    assert.equal(usableLimit(0.5), 0.5);
  });

  it("knows every mode it offers and refuses others", () => {
    for (const { id } of NORMALISATIONS) assert.equal(computeLimits([panelA], id, 1).length, 1);
    assert.throws(() => computeLimits([panelA], "percentile"), RangeError);
  });
});

describe("columnLimits and sharedLimit", () => {
  it("spreads gate limits over their columns", () => {
    assert.deepEqual([...columnLimits([2, 0.5], boundaries, 4)], [2, 2, 0.5, 0.5]);
  });

  it("reports a single shared limit only when all agree", () => {
    assert.equal(
      sharedLimit([
        [8, 8],
        [8, 8],
      ]),
      8,
    );
    assert.equal(
      sharedLimit([
        [2, 2],
        [8, 8],
      ]),
      null,
    );
    assert.equal(sharedLimit([]), null);
  });
});
