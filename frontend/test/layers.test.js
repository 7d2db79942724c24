import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  gateIndexAt,
  gateRanges,
  kernelSlices,
  layerKey,
  layerLabel,
  listLayers,
  pickStep,
  stepAtOrBefore,
  unionSteps,
} from "../../tensorboard_plugin_weightgates/static/layers.js";

const kernel = (name, kinds) => ({
  kernel: name,
  shape: [3, 8],
  gates: ["update", "reset"],
  gate_boundaries: [0, 4, 8],
  kinds,
});
const weights = (snapshot) => ({ weights: { stats_steps: [0, 10], snapshot_steps: snapshot } });

const index = {
  runs: {
    a: {
      layers: [
        {
          layer: "head",
          layer_type: "Dense",
          order: 2,
          cell: null,
          directions: [{ direction: "forward", kernels: [kernel("kernel", weights([10]))] }],
        },
        {
          layer: "encoder",
          layer_type: "GRU",
          order: 0,
          cell: null,
          directions: [
            { direction: "forward", kernels: [kernel("kernel", weights([0, 10])), kernel("bias", weights([]))] },
            { direction: "backward", kernels: [kernel("kernel", weights([10]))] },
          ],
        },
      ],
    },
    b: {
      layers: [
        {
          layer: "encoder",
          layer_type: "GRU",
          order: 0,
          cell: null,
          directions: [
            {
              direction: "forward",
              kernels: [kernel("kernel", { ...weights([5]), gradients: { stats_steps: [5], snapshot_steps: [5] } })],
            },
          ],
        },
        {
          layer: "stack",
          layer_type: "LSTM",
          order: 1,
          cell: 1,
          directions: [{ direction: "forward", kernels: [kernel("kernel", weights([5]))] }],
        },
      ],
    },
  },
};

const ENCODER = layerKey(index.runs.b.layers[0]);
const STACK = layerKey(index.runs.b.layers[1]);

describe("listLayers", () => {
  it("merges the runs' layers in model order", () => {
    const layers = listLayers(index, ["a", "b"]);
    assert.deepEqual(
      layers.map((l) => l.key),
      [ENCODER, STACK, layerKey(index.runs.a.layers[0])],
    );
    const encoder = layers[0];
    assert.deepEqual(encoder.directions, ["forward", "backward"]);
    assert.deepEqual(encoder.kernels, ["bias", "kernel"], "by name without kernel_order");
    assert.deepEqual(encoder.kinds, ["weights", "gradients"]);
    assert.deepEqual(encoder.runs, ["a", "b"]);
  });

  it("lists only the given runs' layers", () => {
    assert.deepEqual(
      listLayers(index, ["a"]).map((l) => l.layer),
      ["encoder", "head"],
    );
    assert.deepEqual(listLayers(index, []), []);
  });

  it("labels cells of stacked cells", () => {
    const stack = listLayers(index, ["b"])[1];
    assert.equal(layerLabel(stack), "stack cell 1 (LSTM)");
    assert.equal(stack.key, STACK);
    assert.equal(stack.ambiguous, false);
  });

  it("lists layers of one name but other types or shapes apart, labelled by shape", () => {
    const lstm = (units, inputs) => ({
      layer: "lstm",
      layer_type: "LSTM",
      order: 0,
      cell: null,
      bidirectional: false,
      directions: [
        {
          direction: "forward",
          kernels: [
            { ...kernel("recurrent_kernel", weights([1])), kernel_order: 1, variable_shape: [units, 4 * units] },
            { ...kernel("kernel", weights([1])), kernel_order: 0, variable_shape: [inputs, 4 * units] },
          ],
        },
      ],
    });
    const three = { runs: { x: { layers: [lstm(16, 8)] }, y: { layers: [lstm(4, 3)] }, z: { layers: [lstm(4, 3)] } } };
    const layers = listLayers(three, ["x", "y", "z"]);
    assert.equal(layers.length, 2);
    assert.deepEqual(layers.map((l) => l.runs).sort(), [["x"], ["y", "z"]]);
    assert.ok(layers.every((l) => l.ambiguous));
    const labels = layers.map((l) => layerLabel(l, { withShape: l.ambiguous })).sort();
    assert.deepEqual(labels, ["lstm (LSTM, kernel 3×16)", "lstm (LSTM, kernel 8×64)"]);
    assert.deepEqual(layers[0].kernels, ["kernel", "recurrent_kernel"], "storage order, not the listed one");
    assert.equal(layers[0].bidirectional, false);
  });

  it("keeps version-1 kernels (no kernel_order) in the listed order after ordered ones", () => {
    const layers = listLayers(index, ["a"]);
    assert.deepEqual(layers[0].kernels, ["bias", "kernel"]);
  });
});

describe("kernelSlices", () => {
  it("gives one slice per run and direction with the API's parameters", () => {
    const slices = kernelSlices(index, ["a", "b"], ENCODER, "kernel", "weights");
    assert.deepEqual(
      slices.map((s) => [s.run, s.direction]),
      [
        ["a", "forward"],
        ["a", "backward"],
        ["b", "forward"],
      ],
    );
    assert.deepEqual(slices[1].slice, {
      run: "a",
      layer: "encoder",
      cell: null,
      direction: "backward",
      kernel: "kernel",
      kind: "weights",
    });
    assert.deepEqual(slices[0].steps.snapshot_steps, [0, 10]);
  });

  it("leaves out runs without the kind", () => {
    assert.deepEqual(
      kernelSlices(index, ["a", "b"], ENCODER, "kernel", "gradients").map((s) => s.run),
      ["b"],
    );
  });

  it("passes a stacked cell's index", () => {
    assert.equal(kernelSlices(index, ["b"], STACK, "kernel", "weights")[0].slice.cell, 1);
  });
});

describe("steps", () => {
  it("unites step lists in order", () => {
    assert.deepEqual(unionSteps([[10, 0], [5, 10], undefined]), [0, 5, 10]);
  });

  it("picks the latest step at or before the target, else the first", () => {
    const steps = [0, 10, 20];
    assert.equal(pickStep(steps, 15), 10);
    assert.equal(pickStep(steps, 20), 20);
    assert.equal(pickStep(steps, 99), 20);
    assert.equal(pickStep(steps, -5), 0);
    assert.equal(pickStep(steps, null), 20);
    assert.equal(pickStep([], 3), null);
  });

  it("has no step at or before a target before the first", () => {
    const steps = [3, 10];
    assert.equal(stepAtOrBefore(steps, 0), null);
    assert.equal(stepAtOrBefore(steps, 3), 3);
    assert.equal(stepAtOrBefore(steps, 9), 3);
    assert.equal(stepAtOrBefore(steps, null), 10);
    assert.equal(stepAtOrBefore([], 5), null);
  });
});

describe("gate ranges", () => {
  it("turns boundaries into labelled column ranges", () => {
    assert.deepEqual(gateRanges(["update", "reset"], [0, 4, 8]), [
      { gate: "update", label: "update", start: 0, end: 4 },
      { gate: "reset", label: "reset", start: 4, end: 8 },
    ]);
    assert.equal(gateRanges([null], [0, 5], "kernel")[0].label, "kernel");
  });

  it("finds the gate of a column", () => {
    assert.equal(gateIndexAt([0, 4, 8], 0), 0);
    assert.equal(gateIndexAt([0, 4, 8], 4), 1);
    assert.equal(gateIndexAt([0, 4, 8], 8), -1);
  });
});
