#!/usr/bin/env node
// Builds the Weight Gates tab: copies the plain ES modules and CSS of frontend/src into
// tensorboard_plugin_weightgates/static/, which is committed so that `pip install` needs no
// Node. Each built file starts with a line saying where its source is.
//
//   node frontend/build.mjs           write the build
//   node frontend/build.mjs --check   fail (exit 1) if the committed build differs from what
//                                     the sources build to; writes nothing
//
// Besides copying, the build checks that every relative import names a source file and that
// only file types the plugin's static route serves are present.

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, extname, join, posix, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const SOURCE_DIR = join(ROOT, "frontend", "src");
const OUTPUT_DIR = join(ROOT, "tensorboard_plugin_weightgates", "static");

/** Banner per file type; the static route (plugin.py) serves only these types. */
const BANNERS = {
  ".js": (source) => `// Built by frontend/build.mjs from ${source}; edit that file, not this one.\n`,
  ".css": (source) => `/* Built by frontend/build.mjs from ${source}; edit that file, not this one. */\n`,
};

const IMPORT_PATTERN = /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+)["']/g;

function listFiles(dir) {
  if (!existsSync(dir)) return [];
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path));
    else files.push(path);
  }
  return files.sort();
}

function toPosix(path) {
  return path.split(sep).join("/");
}

/** Maps each output path (relative, POSIX) to its content; throws on a broken source tree. */
function buildOutputs() {
  const sources = listFiles(SOURCE_DIR).map((path) => toPosix(relative(SOURCE_DIR, path)));
  if (!sources.includes("index.js")) {
    throw new Error(`${SOURCE_DIR} has no index.js (TensorBoard loads static/index.js)`);
  }
  const problems = [];
  const outputs = new Map();
  for (const name of sources) {
    const banner = BANNERS[extname(name)];
    if (!banner) {
      problems.push(`${name}: only ${Object.keys(BANNERS).join(", ")} files are built`);
      continue;
    }
    const text = readFileSync(join(SOURCE_DIR, name), "utf8");
    if (extname(name) === ".js") {
      for (const [, specifier] of text.matchAll(IMPORT_PATTERN)) {
        const target = posix.normalize(posix.join(posix.dirname(name), specifier));
        if (!sources.includes(target)) problems.push(`${name}: imports missing ${specifier}`);
      }
    }
    outputs.set(name, banner(`frontend/src/${name}`) + text);
  }
  if (problems.length) throw new Error(`cannot build the frontend:\n  ${problems.join("\n  ")}`);
  return outputs;
}

function check(outputs) {
  const built = listFiles(OUTPUT_DIR).map((path) => toPosix(relative(OUTPUT_DIR, path)));
  const stale = [];
  for (const [name, content] of outputs) {
    const path = join(OUTPUT_DIR, name);
    if (!existsSync(path)) stale.push(`missing: ${name}`);
    else if (readFileSync(path, "utf8") !== content) stale.push(`out of date: ${name}`);
  }
  for (const name of built) {
    if (!outputs.has(name)) stale.push(`not built from a source: ${name}`);
  }
  if (stale.length) {
    console.error(
      `tensorboard_plugin_weightgates/static/ is stale against frontend/src/:\n  ${stale.join("\n  ")}\n` +
        "Run `make frontend` and commit the result.",
    );
    return 1;
  }
  console.log(`frontend build is up to date (${outputs.size} files)`);
  return 0;
}

function write(outputs) {
  rmSync(OUTPUT_DIR, { recursive: true, force: true });
  for (const [name, content] of outputs) {
    const path = join(OUTPUT_DIR, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
  console.log(`built ${outputs.size} files into ${toPosix(relative(ROOT, OUTPUT_DIR))}/`);
  return 0;
}

function main(args) {
  const unknown = args.filter((arg) => arg !== "--check");
  if (unknown.length) {
    console.error(`usage: node frontend/build.mjs [--check] (unknown: ${unknown.join(" ")})`);
    return 2;
  }
  let outputs;
  try {
    outputs = buildOutputs();
  } catch (error) {
    console.error(error.message);
    return 1;
  }
  return args.includes("--check") ? check(outputs) : write(outputs);
}

process.exitCode = main(process.argv.slice(2));
