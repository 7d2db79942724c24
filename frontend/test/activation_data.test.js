import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  activationGroups,
  groupSteps,
  groupsByDirection,
  nameLabel,
  nonFinite,
  withActivationLayers,
} from "../../tensorboard_plugin_weightgates/static/activation_data.js";

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

/** A layer entry of the tab (listLayers' shape) for `runs`. */
const entry = (layer, cell, runs) => ({ key: `${layer}/${cell}`, layer, cell, runs });

describe("activationGroups", () => {
  it("lists every run and direction of the layer with the routes' parameters", () => {
    const groups = activationGroups(INDEX, entry("bi", null, ["a", "b", "missing"]));
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

  it("finds one cell of stacked cells by its index", () => {
    const [group] = activationGroups(INDEX, entry("stack", 1, ["a"]));
    assert.deepEqual(group.group, { run: "a", layer: "stack", cell: 1, direction: "forward" });
    assert.equal(group.layer_type, "GRUCell");
    assert.deepEqual(activationGroups(INDEX, entry("stack", 0, ["a"])), []);
  });

  it("looks only in the entry's runs (layers the toolbar tells apart stay apart)", () => {
    assert.deepEqual(
      activationGroups(INDEX, entry("bi", null, ["b"])).map((g) => g.run),
      ["b"],
    );
  });
});

describe("withActivationLayers", () => {
  const weights = [{ key: "w-bi", layer: "bi", cell: null, order: 0, runs: ["a"], kernels: ["kernel"], kinds: ["weights"] }];

  it("adds the layers a run logs activations of but no weights, in model order", () => {
    const layers = withActivationLayers(weights, INDEX, ["a", "b"]);
    assert.deepEqual(
      layers.map((l) => [l.layer, l.cell, l.runs, l.kernels.length]),
      [
        ["bi", null, ["b"], 0],
        ["stack", 1, ["a"], 0],
        ["bi", null, ["a"], 1],
      ],
      "by order, then key",
    );
    const added = layers[0];
    assert.equal(added.layer_type, "LSTM");
    assert.deepEqual(added.directions, ["forward"]);
    assert.notEqual(added.key, "w-bi");
    assert.deepEqual(activationGroups(INDEX, added).map((g) => g.run), ["b"]);
  });

  it("adds nothing for runs not selected, or whose layers have weights", () => {
    assert.deepEqual(withActivationLayers(weights, INDEX, []), weights);
    const both = [...weights, { key: "w-stack", layer: "stack", cell: 1, order: 0, runs: ["a"], kernels: ["kernel"], kinds: [] }];
    assert.equal(withActivationLayers(both, INDEX, ["a"]).length, 2);
  });
});

describe("groupSteps and groupsByDirection", () => {
  const groups = activationGroups(INDEX, entry("bi", null, ["a", "b"]));

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
