// Small DOM helpers shared by the views. Text always goes in as text nodes or textContent:
// run, layer and kernel names come from users' log directories.

import { IGNORE_OUTLIERS_HELP } from "./domains.js";

const PROPERTIES = new Set(["value", "checked", "disabled", "selected", "title", "type", "min", "max", "step"]);

/**
 * Creates an element: `h("button", {class: "x", text: "Go", onclick: f}, child, ...)`.
 * `text` sets textContent, `dataset` data attributes, `on<event>` listeners, `style` an object
 * of CSS properties; other props are properties (value, checked...) or attributes. Children are
 * nodes or strings (as text); null, undefined and false are skipped.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

/** Replaces all children of `node`. */
export function replaceChildren(node, ...children) {
  node.replaceChildren(
    ...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false),
  );
}

/**
 * A labelled <select>: `options` are `{id, label}`; calls `onChange(id)`. Returns the
 * wrapping label; its `select` property is the <select>.
 */
export function selectField(label, options, value, onChange, { title } = {}) {
  const select = h(
    "select",
    { onchange: () => onChange(select.value), title, "aria-label": label },
    options.map((option) => h("option", { value: option.id, text: option.label, disabled: option.disabled })),
  );
  select.value = value;
  const field = h("label", { class: "wg-field" }, h("span", { class: "wg-field-label", text: label }), select);
  field.select = select;
  return field;
}

/**
 * A row of toggle buttons, one of which is pressed: `options` are `{id, label, disabled,
 * title}`; calls `onChange(id)`.
 */
export function segmented(label, options, value, onChange) {
  const buttons = options.map((option) =>
    h("button", {
      type: "button",
      class: "wg-segment",
      text: option.label,
      disabled: option.disabled,
      title: option.title,
      dataset: { id: option.id },
      "aria-pressed": String(option.id === value),
      onclick: () => onChange(option.id),
    }),
  );
  return h(
    "div",
    { class: "wg-field" },
    label ? h("span", { class: "wg-field-label", text: label }) : null,
    h("div", { class: "wg-segmented", role: "group", "aria-label": label || null }, buttons),
  );
}

/** A labelled checkbox; calls `onChange(checked)`. */
/**
 * A range input over a view's logged steps: its value is an index into `steps()` (read when
 * it moves, so the view can replace its steps), and `onStep` receives the step (null if none).
 */
export function stepSlider(steps, onStep) {
  const slider = h("input", {
    type: "range",
    class: "wg-step-slider",
    min: "0",
    max: "0",
    step: "1",
    "aria-label": "Step",
    oninput: () => onStep(steps()[Number(slider.value)] ?? null),
  });
  return slider;
}

export function checkboxField(label, checked, onChange, { title } = {}) {
  const input = h("input", { type: "checkbox", checked, onchange: () => onChange(input.checked) });
  return h("label", { class: "wg-field wg-check", title }, input, h("span", { class: "wg-field-label", text: label }));
}

/** The charts' "Ignore outliers" checkbox (domains.js says what it does); calls `onChange(checked)`. */
export function ignoreOutliersField(checked, onChange) {
  return checkboxField("Ignore outliers", checked, onChange, { title: IGNORE_OUTLIERS_HELP });
}

/** Saves `blob` as `filename` through a temporary link (works inside TensorBoard's iframe). */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: filename, style: { display: "none" } });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** A message panel: `title`, then paragraphs or nodes; `kind` is "empty" or "error". */
export function messagePanel(kind, title, ...body) {
  return h(
    "div",
    { class: `wg-message wg-message-${kind}`, role: kind === "error" ? "alert" : null },
    h("h3", { text: title }),
    body.map((part) => (typeof part === "string" ? h("p", { text: part }) : part)),
  );
}

/**
 * An offscreen canvas of one pixel per cell of a `rows` x `cols` grid, its RGBA bytes filled by
 * `fill(data)` (row-major, 4 bytes a cell); drawn scaled into a view's canvas.
 */
export function imageCanvas(rows, cols, fill) {
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, cols);
  canvas.height = Math.max(1, rows);
  if (rows > 0 && cols > 0) {
    const image = new ImageData(cols, rows);
    fill(image.data);
    canvas.getContext("2d").putImageData(image, 0, 0);
  }
  return canvas;
}

/**
 * Pixels per CSS pixel of the tab's canvases: the device's ratio, at least 2, so that a chart
 * downloaded as PNG (the canvas's own pixels) is sharp on a paper or a high-density screen.
 */
export function canvasScale() {
  return Math.max(2, window.devicePixelRatio || 1);
}

/** A canvas sized `width x height` CSS pixels at canvasScale() pixels each; returns its context. */
export function sizeCanvas(canvas, width, height) {
  const ratio = canvasScale();
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(height * ratio));
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return context;
}
