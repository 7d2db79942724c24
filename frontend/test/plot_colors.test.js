import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PLOT_COLOR_DEFAULTS, plotColors } from "../../tensorboard_plugin_weightgates/static/plot_colors.js";

describe("plotColors", () => {
  it("reads each --wg- property and falls back where it is not set", () => {
    const set = { "--wg-fg": " #eeeeee ", "--wg-bg": "#121212" };
    const colors = plotColors({ getPropertyValue: (name) => set[name] ?? "" });
    assert.equal(colors.fg, "#eeeeee");
    assert.equal(colors.bg, "#121212");
    assert.equal(colors.muted, PLOT_COLOR_DEFAULTS.muted);
    assert.deepEqual(Object.keys(colors), Object.keys(PLOT_COLOR_DEFAULTS));
  });

  it("gives the defaults without a style", () => {
    assert.deepEqual(plotColors(null), { ...PLOT_COLOR_DEFAULTS });
  });
});
