import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { hostBody, resolveDark } from "../../tensorboard_plugin_weightgates/static/theme.js";

describe("resolveDark", () => {
  it("follows TensorBoard where its page can be read, else the browser", () => {
    assert.equal(resolveDark(true, false), true);
    assert.equal(resolveDark(false, true), false, "TensorBoard set to light in a dark browser");
    assert.equal(resolveDark(null, true), true);
    assert.equal(resolveDark(null, undefined), false);
  });
});

describe("hostBody", () => {
  it("reads the parent's body when same-origin and nothing otherwise", () => {
    const body = { classList: new Set() };
    const framed = { parent: { document: { body } } };
    framed.top = framed.parent;
    assert.equal(hostBody(framed), body);
    const alone = {};
    alone.parent = alone;
    alone.top = alone;
    assert.equal(hostBody(alone), null);
    const crossOrigin = {
      parent: {
        get document() {
          throw new Error("SecurityError: blocked a frame with origin");
        },
      },
    };
    crossOrigin.top = crossOrigin.parent;
    assert.equal(hostBody(crossOrigin), null);
  });
});
