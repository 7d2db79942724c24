// The tab's toolbar: layer (in model order), kernel, weights/gradients, and the view.

import { h, replaceChildren, segmented, selectField } from "./dom.js";
import { KINDS, layerLabel } from "./layers.js";

export const VIEWS = Object.freeze([
  { id: "heatmap", label: "Heatmap" },
  { id: "histograms", label: "Histograms" },
  { id: "health", label: "Health" },
  { id: "activations", label: "Activations" },
]);

/** Views that show no kernel (their toolbar has no kernel and kind). */
const LAYER_VIEWS = new Set(["activations"]);

const KIND_LABELS = { weights: "Weights", gradients: "Gradients" };
const ONLY_ACTIVATIONS = "Only activations are logged for this layer (log_activations without log_weights).";
const NO_GRADIENTS =
  'No gradients logged for this layer: pass gradients="train" to WeightGatesCallback (or call log_gradients in a custom loop).';

export class LayerPicker {
  /** `onChange(partial)` receives `{layerKey}`, `{kernel}`, `{kind}` or `{view}`. */
  constructor(onChange) {
    this.onChange = onChange;
    this.tabs = h("div", { class: "wg-tabs", role: "tablist", "aria-label": "View" });
    this.fields = h("div", { class: "wg-toolbar-fields" });
    this.element = h("div", { class: "wg-toolbar" }, this.tabs, this.fields);
  }

  /** `layers` from listLayers; `layer` the chosen one; `kernel`, `kind`, `view` chosen ids. */
  update({ layers, layer, kernel, kind, view }) {
    const layerField = selectField(
      "Layer",
      layers.map((l) => ({ id: l.key, label: `${l.order + 1}. ${layerLabel(l, { withShape: l.ambiguous })}` })),
      layer.key,
      (layerKey) => this.onChange({ layerKey }),
    );
    layerField.select.classList.add("wg-layer-select");
    const kernelField = segmented(
      "Kernel",
      layer.kernels.map((id) => ({ id, label: id })),
      kernel,
      (id) => this.onChange({ kernel: id }),
    );
    const kindField = segmented(
      "Kind",
      KINDS.map((id) => ({
        id,
        label: KIND_LABELS[id],
        disabled: !layer.kinds.includes(id),
        title: layer.kinds.includes(id) ? null : id === "gradients" ? NO_GRADIENTS : `No ${id} logged for this layer.`,
      })),
      kind,
      (id) => this.onChange({ kind: id }),
    );
    const facts = h(
      "div",
      { class: "wg-layer-facts" },
      layer.bidirectional ? h("span", { text: layer.directions.join(" + ") }) : null,
      layer.runs.length ? h("span", { text: `${layer.runs.length} run${layer.runs.length === 1 ? "" : "s"}` }) : null,
    );
    replaceChildren(
      this.tabs,
      VIEWS.map((v) =>
        h("button", {
          type: "button",
          role: "tab",
          class: "wg-tab",
          text: v.label,
          "aria-selected": String(v.id === view),
          disabled: layer.kernels.length === 0 && !LAYER_VIEWS.has(v.id),
          title: layer.kernels.length === 0 && !LAYER_VIEWS.has(v.id) ? ONLY_ACTIVATIONS : null,
          onclick: () => this.onChange({ view: v.id }),
        }),
      ),
    );
    const perKernel = !LAYER_VIEWS.has(view) && layer.kernels.length > 0;
    replaceChildren(this.fields, layerField, facts, perKernel ? kernelField : null, perKernel ? kindField : null);
  }
}
