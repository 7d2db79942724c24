import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  activationGroups,
  activationLayers,
  groupSteps,
  groupsByDirection,
  nameLabel,
  nonFinite,
} from "../../tensorboard_plugin_weightgates/static/activation_data.js";
import { layerKey } from "../../tensorboard_plugin_weightgates/static/layers.js";

function direction(name, steps) {
  return { direction: name, names: ["hidden_state"], saturations: { hidden_state: "tanh" }, units: 2, timesteps: 3, ...steps };
}

const INDEX = {
  runs: {
    a: {
      layers: [
        {
          layer: "bi",
          layer_type: "LSTM",
          order: 1,
          cell: null,
          directions: [
            direction("forward", { stats_steps: [0, 10], gradient_steps: [10], map_steps: [0] }),
            direction("backward", { stats_steps: [0, 10], gradient_steps: [10], map_steps: [0] }),
          ],
        },
        { layer: "stack", layer_type: "GRUCell", order: 0, cell: 1, directions: [direction("forward", { stats_steps: [5], gradient_steps: [], map_steps: [] })] },
      ],
    },
    b: {
      layers: [
        { layer: "bi", layer_type: "LSTM", order: 0, cell: null, directions: [direction("forward", { stats_steps: [0, 20], gradient_steps: [], map_steps: [20] })] },
      ],
    },
  },
};

describe("activationGroups", () => {
  it("lists every run and direction of the layer with the routes' parameters", () => {
    const groups = activationGroups(INDEX, ["a", "b", "missing"], layerKey("bi", null));
    assert.deepEqual(
      groups.map((g) => [g.run, g.direction, g.group]),
      [
        ["a", "forward", { run: "a", layer: "bi", cell: null, direction: "forward" }],
        ["a", "backward", { run: "a", layer: "bi", cell: null, direction: "backward" }],
        ["b", "forward", { run: "b", layer: "bi", cell: null, direction: "forward" }],
      ],
    );
    assert.equal(groups[0].entry.units, 2);
  });

  it("finds one cell of stacked cells by its key", () => {
    const [group] = activationGroups(INDEX, ["a"], layerKey("stack", 1));
    assert.deepEqual(group.group, { run: "a", layer: "stack", cell: 1, direction: "forward" });
    assert.equal(group.layer_type, "GRUCell");
  });

  it("leaves out runs that are not selected", () => {
    assert.deepEqual(activationGroups(INDEX, ["b"], layerKey("bi", null)).map((g) => g.run), ["b"]);
  });
});

describe("activationLayers", () => {
  it("lists the layers once each, in model order (the smallest order of any run)", () => {
    assert.deepEqual(activationLayers(INDEX, ["a", "b"]), [
      { key: layerKey("bi", null), order: 0, label: "bi (LSTM)" },
      { key: layerKey("stack", 1), order: 0, label: "stack cell 1 (GRUCell)" },
    ]);
    assert.deepEqual(activationLayers(INDEX, []), []);
  });
});

describe("groupSteps and groupsByDirection", () => {
  const groups = activationGroups(INDEX, ["a", "b"], layerKey("bi", null));

  it("unites the steps of one kind", () => {
    assert.deepEqual(groupSteps(groups, "stats_steps"), [0, 10, 20]);
    assert.deepEqual(groupSteps(groups, "gradient_steps"), [10]);
    assert.deepEqual(groupSteps(groups, "map_steps"), [0, 20]);
  });

  it("groups by direction in first-seen order", () => {
    assert.deepEqual(
      groupsByDirection(groups).map(({ direction: d, groups: g }) => [d, g.map((x) => x.run)]),
      [
        ["forward", ["a", "b"]],
        ["backward", ["a"]],
      ],
    );
  });
});

describe("nonFinite", () => {
  const stats = {
    names: [
      { name: "input", steps: [0, 5], values: { nan_count: [0, 12], inf_count: [0, 1] } },
      { name: "hidden_state", steps: [0, 5], values: { nan_count: [0, 3], inf_count: [0, null] } },
    ],
  };

  it("sums NaN and Inf counts over the names at the step", () => {
    assert.deepEqual(nonFinite(stats, 5), { nan: 15, inf: 1, step: 5 });
  });

  it("is null for a finite step or one not logged", () => {
    assert.equal(nonFinite(stats, 0), null);
    assert.equal(nonFinite(stats, 7), null);
  });
});

describe("nameLabel", () => {
  it("names gates and states", () => {
    assert.deepEqual(
      ["forget", "cell_state", "hidden_state", "hidden_state_gradient"].map(nameLabel),
      ["forget gate", "cell state c_t", "hidden state h_t", "dL/dh_t"],
    );
  });
});
