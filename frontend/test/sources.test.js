// Rules of the tab's sources in tensorboard_plugin_weightgates/static/ that a reviewer would
// otherwise check by eye (see STYLE.md). TensorBoard loads these files as they are, with no build
// step, so a broken import or a file the plugin does not serve shows up only in a browser.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { extname, join, posix } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = fileURLToPath(new URL("../../tensorboard_plugin_weightgates/", import.meta.url));
const STATIC = join(PACKAGE, "static");

/** Every file under static/, as a POSIX path relative to it. */
const files = readdirSync(STATIC, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => posix.relative(STATIC, join(entry.parentPath ?? entry.path, entry.name)))
  .sort();
const sources = files
  .filter((name) => name.endsWith(".js"))
  .map((name) => ({ name, text: readFileSync(join(STATIC, name), "utf8") }));

/** The extensions the plugin's static route serves: the keys of STATIC_CONTENT_TYPES, read from
 * the one Python module that defines it, so that the list exists once. */
function servedExtensions() {
  const definitions = readdirSync(PACKAGE, { recursive: true })
    .filter((name) => name.endsWith(".py"))
    .map((name) => readFileSync(join(PACKAGE, name), "utf8"))
    .flatMap((text) => [...text.matchAll(/^STATIC_CONTENT_TYPES\s*=\s*\{([^}]*)\}/gm)]);
  assert.equal(definitions.length, 1, "expected one STATIC_CONTENT_TYPES = {...} in the package");
  return [...definitions[0][1].matchAll(/["'](\.[a-z0-9]+)["']\s*:/g)].map(([, ext]) => ext);
}

/** The relative files a module names: static and dynamic imports, and
 * `new URL("./file", import.meta.url)` (how index.js finds its stylesheet). */
function referencedFiles(text) {
  const patterns = [
    /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g,
    /\bnew URL\(\s*["'](\.{1,2}\/[^"']*[^/"'])["']\s*,\s*import\.meta\.url\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...text.matchAll(pattern)].map(([, file]) => file));
}

describe("frontend sources", () => {
  it("hold only the file types the plugin's static route serves", () => {
    const served = servedExtensions();
    assert.ok(served.includes(".js") && served.includes(".css"), served.join(" "));
    for (const name of files) {
      const extension = extname(name).toLowerCase();
      assert.ok(served.includes(extension), `${name}: not served (only ${served.join(" ")})`);
    }
  });

  it("name only files that exist in static/", () => {
    assert.ok(sources.length > 0);
    for (const { name, text } of sources) {
      for (const specifier of referencedFiles(text)) {
        const target = posix.normalize(posix.join(posix.dirname(name), specifier));
        assert.ok(files.includes(target), `${name} names missing ${specifier}`);
      }
    }
  });

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
