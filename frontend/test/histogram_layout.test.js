import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  OFFSET_PEAK,
  histogramSeries,
  nonFiniteMessage,
  nonFiniteSteps,
  parseColor,
  stepColor,
  baselineOf,
  maxCount,
  offScaleCount,
  ridgelineLayout,
  stepDomain,
  valueDomain,
} from "../../tensorboard_plugin_weightgates/static/histogram_layout.js";

// One run, three steps, two buckets each.
const series = {
  steps: [0, 50, 100],
  lows: [-1, -2, -1],
  highs: [1, 2, 3],
  counts: [
    [1, 3],
    [2, 2],
    [4, 0],
  ],
};

describe("ridgeline (offset) layout", () => {
  const curves = ridgelineLayout([series], { width: 100, height: 200, mode: "offset", xDomain: [-2, 3] });

  it("puts the first step at the top and the last at the bottom, spaced by step", () => {
    const peak = 200 * OFFSET_PEAK;
    assert.deepEqual(
      curves.map((c) => c.baseline),
      [peak, peak + 0.5 * (200 - peak), 200],
    );
  });

  it("scales heights by the largest count of the chart", () => {
    const peak = 200 * OFFSET_PEAK;
    const last = curves[2];
    assert.equal(maxCount([series]), 4);
    assert.equal(last.points[1][1], 200 - peak, "count 4 reaches the full curve height");
    assert.equal(last.points[2][1], 200, "count 0 stays on the baseline");
  });

  it("runs from the low edge through bucket centres to the high edge", () => {
    const xs = curves[0].points.map(([x]) => x);
    // step 0: [-1, 1] in a [-2, 3] axis 100 wide: edges at 20 and 60, centres at 30 and 50.
    assert.deepEqual(xs, [20, 30, 50, 60]);
  });

  it("draws later steps more opaque", () => {
    assert.ok(curves[0].opacity < curves[1].opacity && curves[1].opacity < curves[2].opacity);
    assert.equal(curves[2].opacity, 1);
  });
});

describe("overlay layout", () => {
  it("puts every step on the bottom baseline at full height", () => {
    const curves = ridgelineLayout([series], { width: 100, height: 200, mode: "overlay", xDomain: [-2, 3] });
    assert.ok(curves.every((c) => c.baseline === 200));
    assert.equal(curves[2].points[1][1], 0);
  });
});

describe("several runs", () => {
  it("interleaves the runs by step so later steps of every run are drawn last", () => {
    const other = { ...series, steps: [25, 75, 100] };
    const curves = ridgelineLayout([series, other], { width: 10, height: 10, mode: "offset", xDomain: [-2, 3] });
    assert.deepEqual(
      curves.map((c) => [c.step, c.series]),
      [
        [0, 0],
        [25, 1],
        [50, 0],
        [75, 1],
        [100, 0],
        [100, 1],
      ],
    );
  });
});

describe("domains", () => {
  it("covers every step's range, skipping steps without finite values", () => {
    const withNulls = { ...series, lows: [-1, null, -1], highs: [1, null, 3] };
    assert.deepEqual(valueDomain([withNulls]), [-1, 3]);
    assert.equal(ridgelineLayout([withNulls], { width: 10, height: 10, mode: "offset", xDomain: [-1, 3] }).length, 2);
    assert.deepEqual(stepDomain([series]), [0, 100]);
  });

  it("widens a single value so it shows in the middle", () => {
    const constant = { steps: [1], lows: [0], highs: [0], counts: [[5]] };
    const [low, high] = valueDomain([constant]);
    assert.ok(low < 0 && high > 0 && low === -high);
    assert.equal(valueDomain([{ steps: [1], lows: [null], highs: [null], counts: [[0]] }]), null);
  });

  it("gives a single step the bottom baseline", () => {
    assert.equal(baselineOf(7, [7, 7], 100, "offset").baseline, 100);
  });
});

describe("a diverging run", () => {
  // 20 sane steps in [-1, 1] with spread-out counts, one step blown up to ±1e8 with every
  // value in one bucket.
  const sane = {
    steps: Array.from({ length: 20 }, (_, i) => i),
    lows: Array(20).fill(-1),
    highs: Array(20).fill(1),
    counts: Array(20).fill([2, 3, 2]),
  };
  const diverged = { steps: [5], lows: [-1e8], highs: [1e8], counts: [[0, 7, 0]] };

  it("does not set the axis when outliers are ignored", () => {
    assert.deepEqual(valueDomain([sane, diverged]), [-1e8, 1e8]);
    assert.deepEqual(valueDomain([sane, diverged], { ignoreOutliers: true }), [-2, 2]);
    assert.equal(offScaleCount([sane, diverged], [-1, 1]), 1);
    assert.equal(offScaleCount([sane], [-1, 1]), 0);
  });

  it("does not set the curve heights of the others", () => {
    assert.equal(maxCount([sane, diverged]), 7);
    assert.equal(maxCount([sane, diverged], [-1, 1]), 3);
    assert.equal(maxCount([diverged], [-1, 1]), 7, "falls back to every histogram");
  });
});

describe("steps without finite values", () => {
  // What the stats route sends for a gate whose values are all NaN: a zero range, no counts.
  const diverged = {
    steps: [3, 4],
    lows: [0, 0],
    highs: [0, 0],
    counts: [
      [0, 0],
      [0, 0],
    ],
    nan: [12, 12],
    inf: [0, 0],
  };

  it("has no histogram, no domain and no curves", () => {
    assert.equal(valueDomain([diverged]), null);
    assert.deepEqual(ridgelineLayout([diverged], { width: 10, height: 10, mode: "offset", xDomain: [-1, 1] }), []);
  });

  it("says so with the NaN and Inf counts", () => {
    const missing = nonFiniteSteps(diverged);
    assert.deepEqual(missing, { steps: [3, 4], nan: 12, inf: 0, all: true });
    assert.equal(nonFiniteMessage(missing), "No finite values: 12 NaN, 0 Inf at every step (last: step 4)");
    assert.equal(nonFiniteSteps(series), null);
  });

  it("names the steps when only some lack finite values", () => {
    const partly = { ...series, counts: [[1, 3], [0, 0], [4, 0]], nan: [0, 3, 0], inf: [0, 1, 0] };
    const missing = nonFiniteSteps(partly);
    assert.equal(missing.all, false);
    assert.equal(nonFiniteMessage(missing), "Step 50 without finite values (step 50: 3 NaN, 1 Inf)");
  });

  it("reads the counts from a stats gate", () => {
    const gate = {
      steps: [3],
      values: { nan_count: [7], inf_count: [null] },
      histograms: { low: [0], high: [0], counts: [[0]] },
    };
    assert.deepEqual(histogramSeries(gate).nan, [7]);
    assert.deepEqual(histogramSeries(gate).inf, [0]);
  });
});

describe("stepColor", () => {
  it("goes from pale to the run's colour", () => {
    assert.deepEqual(parseColor("#12b5cb"), [18, 181, 203]);
    assert.deepEqual(parseColor("rgb(58, 58, 58)"), [58, 58, 58]);
    assert.deepEqual(parseColor("#fff"), [255, 255, 255]);
    assert.equal(parseColor("teal"), null);
    assert.equal(stepColor("#12b5cb", "#ffffff", 1), "rgb(18, 181, 203)");
    const first = parseColor(stepColor("#12b5cb", "#ffffff", 0));
    assert.ok(first.every((value, k) => value > [18, 181, 203][k] || value === 255), "paler than the run");
    const dark = parseColor(stepColor("#12b5cb", "#303030", 0));
    assert.ok(dark[0] < 60, "towards a dark background in dark mode");
  });
});
