import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { extent, padDomain, quantile, valuesDomain, within } from "../../tensorboard_plugin_weightgates/static/domains.js";

describe("quantile", () => {
  it("interpolates linearly between ranks", () => {
    assert.equal(quantile([0, 10], 0.5), 5);
    assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
    assert.equal(quantile([7], 0.95), 7);
    assert.equal(quantile([], 0.5), undefined);
  });
});

describe("extent", () => {
  // 40 sane values in [-1, 1] and two from a run that blew up.
  const sane = Array.from({ length: 40 }, (_, i) => -1 + (2 * i) / 39);
  const values = [...sane, 2e8, -5e7, null, NaN];

  it("spans minimum to maximum of the finite values", () => {
    assert.deepEqual(extent(values), [-5e7, 2e8]);
    assert.equal(extent([null, NaN]), null);
  });

  it("keeps the bulk of the values, with a margin, when ignoring outliers", () => {
    // 5th to 95th percentile of 44 values is about [-0.9, 0.9]; with half its span each side,
    // about [-1.8, 1.8]: every sane value, none of the blown-up ones.
    const [low, high] = extent(values, values, { ignoreOutliers: true });
    assert.ok(low > -2 && low <= -1, `low ${low}`);
    assert.ok(high < 2 && high >= 1, `high ${high}`);
  });

  it("never reaches beyond the values when ignoring outliers", () => {
    assert.deepEqual(extent([0, 1, 2, 3], [0, 1, 2, 3], { ignoreOutliers: true }), [0, 3]);
  });

  it("takes lows and highs from separate lists (histogram edges)", () => {
    assert.deepEqual(extent([-1, -2], [3, 1]), [-2, 3]);
  });
});

describe("padDomain", () => {
  it("widens a range by a fraction and a single value around itself", () => {
    assert.deepEqual(padDomain([0, 10], 0.1), [-1, 11]);
    assert.deepEqual(padDomain([5, 5]), [4.5, 5.5]);
    assert.deepEqual(padDomain([0, 0], 0.05, 1e-3), [-1e-3, 1e-3]);
    assert.equal(padDomain(null), null);
  });

  it("pads line charts 5%, with room around a constant 0", () => {
    assert.deepEqual(valuesDomain([[0, null], [0]]), [-1, 1]);
    assert.deepEqual(valuesDomain([[0, 10]]), [-0.5, 10.5]);
  });
});

describe("within", () => {
  it("allows 1% of the domain's width as tolerance", () => {
    assert.equal(within(-1, 1, [-1, 1]), true);
    assert.equal(within(-1.01, 1, [-1, 1]), true);
    assert.equal(within(-1.1, 1, [-1, 1]), false);
  });
});
