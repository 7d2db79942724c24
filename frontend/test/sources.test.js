// Rules of frontend/src that a reviewer would otherwise check by eye (see STYLE.md).
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));
const sources = readdirSync(SRC)
  .filter((name) => name.endsWith(".js"))
  .map((name) => ({ name, text: readFileSync(join(SRC, name), "utf8") }));

describe("frontend sources", () => {
  it("never parse text as HTML", () => {
    for (const { name, text } of sources) {
      assert.doesNotMatch(
        text,
        /\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment)\b/,
        name,
      );
    }
  });

  it("never evaluate strings as code (TensorBoard's CSP would block it anyway)", () => {
    for (const { name, text } of sources) {
      assert.doesNotMatch(text, /\beval\(|new Function\(|set(Timeout|Interval)\(\s*["'`]/, name);
    }
  });

  it("import only sibling modules, never a CDN", () => {
    for (const { name, text } of sources) {
      for (const [, specifier] of text.matchAll(/\bfrom\s*["']([^"']+)["']/g)) {
        assert.match(specifier, /^\.\/[a-z_]+\.js$/, `${name} imports ${specifier}`);
      }
    }
  });

  it("export render() from index.js, as TensorBoard calls it", async () => {
    const text = sources.find((s) => s.name === "index.js").text;
    assert.match(text, /export async function render\(\)/);
  });
});
