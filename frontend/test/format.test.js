import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatTick, formatValue, niceTicks, safeFilename } from "../../tensorboard_plugin_weightgates/static/format.js";

describe("formatValue", () => {
  it("spells out non-finite values and missing ones", () => {
    assert.equal(formatValue(NaN), "NaN");
    assert.equal(formatValue(Infinity), "+Inf");
    assert.equal(formatValue(-Infinity), "−Inf");
    assert.equal(formatValue(null), "—");
  });

  it("keeps six significant digits, in exponent form when tiny or huge", () => {
    assert.equal(formatValue(0.123456789), "0.123457");
    assert.equal(formatValue(-2), "-2");
    assert.equal(formatValue(1.5e-7), "1.5e-7");
    assert.equal(formatValue(2e9), "2e+9");
    assert.equal(formatValue(0), "0");
  });
});

describe("niceTicks", () => {
  it("picks round steps of 1, 2 or 5 times a power of ten", () => {
    assert.deepEqual(niceTicks(0, 10, 5), { ticks: [0, 2, 4, 6, 8, 10], spacing: 2 });
    assert.deepEqual(niceTicks(-0.31, 0.32, 4).ticks, [-0.2, 0, 0.2]);
    assert.deepEqual(niceTicks(3, 3).ticks, [3]);
    assert.deepEqual(niceTicks(NaN, 1).ticks, []);
  });

  it("labels ticks with the digits their spacing needs", () => {
    assert.equal(formatTick(0.2, 0.2), "0.2");
    assert.equal(formatTick(1500, 500), "1500");
    assert.equal(formatTick(0.05, 0.05), "0.05");
    assert.equal(formatTick(2e-5, 1e-5), "2e-5");
  });
});

describe("safeFilename", () => {
  it("keeps file names to safe characters", () => {
    assert.equal(safeFilename("<img src=x onerror=alert(1)>/train_kernel"), "img_src_x_onerror_alert_1_train_kernel");
    assert.equal(safeFilename("../../etc/passwd"), "etc_passwd");
    assert.equal(safeFilename("///"), "weightgates");
  });
});
