// Entry point of the Weight Gates tab. TensorBoard serves this module at
// /data/plugin/weightgates/static/index.js and calls `render()` inside the tab's iframe
// (frontend_metadata es_module_path). Its CSP allows same-origin scripts and styles only, so
// the stylesheet is a file linked from here, and every module is a sibling file.

import { Api } from "./api.js";
import { App, prefixedStorage } from "./app.js";
import { connectToHost } from "./host.js";
import { followTheme } from "./theme.js";

const STORAGE_PREFIX = "tensorboard.weightgates.";

function linkStylesheet(href) {
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  const loaded = new Promise((resolve) => {
    link.addEventListener("load", resolve, { once: true });
    link.addEventListener("error", resolve, { once: true });
  });
  document.head.append(link);
  return loaded;
}

/** Builds the tab in `document.body`; resolves with the running App. */
export async function render() {
  document.documentElement.lang = "en";
  await linkStylesheet(new URL("./style.css", import.meta.url).href);
  let app = null;
  // Canvases take their colours when drawn: draw again when TensorBoard's theme flips.
  followTheme(window, () => app?.render());
  app = new App(document.body, {
    api: new Api(new URL("../", import.meta.url).href),
    host: connectToHost(window),
    storage: prefixedStorage(STORAGE_PREFIX),
  });
  await app.start();
  return app;
}
