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

describe("listLayers", () => {
  it("merges the runs' layers in model order", () => {
    const layers = listLayers(index, ["a", "b"]);
    assert.deepEqual(
      layers.map((l) => l.key),
      ["encoder", layerKey("stack", 1), "head"],
    );
    const encoder = layers[0];
    assert.deepEqual(encoder.directions, ["forward", "backward"]);
    assert.deepEqual(encoder.kernels, ["kernel", "bias"]);
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
    assert.notEqual(layerKey("stack", 1), layerKey("stack", 0));
    assert.equal(layerKey("stack", null), "stack");
  });
});

describe("kernelSlices", () => {
  it("gives one slice per run and direction with the API's parameters", () => {
    const slices = kernelSlices(index, ["a", "b"], "encoder", "kernel", "weights");
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
      kernelSlices(index, ["a", "b"], "encoder", "kernel", "gradients").map((s) => s.run),
      ["b"],
    );
  });

  it("passes a stacked cell's index", () => {
    assert.equal(kernelSlices(index, ["b"], layerKey("stack", 1), "kernel", "weights")[0].slice.cell, 1);
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
