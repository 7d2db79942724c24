// Activations view: what the chosen recurrent layer computes on the probe batch, in every
// selected run: the saturation plot per gate at one step, the gradient flow through time, and
// the unit x timestep maps of the probe sample. It reads the activation routes only; the
// plots are saturation_plot.js, gradient_flow.js and activation_maps.js.

import { activationGroups, groupSteps, groupsByDirection, nameLabel, nonFinite } from "./activation_data.js";
import { MAP_RANGES, MAP_SCALES } from "./activation_maps_layout.js";
import { ActivationMapsPanel, mapsLegend, prepareMap } from "./activation_maps.js";
import { h, messagePanel, replaceChildren, segmented, selectField, stepSlider } from "./dom.js";
import { formatValue } from "./format.js";
import { GradientFlowChart } from "./gradient_flow.js";
import { FLOW_MODES, flowRatio, runSeries, stepColor, stepSeries } from "./gradient_flow_layout.js";
import { layerLabel, pickStep, unionSteps } from "./layers.js";
import { maxAbs } from "./normalize.js";
import { SaturationPlot } from "./saturation_plot.js";
import { saturatedUnits, saturationDots, saturationNames } from "./saturation_layout.js";
import { plotColors } from "./plot_colors.js";
import { Tooltip } from "./tooltip.js";

export const DEFAULT_ACTIVATION_SETTINGS = Object.freeze({
  step: null,
  flow: "steps",
  flowRun: null,
  scale: "auto",
  range: "natural",
});

/** What to pass to turn activations on, for the empty states. */
const SETUP_CODE = [
  "WeightGatesCallback(",
  '    log_dir="logs/run1",',
  "    activations=(x_probe, y_probe),  # or activations=x_probe: no gradients through time",
  ")",
];

const SATURATION_HELP =
  "One dot per unit: the fraction of the probe's (sample, timestep) positions where it is right-saturated (x) and left-saturated (y), after Karpathy, Johnson and Fei-Fei (2015, figure 3). Near the origin: units that switch. A forget gate near x = 1 keeps its cell state (long memory); dots on the diagonal are units that are always saturated on one side or the other.";
const FLOW_HELP =
  "The norm of dL/dh_t, the gradient of the probe's loss with respect to the hidden state at timestep t, through the output and every later step. Read it from the last timestep the layer reads back to the first: a drop of orders of magnitude means vanishing gradients, a rise exploding ones.";

export class ActivationsView {
  /** `onSettings(partial)` changes this view's settings; `onLayer(key)` picks another layer. */
  constructor(onSettings, onLayer) {
    this.onSettings = onSettings;
    this.onLayer = onLayer;
    this.generation = 0;
    this.steps = [];
    this.drawables = [];
    this.tooltip = new Tooltip();
    this.slider = stepSlider(
      () => this.steps,
      (step) => onSettings({ step }),
    );
    this.stepLabel = h("output", { class: "wg-step-label" });
    this.stepField = h(
      "label",
      { class: "wg-field wg-step-field" },
      h("span", { class: "wg-field-label", text: "Step" }),
      this.slider,
      this.stepLabel,
    );
    this.controls = h("div", { class: "wg-controls" }, this.stepField);
    this.sections = h("div", { class: "wg-sections wg-activation-sections" });
    this.element = h("div", { class: "wg-view wg-activations" }, this.controls, this.sections, this.tooltip.element);
    this.resizeObserver = new ResizeObserver(() => this.redraw());
    this.resizeObserver.observe(this.sections);
  }

  /** `context`: `{api, colors, layer, layers, settings}` (the app's view context). */
  async update({ api, colors, layer, layers, settings }) {
    const generation = ++this.generation;
    this.sections.setAttribute("aria-busy", "true");
    let index;
    try {
      index = await api.activations();
    } catch (error) {
      if (generation !== this.generation) return;
      this.showMessage(messagePanel("error", "Could not load the activations", error.message));
      return;
    }
    if (generation !== this.generation) return;
    const groups = activationGroups(index, layer);
    if (groups.length === 0) {
      this.showMessage(this.emptyState(index, layers ?? [], layer));
      return;
    }
    this.steps = unionSteps([groupSteps(groups, "stats_steps"), groupSteps(groups, "gradient_steps"), groupSteps(groups, "map_steps")]);
    const target = pickStep(this.steps, settings.step);
    this.slider.max = String(Math.max(0, this.steps.length - 1));
    this.slider.value = String(Math.max(0, this.steps.indexOf(target)));
    this.slider.disabled = this.steps.length < 2;
    this.stepLabel.textContent = target === null ? "—" : String(target);

    const loaded = await Promise.all(groups.map((g) => load(api, g, target)));
    if (generation !== this.generation) return;
    this.sections.removeAttribute("aria-busy");
    this.render(loaded, { colors, layer, settings, target, index });
  }

  /** Moves the step slider `delta` steps (arrow keys outside the slider). */
  stepBy(delta) {
    if (this.steps.length < 2) return;
    const i = Math.min(this.steps.length - 1, Math.max(0, Number(this.slider.value) + delta));
    this.onSettings({ step: this.steps[i] });
  }

  showMessage(message) {
    this.sections.removeAttribute("aria-busy");
    this.drawables = [];
    this.stepField.hidden = true;
    replaceChildren(this.controls, this.stepField);
    replaceChildren(this.sections, message);
  }

  emptyState(index, layers, layer) {
    const others = layers.filter((l) => activationGroups(index, l).length > 0);
    const code = h("pre", { class: "wg-code" }, h("code", { text: SETUP_CODE.join("\n") }));
    if (others.length) {
      return messagePanel(
        "empty",
        `No activations of ${layer.layer} in the selected runs`,
        "Activations are logged for recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM, RNN(cell), also inside Bidirectional). These have them:",
        h(
          "div",
          { class: "wg-layer-links" },
          others.map((other) =>
            h("button", { type: "button", class: "wg-button", text: layerLabel(other), onclick: () => this.onLayer(other.key) }),
          ),
        ),
      );
    }
    return messagePanel(
      "empty",
      "No activations logged in the selected runs",
      "Give the callback a fixed probe batch of inputs (with targets, for the gradients through time):",
      code,
      "activations=True reuses the probe batch of gradients=(x, y); custom training loops call log_activations(model, x_probe, step, writer, y=y_probe), saved models weightgates import --probe probe.npz.",
    );
  }

  render(loaded, { colors, layer, settings, target }) {
    this.drawables = [];
    this.tooltip.hide();
    this.stepField.hidden = false;
    const multiDirection = new Set(loaded.map((item) => item.direction)).size > 1;
    const describe = { layer: layer.layer, multiDirection };
    const theme = () => plotColors(getComputedStyle(this.element));
    const withGradients = loaded.filter((item) => item.gradients);
    const flowRuns = [...new Set(withGradients.map((item) => item.run))];
    const flowRun = flowRuns.includes(settings.flowRun) ? settings.flowRun : flowRuns[0];
    replaceChildren(
      this.controls,
      this.stepField,
      flowRuns.length
        ? segmented("Gradient flow", FLOW_MODES, settings.flow, (flow) => this.onSettings({ flow }))
        : null,
      flowRuns.length > 1 && settings.flow === "steps"
        ? selectField(
            "Run",
            flowRuns.map((run) => ({ id: run, label: run })),
            flowRun,
            (run) => this.onSettings({ flowRun: run }),
          )
        : null,
      selectField("Map colour", MAP_SCALES, settings.scale, (scale) => this.onSettings({ scale })),
      selectField("Map range", MAP_RANGES, settings.range, (range) => this.onSettings({ range }), {
        title: MAP_RANGES.find((r) => r.id === settings.range)?.help,
      }),
    );
    replaceChildren(
      this.sections,
      this.problems(loaded),
      this.saturationSection(loaded, { colors, describe, theme }),
      this.flowSection(loaded, { colors, describe, theme, settings, flowRun, target }),
      this.mapsSection(loaded, { colors, layer, describe, settings }),
    );
    this.redraw();
  }

  /** Alerts for groups that failed to load and for runs whose activations are not finite. */
  problems(loaded) {
    const alerts = [];
    for (const item of loaded) {
      for (const [what, error] of Object.entries(item.errors)) {
        alerts.push(alert(item, `${what}: ${error.message}`));
      }
      const bad = item.stats && nonFinite(item.stats, item.statsStep);
      if (bad) {
        const counts = [bad.nan ? `${bad.nan} NaN` : null, bad.inf ? `${bad.inf} Inf` : null].filter(Boolean).join(" and ");
        alerts.push(
          alert(
            item,
            `${counts} activation values at step ${bad.step}: this run diverged (its weights are no longer finite, see the Health view); units without a finite value are left out of the plots.`,
            "wg-nan-run",
          ),
        );
      }
    }
    return alerts;
  }

  saturationSection(loaded, { colors, describe, theme }) {
    const withStats = loaded.filter((item) => item.stats);
    if (withStats.length === 0) return null;
    const rows = groupsByDirection(withStats).map(({ direction, groups: items }) => {
      const names = saturationNames(items.map((item) => item.stats));
      const plots = names.map(({ name, saturation }) => {
        const { dots } = saturationDots(
          items.map((item) => ({ run: item.run, direction, stats: item.stats })),
          name,
          Math.max(...items.map((item) => item.statsStep)),
        );
        const plot = new SaturationPlot({
          name,
          label: nameLabel(name),
          saturation,
          dots,
          colors,
          describe: { ...describe, direction },
          tooltip: this.tooltip,
          theme,
        });
        this.drawables.push(plot);
        const counts = [...saturatedUnits(dots)].filter(([, c]) => c.left + c.right > 0);
        plot.element.append(
          h(
            "div",
            { class: "wg-saturation-summary" },
            counts.map(([run, c]) =>
              h(
                "div",
                { class: "wg-saturation-count", title: "Units saturated on one side at more than 90 % of their positions" },
                h("span", { class: "wg-swatch", style: { backgroundColor: colors.get(run) } }),
                `${[c.right ? `${c.right} right-` : null, c.left ? `${c.left} left-` : null].filter(Boolean).join(", ")}saturated of ${c.units} units, at > 90 % of positions`,
              ),
            ),
          ),
        );
        return plot.element;
      });
      return h(
        "div",
        { class: "wg-activation-row", dataset: { direction } },
        describe.multiDirection ? h("h4", { class: "wg-direction-label", text: direction }) : null,
        plots.length
          ? h("div", { class: "wg-saturation-grid" }, plots)
          : h("p", { class: "wg-help", text: "No value of this layer has a saturation range (ReLU activations, say)." }),
      );
    });
    const steps = [...new Set(withStats.map((item) => item.statsStep))];
    return section("saturation", "Saturation", `step ${steps.join(", ")}`, SATURATION_HELP, legend(withStats, colors), rows);
  }

  flowSection(loaded, { colors, describe, theme, settings, flowRun, target }) {
    const withGradients = loaded.filter((item) => item.gradients);
    if (withGradients.length === 0) {
      return section(
        "gradient-flow",
        "Gradient flow through time",
        null,
        null,
        null,
        messagePanel(
          "empty",
          "No gradients through time logged",
          "The probe has no targets (no y), so dL/dh_t could not be taken. Pass the probe with its targets:",
          h("pre", { class: "wg-code" }, h("code", { text: SETUP_CODE.join("\n") })),
          "Gradients are logged from the first training step on (the compiled loss exists only then).",
        ),
      );
    }
    const without = [...new Set(loaded.filter((item) => item.stats && !item.gradients).map((item) => item.run))];
    const rows = groupsByDirection(withGradients).map(({ direction, groups: items }) => {
      const timesteps = items[0].gradients.timesteps;
      let series;
      let title;
      let key;
      if (settings.flow === "runs") {
        series = runSeries(items, target, colors);
        title = `step ${[...new Set(series.map((s) => s.step))].join(", ")}`;
        key = legend(items, colors);
      } else {
        const item = items.find((i) => i.run === flowRun) ?? items[0];
        series = stepSeries(item.gradients);
        title = item.run;
        key = stepLegend(item.gradients.steps);
      }
      const chart = new GradientFlowChart({ series, timesteps, title, tooltip: this.tooltip, theme });
      this.drawables.push(chart);
      const notes = series
        .map((s) => ({ s, ratio: flowRatio(s.ys, direction) }))
        .filter(({ ratio }) => ratio !== null);
      const last = settings.flow === "runs" ? notes : notes.slice(-1);
      const allMissing = series.every((s) => s.ys.every((y) => y === null));
      return h(
        "div",
        { class: "wg-activation-row", dataset: { direction } },
        describe.multiDirection ? h("h4", { class: "wg-direction-label", text: direction }) : null,
        h("div", { class: "wg-flow-legend" }, key),
        chart.element,
        allMissing ? h("p", { class: "wg-panel-error", text: "No finite gradient norm to draw (NaN in every timestep)." }) : null,
        h(
          "p",
          { class: "wg-help wg-flow-ratio" },
          last.map(
            ({ s, ratio }) =>
              `${s.label}: ‖dL/dh‖ at the first timestep read is ${formatValue(ratio, 3)}× the one at the last. `,
          ),
        ),
      );
    });
    return section(
      "gradient-flow",
      "Gradient flow through time",
      without.length ? `no targets in the probe of ${without.join(", ")}` : null,
      FLOW_HELP,
      null,
      rows,
    );
  }

  mapsSection(loaded, { colors, layer, describe, settings }) {
    const withMaps = loaded.filter((item) => item.maps);
    if (withMaps.length === 0) {
      const anyStats = loaded.some((item) => item.stats);
      return anyStats
        ? section(
            "maps",
            "Unit × timestep maps",
            null,
            null,
            null,
            messagePanel(
              "empty",
              "No maps logged",
              "Maps of one probe sample are written at snapshot steps (snapshot_freq; activation_sample picks the sample).",
            ),
          )
        : null;
    }
    const sharedMax = new Map();
    for (const item of withMaps) {
      const { header, maps } = item.maps;
      for (const name of header.names) {
        const m = maxAbs(maps[name].mean, header.rows, header.cols);
        sharedMax.set(name, Math.max(sharedMax.get(name) ?? 0, m));
      }
    }
    const scales = [];
    const panels = withMaps.map((item) => {
      const saturations = item.entry.saturations ?? {};
      const prepared = item.maps.header.names.map((name) =>
        prepareMap(item.maps, name, saturations[name] ?? null, settings, sharedMax.get(name)),
      );
      scales.push(...prepared.map((map) => map.scale));
      const panel = new ActivationMapsPanel({
        run: item.run,
        color: colors.get(item.run),
        maps: item.maps,
        prepared,
        describe: { ...describe, layer, direction: item.direction },
        tooltip: this.tooltip,
      });
      this.drawables.push(panel);
      return panel.element;
    });
    const timesteps = withMaps[0].maps.header.timesteps;
    return section(
      "maps",
      "Unit × timestep maps",
      `probe sample ${withMaps[0].maps.header.sample}`,
      `One row per unit, one column per timestep (0 … ${timesteps - 1}, left to right) of one probe sample: the gates, c_t, h_t and dL/dh_t as the layer computed them; L is the range each map's label gives.`,
      mapsLegend(scales),
      h("div", { class: "wg-panels wg-maps-panels" }, panels),
    );
  }

  redraw() {
    for (const drawable of this.drawables) drawable.draw();
  }
}

/** The statistics, gradient norms and maps of one group near `target`; failures kept per route. */
async function load(api, group, target) {
  const { entry } = group;
  const statsStep = pickStep(entry.stats_steps, target);
  const mapStep = pickStep(entry.map_steps, target);
  const errors = {};
  const attempt = async (what, promise) => {
    try {
      return await promise();
    } catch (error) {
      errors[what] = error;
      return null;
    }
  };
  const [stats, gradients, maps] = await Promise.all([
    statsStep === null ? null : attempt("statistics", () => api.activationStats(group.group, { step: statsStep })),
    entry.gradient_steps.length ? attempt("gradients through time", () => api.activationGradients(group.group)) : null,
    mapStep === null ? null : attempt("maps", () => api.activationMaps(group.group, { step: mapStep })),
  ]);
  return { ...group, statsStep, stats, gradients, maps, errors };
}

function alert(item, text, extra = "") {
  return h(
    "div",
    { class: `wg-panel-error ${extra}`.trim(), role: "alert", dataset: { run: item.run } },
    h("span", { class: "wg-run-name", text: item.run }),
    `: ${text}`,
  );
}

function section(id, title, subtitle, help, key, ...body) {
  return h(
    "section",
    { class: "wg-section wg-activation-section", dataset: { section: id } },
    h(
      "header",
      { class: "wg-section-header" },
      h("h3", { text: title }),
      subtitle ? h("span", { class: "wg-panel-step", text: subtitle }) : null,
      h("span", { class: "wg-spacer" }),
      key,
    ),
    help ? h("p", { class: "wg-help", text: help }) : null,
    body,
  );
}

/** Swatches of the runs of `items`, once each. */
function legend(items, colors) {
  const runs = [...new Set(items.map((item) => item.run))];
  return h(
    "div",
    { class: "wg-run-legend" },
    runs.map((run) =>
      h(
        "span",
        { class: "wg-legend-key" },
        h("span", { class: "wg-swatch", style: { backgroundColor: colors.get(run) } }),
        h("span", { class: "wg-run-name", text: run }),
      ),
    ),
  );
}

/** The colour ramp of the steps, first to last. */
function stepLegend(steps) {
  const first = steps[0];
  const last = steps[steps.length - 1];
  const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => `${stepColor(f)} ${f * 100}%`).join(", ");
  return h(
    "span",
    { class: "wg-legend-key wg-step-ramp" },
    h("span", { text: `step ${first}` }),
    h("span", { class: "wg-ramp", style: { backgroundImage: `linear-gradient(to right, ${stops})` } }),
    h("span", { text: `step ${last}` }),
  );
}
