import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { THEME_DEFAULTS, themeColors } from "../../tensorboard_plugin_weightgates/static/theme.js";

describe("themeColors", () => {
  it("reads each --wg- property and falls back where it is not set", () => {
    const set = { "--wg-fg": " #eeeeee ", "--wg-bg": "#121212" };
    const colors = themeColors({ getPropertyValue: (name) => set[name] ?? "" });
    assert.equal(colors.fg, "#eeeeee");
    assert.equal(colors.bg, "#121212");
    assert.equal(colors.muted, THEME_DEFAULTS.muted);
    assert.deepEqual(Object.keys(colors), Object.keys(THEME_DEFAULTS));
  });

  it("gives the defaults without a style", () => {
    assert.deepEqual(themeColors(null), { ...THEME_DEFAULTS });
  });
});
