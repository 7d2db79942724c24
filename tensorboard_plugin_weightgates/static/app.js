// The tab: holds the state (runs, selection, layer, kernel, kind, view and view settings),
// keeps it in localStorage, follows TensorBoard's run list and reloads, and hands each view
// what it shows.

import { withActivationLayers } from "./activation_data.js";
import { ActivationsView, DEFAULT_ACTIVATION_SETTINGS } from "./activations_view.js";
import { h, messagePanel, replaceChildren } from "./dom.js";
import { DEFAULT_HEALTH_SETTINGS, HealthView } from "./health.js";
import { DEFAULT_HEATMAP_SETTINGS, HeatmapView } from "./heatmap.js";
import { DEFAULT_HISTOGRAM_SETTINGS, HistogramView } from "./histograms.js";
import { MessageType } from "./host.js";
import { LayerPicker, VIEWS } from "./layer_picker.js";
import { listLayers } from "./layers.js";
import { RunSelector, runProblems } from "./run_selector.js";
import { assignColors, compileFilter, orderRuns, parseSelection, selectedRuns, setSelected, shownRuns } from "./runs.js";

const SETUP_CODE = [
  "from tensorboard_plugin_weightgates import WeightGatesCallback",
  'model.fit(..., callbacks=[WeightGatesCallback(log_dir="logs/run1")])',
  "tensorboard --logdir logs",
];

const HOST_TIMEOUT_MS = 3000;
const EMPTY_INDEX = Object.freeze({ runs: {}, errors: {} });
/** Views with a step slider that the arrow keys move. */
const STEPPED_VIEWS = new Set(["heatmap", "activations"]);
const RELOAD_DEBOUNCE_MS = 150;

/** localStorage under a prefix; silently memory-only where storage is unavailable. */
export function prefixedStorage(prefix, storage = globalThis.localStorage) {
  const memory = new Map();
  return {
    get(key) {
      try {
        return storage.getItem(prefix + key);
      } catch {
        return memory.get(key) ?? null;
      }
    },
    set(key, value) {
      try {
        storage.setItem(prefix + key, value);
      } catch {
        memory.set(key, value);
      }
    },
  };
}

function loadUiState(json) {
  const defaults = {
    filter: "",
    view: "heatmap",
    layerKey: null,
    kernel: null,
    kind: "weights",
    heatmap: { ...DEFAULT_HEATMAP_SETTINGS },
    histograms: { ...DEFAULT_HISTOGRAM_SETTINGS },
    health: { ...DEFAULT_HEALTH_SETTINGS },
    activations: { ...DEFAULT_ACTIVATION_SETTINGS },
  };
  try {
    const saved = JSON.parse(json ?? "{}") ?? {};
    return {
      ...defaults,
      ...pick(saved, ["filter", "view", "layerKey", "kernel", "kind"]),
      heatmap: { ...defaults.heatmap, ...pick(saved.heatmap, Object.keys(defaults.heatmap)), step: null },
      histograms: { ...defaults.histograms, ...pick(saved.histograms, Object.keys(defaults.histograms)) },
      health: { ...defaults.health, ...pick(saved.health, Object.keys(defaults.health)), step: null },
      activations: {
        ...defaults.activations,
        ...pick(saved.activations, Object.keys(defaults.activations)),
        step: null,
      },
    };
  } catch {
    return defaults;
  }
}

function pick(object, keys) {
  if (!object || typeof object !== "object") return {};
  return Object.fromEntries(keys.filter((key) => key in object).map((key) => [key, object[key]]));
}

export class App {
  /** `api`: an Api; `host`: a HostChannel or null outside TensorBoard; `storage`: prefixedStorage. */
  constructor(root, { api, host, storage }) {
    this.root = root;
    this.api = api;
    this.host = host;
    this.storage = storage;
    this.index = null;
    this.activationIndex = EMPTY_INDEX;
    this.indexError = null;
    this.reloadError = null;
    this.hostRuns = null;
    this.selection = parseSelection(storage.get("runs"));
    this.ui = loadUiState(storage.get("ui"));
    this.reloadTimer = null;

    this.runSelector = new RunSelector({
      onSelect: (runs, selected) => {
        this.selection = setSelected(this.selection, runs, selected);
        this.storage.set("runs", JSON.stringify(this.selection));
        this.render();
      },
      onFilter: (filter) => this.change({ filter }),
    });
    this.picker = new LayerPicker((partial) => this.change(partial));
    this.views = {
      heatmap: new HeatmapView((partial) => this.changeView("heatmap", partial)),
      histograms: new HistogramView((partial) => this.changeView("histograms", partial)),
      health: new HealthView((partial) => this.changeView("health", partial)),
      activations: new ActivationsView(
        (partial) => this.changeView("activations", partial),
        (layerKey) => this.change({ layerKey }),
      ),
    };
    this.status = h("div", { class: "wg-status", role: "status" });
    this.content = h(
      "div",
      { class: "wg-content" },
      Object.values(this.views).map((view) => view.element),
    );
    this.message = h("div", { class: "wg-main-message" });
    this.sidebar = h("aside", { class: "wg-sidebar" }, this.runSelector.element);
    this.main = h("main", { class: "wg-main" }, this.status, this.picker.element, this.message, this.content);
    this.element = h("div", { class: "wg-app" }, this.sidebar, this.main);
    root.append(this.element);
    document.addEventListener("keydown", (event) => this.onKey(event));
  }

  async start() {
    if (this.host) {
      this.host.listen(MessageType.RUNS_CHANGED, (runs) => {
        if (Array.isArray(runs)) this.hostRuns = runs;
        this.scheduleReload();
      });
      this.host.listen(MessageType.DATA_RELOADED, () => this.scheduleReload());
      this.host
        .request(MessageType.GET_RUNS, null, HOST_TIMEOUT_MS)
        .then((runs) => {
          if (Array.isArray(runs)) {
            this.hostRuns = runs;
            if (this.index) this.render();
          }
        })
        .catch(() => {
          // Not inside TensorBoard's page (or an older one): runs keep name order.
        });
    }
    this.render();
    await this.loadIndex();
  }

  scheduleReload() {
    clearTimeout(this.reloadTimer);
    this.reloadTimer = setTimeout(() => this.loadIndex({ reload: true }), RELOAD_DEBOUNCE_MS);
  }

  async loadIndex({ reload = false } = {}) {
    if (reload) this.api.clearCache();
    try {
      [this.index, this.activationIndex] = await Promise.all([
        this.api.index(),
        // An older server without the activations route still shows weights.
        this.api.activations().catch(() => EMPTY_INDEX),
      ]);
      this.indexError = null;
      this.reloadError = null;
    } catch (error) {
      if (this.index) this.reloadError = error;
      else this.indexError = error;
    }
    this.render();
  }

  change(partial) {
    Object.assign(this.ui, partial);
    this.save();
    this.render();
  }

  changeView(view, partial) {
    this.ui[view] = { ...this.ui[view], ...partial };
    this.save();
    this.render();
  }

  save() {
    this.storage.set("ui", JSON.stringify(this.ui));
  }

  onKey(event) {
    if (!STEPPED_VIEWS.has(this.ui.view) || event.target !== document.body) return;
    if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
      event.preventDefault();
      this.views[this.ui.view].stepBy(event.key === "ArrowLeft" ? -1 : 1);
    }
  }

  /** Shows a message instead of the views; `withRuns` keeps the run selector beside it. */
  showMessage(message, { withRuns = false } = {}) {
    this.sidebar.hidden = !withRuns;
    this.picker.element.hidden = true;
    this.content.hidden = true;
    replaceChildren(this.message, message);
  }

  render() {
    replaceChildren(
      this.status,
      this.reloadError
        ? h("div", { class: "wg-reload-error", role: "alert", text: `Reloading failed: ${this.reloadError.message}` })
        : null,
    );
    if (!this.index) {
      if (this.indexError) {
        this.showMessage(
          messagePanel(
            "error",
            "Could not load the Weight Gates data",
            this.indexError.message,
            h("button", {
              type: "button",
              class: "wg-button",
              text: "Retry",
              onclick: () => this.loadIndex({ reload: true }),
            }),
          ),
        );
      } else {
        this.showMessage(h("div", { class: "wg-loading", text: "Loading Weight Gates data…" }));
      }
      return;
    }
    const runs = orderRuns([...Object.keys(this.index.runs), ...Object.keys(this.activationIndex.runs)], this.hostRuns);
    const errors = mergeErrors(this.index.errors, this.activationIndex.errors);
    if (runs.length === 0) {
      this.showMessage(noDataMessage(errors));
      return;
    }
    const colors = assignColors(runs, this.hostRuns);
    this.runSelector.update({
      runs,
      colors,
      selection: this.selection,
      filter: this.ui.filter,
      errors,
    });
    const selected = shownRuns(runs, this.selection, this.ui.filter);
    if (selected.length === 0) {
      const ticked = selectedRuns(runs, this.selection).length > 0;
      const filter = compileFilter(this.ui.filter);
      this.showMessage(
        ticked
          ? messagePanel(
              "empty",
              "No run matches the filter",
              filter.error ?? "The filter hides every ticked run: change or clear it.",
            )
          : messagePanel("empty", "No run selected", "Tick a run in the list on the left to see its layers."),
        { withRuns: true },
      );
      return;
    }
    const layers = withActivationLayers(listLayers(this.index, selected), this.activationIndex, selected);
    if (layers.length === 0) {
      this.showMessage(messagePanel("empty", "The selected runs have no layers logged"), { withRuns: true });
      return;
    }
    const layer = layers.find((l) => l.key === this.ui.layerKey) ?? layers[0];
    const kernel = layer.kernels.includes(this.ui.kernel) ? this.ui.kernel : layer.kernels[0];
    const kind = layer.kinds.includes(this.ui.kind) ? this.ui.kind : layer.kinds[0];
    const chosen = VIEWS.some((v) => v.id === this.ui.view) ? this.ui.view : "heatmap";
    // A layer with activations only (log_activations without log_weights) has one view.
    const view = layer.kernels.length === 0 ? "activations" : chosen;
    this.sidebar.hidden = false;
    this.picker.element.hidden = false;
    this.content.hidden = false;
    this.message.replaceChildren();
    this.picker.update({ layers, layer, kernel, kind, view });
    for (const [id, instance] of Object.entries(this.views)) instance.element.hidden = id !== view;
    this.views[view].update({
      api: this.api,
      index: this.index,
      runs: selected,
      colors,
      layer,
      layers,
      kernel,
      kind,
      settings: this.ui[view],
    });
  }
}

/** The run problems of both indexes; a run with both keeps both messages. */
function mergeErrors(weights, activations) {
  const merged = { ...activations };
  for (const [run, message] of Object.entries(weights)) {
    merged[run] = run in merged ? `${message}; ${merged[run]}` : message;
  }
  return merged;
}

function noDataMessage(errors) {
  return messagePanel(
    "empty",
    "No runs with Weight Gates data",
    "Log a model's recurrent layers with the WeightGatesCallback, then point TensorBoard at the log directory:",
    h("pre", { class: "wg-code" }, h("code", { text: SETUP_CODE.join("\n") })),
    "Data written since TensorBoard started shows after a reload (the ⟳ button, top right).",
    runProblems(errors, "h4"),
  );
}
