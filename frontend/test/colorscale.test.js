import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  INF_COLOR,
  NAN_COLOR,
  colorOf,
  divergingColor,
  legendLabels,
  limitText,
  magnitudeColor,
  rasterize,
} from "../../tensorboard_plugin_weightgates/static/colorscale.js";

const brightness = ([r, g, b]) => r + g + b;

describe("diverging scale", () => {
  it("is near-white and neutral at zero", () => {
    const [r, g, b] = divergingColor(0);
    assert.ok(Math.min(r, g, b) >= 240, `0 is ${[r, g, b]}`);
    assert.ok(Math.max(r, g, b) - Math.min(r, g, b) <= 4);
  });

  it("is blue for negative and red for positive values, darker further from zero", () => {
    for (const t of [0.2, 0.6, 1]) {
      const [pr, , pb] = divergingColor(t);
      const [nr, , nb] = divergingColor(-t);
      assert.ok(pr > pb, `+${t} is red`);
      assert.ok(nb > nr, `-${t} is blue`);
    }
    assert.ok(brightness(divergingColor(1)) < brightness(divergingColor(0.5)));
    assert.ok(brightness(divergingColor(-1)) < brightness(divergingColor(-0.5)));
  });

  it("clamps values beyond the limit to the end colours", () => {
    assert.deepEqual(colorOf(5, 1, "diverging"), divergingColor(1));
    assert.deepEqual(colorOf(-5, 1, "diverging"), divergingColor(-1));
  });
});

describe("magnitude scale", () => {
  it("goes from white at 0 to black at the limit, whatever the sign", () => {
    assert.deepEqual(magnitudeColor(0), [255, 255, 255]);
    assert.deepEqual(magnitudeColor(1), [0, 0, 0]);
    assert.deepEqual(colorOf(-0.5, 1, "magnitude"), colorOf(0.5, 1, "magnitude"));
  });
});

describe("non-finite values", () => {
  it("get colours of their own, in both scales", () => {
    for (const scale of ["diverging", "magnitude"]) {
      assert.deepEqual(colorOf(NaN, 1, scale), NAN_COLOR);
      assert.deepEqual(colorOf(Infinity, 1, scale), INF_COLOR);
      assert.deepEqual(colorOf(-Infinity, 1, scale), INF_COLOR);
    }
    assert.notDeepEqual(NAN_COLOR, INF_COLOR);
  });
});

describe("rasterize", () => {
  it("writes one opaque pixel per cell with per-column limits and counts NaN and Inf", () => {
    const values = Float32Array.from([0, 1, -1, NaN, 2, -Infinity]);
    const limits = [1, 1, 1, 2, 2, 2];
    const out = new Uint8ClampedArray(values.length * 4);
    const counts = rasterize(out, values, 2, 3, limits, "diverging");
    assert.deepEqual(counts, { nan: 1, inf: 1 });
    const pixel = (i) => [...out.slice(i * 4, i * 4 + 3)];
    assert.deepEqual(pixel(0), divergingColor(0));
    assert.deepEqual(pixel(1), divergingColor(1));
    assert.deepEqual(pixel(2), divergingColor(-1));
    assert.deepEqual(pixel(3), [...NAN_COLOR]);
    assert.deepEqual(pixel(4), divergingColor(1), "2 under limit 2 is the end colour");
    assert.deepEqual(pixel(5), [...INF_COLOR]);
    for (let i = 0; i < 6; i++) assert.equal(out[i * 4 + 3], 255);
  });

  it("agrees with colorOf within one lookup step", () => {
    const values = Float32Array.from({ length: 41 }, (_, i) => (i - 20) / 17);
    const out = new Uint8ClampedArray(values.length * 4);
    rasterize(out, values, 1, values.length, new Array(values.length).fill(1), "magnitude");
    values.forEach((v, i) => {
      const expected = colorOf(v, 1, "magnitude");
      assert.ok(Math.abs(out[i * 4] - expected[0]) <= 1, `${v}`);
    });
  });
});

describe("labels", () => {
  const format = (x) => String(Number(x.toPrecision(3)));

  it("says a greyscale range as a magnitude, a diverging one as ±", () => {
    assert.equal(limitText(0.6094, "magnitude", format), "|x| ≤ 0.609");
    assert.equal(limitText(0.6094, "diverging", format), "±0.609");
  });

  it("labels the colour bar, in words when ranges differ or nothing is finite", () => {
    assert.deepEqual(legendLabels("diverging", 0.5, "kernel", true, format), [
      ["-0.5", "left"],
      ["0", "center"],
      ["+0.5", "right"],
    ]);
    assert.deepEqual(
      legendLabels("magnitude", null, "gate", true, format).map(([text]) => text),
      ["0", "max|x| of gate"],
    );
    assert.deepEqual(legendLabels("diverging", 0, "kernel", false, format), [["no finite values", "left"]]);
  });
});
