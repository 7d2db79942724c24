import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  CORNERS,
  axisTitles,
  dotPosition,
  dotsNear,
  saturatedUnits,
  saturationDots,
  saturationNames,
  unitList,
  unitsAt,
} from "../../tensorboard_plugin_weightgates/static/saturation_layout.js";

const SIGMOID = { type: "sigmoid", low: 0.1, high: 0.9 };

function entry(name, saturation, steps, left, right, mean = left.map((row) => row.map(() => 0.5))) {
  return { name, saturation, units: { steps, left_saturated: left, right_saturated: right, mean } };
}

describe("saturationNames", () => {
  it("lists the names with a saturation type once, in first-seen order", () => {
    const lstm = { names: [entry("input", SIGMOID, [], [], []), entry("cell_state", null, [], [], []), entry("hidden_state", SIGMOID, [], [], [])] };
    const gru = { names: [entry("update", SIGMOID, [], [], []), entry("hidden_state", SIGMOID, [], [], [])] };
    assert.deepEqual(
      saturationNames([lstm, gru]).map((n) => n.name),
      ["input", "hidden_state", "update"],
    );
  });
});

describe("unitsAt", () => {
  const e = entry("forget", SIGMOID, [0, 10], [[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.0]]);

  it("takes the latest step at or before the one asked for, else the first", () => {
    assert.equal(unitsAt(e, 10).step, 10);
    assert.deepEqual(unitsAt(e, 9).left, [0.1, 0.2]);
    assert.equal(unitsAt(e, -5).step, 0);
    assert.deepEqual(unitsAt(e, 99).right, [0.7, 0.0]);
  });

  it("is null without unit values", () => {
    assert.equal(unitsAt(entry("x", SIGMOID, [], [], []), 0), null);
  });
});

describe("saturationDots", () => {
  it("gives one dot per unit and run, and counts units without finite fractions", () => {
    const a = { names: [entry("forget", SIGMOID, [5], [[0.1, 0.2, 0.0]], [[0.8, 0.1, 0.95]])] };
    const b = { names: [entry("forget", SIGMOID, [5], [[null, 0.4]], [[null, 0.5]])] };
    const { dots, missing } = saturationDots(
      [
        { run: "a", direction: "forward", stats: a },
        { run: "b", direction: "forward", stats: b },
      ],
      "forget",
      5,
    );
    assert.deepEqual(
      dots.map((d) => [d.run, d.unit, d.left, d.right]),
      [
        ["a", 0, 0.1, 0.8],
        ["a", 1, 0.2, 0.1],
        ["a", 2, 0.0, 0.95],
        ["b", 1, 0.4, 0.5],
      ],
    );
    assert.equal(missing.get("b"), 1);
    assert.equal(missing.has("a"), false);
  });

  it("skips runs without the name (a GRU beside an LSTM)", () => {
    const gru = { names: [entry("update", SIGMOID, [0], [[0.1]], [[0.2]])] };
    assert.deepEqual(saturationDots([{ run: "g", direction: "forward", stats: gru }], "forget", 0).dots, []);
  });
});

describe("dotPosition and dotsNear", () => {
  const box = { x: 40, y: 10, width: 200, height: 200 };

  it("puts right-saturated fractions on x and left-saturated ones on y, up", () => {
    assert.deepEqual(dotPosition(0, 0, box), { x: 40, y: 210 });
    assert.deepEqual(dotPosition(1, 0, box), { x: 240, y: 210 });
    assert.deepEqual(dotPosition(0, 1, box), { x: 40, y: 10 });
    assert.deepEqual(dotPosition(0.5, 0.25, box), { x: 140, y: 160 });
  });

  it("the corners are where their fractions put them", () => {
    const labels = Object.fromEntries(CORNERS.map((c) => [c.label, dotPosition(c.x, c.y, box)]));
    assert.deepEqual(labels["always right-saturated"], { x: 240, y: 210 });
    assert.deepEqual(labels["always left-saturated"], { x: 40, y: 10 });
  });

  it("finds the nearest dot within the radius only", () => {
    const dots = [
      { unit: 0, right: 0.5, left: 0.25 },
      { unit: 1, right: 0.52, left: 0.25 },
    ];
    assert.equal(dotsNear(dots, box, 143, 160)[0].unit, 1);
    assert.equal(dotsNear(dots, box, 139, 161)[0].unit, 0);
    assert.deepEqual(dotsNear(dots, box, 100, 100), []);
  });
});

describe("dotsNear and unitList", () => {
  const box = { x: 0, y: 0, width: 100, height: 100 };
  const dots = [
    { run: "a", unit: 0, right: 1, left: 0 },
    { run: "a", unit: 5, right: 1, left: 0 },
    { run: "b", unit: 2, right: 0.99, left: 0 },
    { run: "b", unit: 3, right: 0.5, left: 0.5 },
  ];

  it("finds every dot at the same place, nearest first", () => {
    assert.deepEqual(
      dotsNear(dots, box, 99.1, 100).map((d) => [d.run, d.unit]),
      [
        ["b", 2],
        ["a", 0],
        ["a", 5],
      ],
    );
    assert.deepEqual(dotsNear(dots, box, 20, 20), []);
  });

  it("lists units per run, then how many more", () => {
    assert.equal(unitList(dots.slice(0, 3)), "a: units 0, 5 · b: unit 2");
    assert.equal(unitList(dots, 2), "a: units 0, 5 and 2 more");
  });
});

describe("saturatedUnits", () => {
  it("counts units beyond the fraction on each side, per run", () => {
    const dots = [
      { run: "a", left: 0.95, right: 0.0 },
      { run: "a", left: 0.0, right: 0.91 },
      { run: "a", left: 0.9, right: 0.05 },
      { run: "b", left: 0.1, right: 0.2 },
    ];
    const counts = saturatedUnits(dots, 0.9);
    assert.deepEqual(counts.get("a"), { left: 1, right: 1, units: 3 });
    assert.deepEqual(counts.get("b"), { left: 0, right: 0, units: 1 });
  });
});

describe("axisTitles", () => {
  it("names the thresholds of the type", () => {
    assert.deepEqual(axisTitles({ type: "tanh", low: -0.9, high: 0.9 }), {
      x: "fraction right-saturated (> 0.9)",
      y: "fraction left-saturated (< -0.9)",
    });
  });
});
