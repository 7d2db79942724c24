import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  decadeLabel,
  flowRatio,
  logDomain,
  logTicks,
  logY,
  plottable,
  runSeries,
  stepColor,
  stepSeries,
  timestepAt,
} from "../../tensorboard_plugin_weightgates/static/gradient_flow_layout.js";

const GRADIENTS = {
  steps: [10, 20, 30],
  timesteps: 3,
  norms: [
    [0.001, 0.01, 0.1],
    [null, 0.02, 0.2],
    [0, 0.03, Infinity],
  ],
};

describe("plottable", () => {
  it("keeps positive finite norms only", () => {
    assert.deepEqual([1e-9, 0, -1, null, NaN, Infinity, undefined].map(plottable), [1e-9, null, null, null, null, null, null]);
  });
});

describe("stepSeries", () => {
  it("has one line per step over the timesteps, gaps where a norm cannot be drawn on a log axis", () => {
    const series = stepSeries(GRADIENTS);
    assert.deepEqual(series.map((s) => s.step), [10, 20, 30]);
    assert.deepEqual(series[0].xs, [0, 1, 2]);
    assert.deepEqual(series[1].ys, [null, 0.02, 0.2]);
    assert.deepEqual(series[2].ys, [null, 0.03, null]);
  });

  it("colours the first step lightest and the last darkest", () => {
    const [first, , last] = stepSeries(GRADIENTS).map((s) => s.color);
    const lightness = (css) => css.match(/\d+/g).map(Number).reduce((a, b) => a + b, 0);
    assert.equal(first, stepColor(0));
    assert.equal(last, stepColor(1));
    assert.ok(lightness(first) > lightness(last));
  });
});

describe("runSeries", () => {
  it("takes each run at its latest step at or before the one asked for", () => {
    const colors = new Map([
      ["a", "#111"],
      ["b", "#222"],
    ]);
    const series = runSeries(
      [
        { run: "a", gradients: GRADIENTS },
        { run: "b", gradients: { steps: [25], norms: [[1, 2, 3]] } },
      ],
      25,
      colors,
    );
    assert.deepEqual(
      series.map((s) => [s.run, s.step, s.color, s.ys]),
      [
        ["a", 20, "#111", [null, 0.02, 0.2]],
        ["b", 25, "#222", [1, 2, 3]],
      ],
    );
  });
});

describe("log axis", () => {
  it("covers the values in whole decades", () => {
    assert.deepEqual(logDomain([{ ys: [0.002, null, 0.5] }]), [0.001, 1]);
    assert.deepEqual(logDomain([{ ys: [0.01] }]), [0.01, 0.1]);
    assert.equal(logDomain([{ ys: [null] }]), null);
  });

  it("ticks powers of ten, thinned to the count, with 2 and 5 times them over a short domain", () => {
    assert.deepEqual(logTicks([1e-4, 1e-3]), [1e-4, 2e-4, 5e-4, 1e-3]);
    assert.deepEqual(logTicks([0.0001, 1]), [0.0001, 0.001, 0.01, 0.1, 1]);
    assert.equal(logTicks([1e-12, 1], 4).length <= 5, true);
    assert.ok(logTicks([1e-12, 1], 4).every((t) => Number.isInteger(Math.round(Math.log10(t)))));
  });

  it("places decades evenly, the top of the domain at 0", () => {
    const domain = [0.001, 1];
    assert.equal(logY(1, domain, 300), 0);
    assert.equal(logY(0.001, domain, 300), 300);
    assert.ok(Math.abs(logY(0.01, domain, 300) - 200) < 1e-9);
  });

  it("labels decades", () => {
    assert.deepEqual([1, 10, 0.01, 1e-5, 1e6, 2e-4, 5e-4, 20].map(decadeLabel), ["1", "10", "0.01", "1e-5", "1e6", "2e-4", "5e-4", "20"]);
  });
});

describe("flowRatio", () => {
  it("compares the first timestep read with the last, by direction", () => {
    assert.equal(flowRatio([0.001, 0.1], "forward"), 0.01);
    assert.equal(flowRatio([0.001, 0.1], "backward"), 100);
    assert.equal(flowRatio([0.001, 0.1, null, null], "forward"), 0.01, "masked timesteps skipped");
    assert.equal(flowRatio([null, 0.001, 0.1], "backward"), 100);
    assert.equal(flowRatio([null, 0.1], "forward"), null);
  });
});

describe("timestepAt", () => {
  it("rounds to the nearest timestep inside the plot", () => {
    assert.equal(timestepAt(0, 100, 11), 0);
    assert.equal(timestepAt(14, 100, 11), 1);
    assert.equal(timestepAt(100, 100, 11), 10);
    assert.equal(timestepAt(500, 100, 11), 10);
    assert.equal(timestepAt(-3, 100, 11), 0);
    assert.equal(timestepAt(50, 100, 1), 0);
  });
});
