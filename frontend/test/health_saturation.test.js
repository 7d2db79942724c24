import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { SATURATION_COLUMNS, fetchSaturation, withSaturation } from "../../tensorboard_plugin_weightgates/static/health_saturation.js";
import { TABLE_COLUMNS, sortRows, toCsv } from "../../tensorboard_plugin_weightgates/static/health_data.js";

const STATS = {
  names: [
    {
      name: "forget",
      steps: [0, 10],
      values: { mean: [0.5, 0.7], left_saturated: [0.01, 0.02], right_saturated: [0.1, 0.4], left_saturated_units: [0, 1], right_saturated_units: [0, 3] },
    },
    { name: "cell_state", steps: [0, 10], values: { mean: [0, 2], left_saturated: [null, null], right_saturated: [null, null] } },
  ],
};
const SATURATION = [{ run: "a", direction: "forward", stats: STATS }];

describe("withSaturation", () => {
  it("adds the gate's activation saturation at the latest step at or before the row's", () => {
    const rows = [
      { run: "a", direction: "forward", gate: "forget", step: 15 },
      { run: "a", direction: "forward", gate: "forget", step: 5 },
    ];
    const [late, early] = withSaturation(rows, SATURATION);
    assert.deepEqual(
      [late.activation_mean, late.left_saturated, late.right_saturated, late.left_saturated_units, late.right_saturated_units],
      [0.7, 0.02, 0.4, 1, 3],
    );
    assert.equal(early.right_saturated, 0.1);
    assert.equal(late.step, 15);
  });

  it("leaves rows without activations (a bias, another run or direction) empty", () => {
    const rows = [
      { run: "a", direction: "forward", gate: "bias", step: 10 },
      { run: "b", direction: "forward", gate: "forget", step: 10 },
      { run: "a", direction: "backward", gate: "forget", step: 10 },
    ];
    for (const row of withSaturation(rows, SATURATION)) {
      assert.ok(SATURATION_COLUMNS.every((c) => row[c.id] === null));
    }
  });

  it("sorts and exports with the saturation columns", () => {
    const rows = withSaturation(
      [
        { run: "a", direction: "forward", gate: "forget", step: 10 },
        { run: "a", direction: "forward", gate: "bias", step: 10 },
        { run: "a", direction: "forward", gate: "forget", step: 0 },
      ],
      SATURATION,
    );
    const columns = [...TABLE_COLUMNS, ...SATURATION_COLUMNS];
    const sorted = sortRows(rows, "right_saturated", "desc", columns);
    assert.deepEqual(sorted.map((r) => r.right_saturated), [0.4, 0.1, null]);
    const [header, first] = toCsv(columns, sorted).split("\r\n");
    assert.ok(header.endsWith("Activation mean,Left-saturated,Right-saturated,Left-sat. units,Right-sat. units"));
    assert.ok(first.endsWith("0.7,0.02,0.4,1,3"));
  });
});

describe("fetchSaturation", () => {
  const index = {
    runs: {
      a: { layers: [{ layer: "rnn", layer_type: "LSTM", order: 0, cell: null, directions: [{ direction: "forward" }] }] },
      b: { layers: [{ layer: "rnn", layer_type: "LSTM", order: 0, cell: null, directions: [{ direction: "forward" }] }] },
    },
  };

  it("loads each run's statistics of the layer and leaves out the ones that fail", async () => {
    const api = {
      activations: async () => index,
      activationStats: async (group) => {
        if (group.run === "b") throw new Error("404");
        return STATS;
      },
    };
    const loaded = await fetchSaturation(api, { layer: "rnn", cell: null, runs: ["a", "b"] });
    assert.deepEqual(
      loaded.map((s) => [s.run, s.direction, s.stats === STATS]),
      [["a", "forward", true]],
    );
  });

  it("is empty when the activation index cannot be read", async () => {
    const api = {
      activations: async () => {
        throw new Error("offline");
      },
    };
    assert.deepEqual(await fetchSaturation(api, { layer: "rnn", cell: null, runs: ["a"] }), []);
  });
});
