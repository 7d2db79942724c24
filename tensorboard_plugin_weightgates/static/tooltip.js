// The hover box of the activation plots: term/value lines beside the pointer, kept inside the
// window. Text goes in as text (run and layer names come from users' log directories).

import { h, replaceChildren } from "./dom.js";

export class Tooltip {
  constructor() {
    this.element = h("div", { class: "wg-tooltip", role: "tooltip", hidden: true });
  }

  /**
   * Shows `lines` (`[term, text]` pairs; null entries skipped) at the pointer of `event`, with a
   * swatch of `color` if given; `dataset` goes on the element (for tests and styling).
   */
  show(event, lines, { title = null, color = null, dataset = {} } = {}) {
    replaceChildren(
      this.element,
      title ? h("div", { class: "wg-tooltip-title", text: title }) : null,
      color ? h("span", { class: "wg-tooltip-swatch", style: { backgroundColor: color } }) : null,
      h(
        "dl",
        {},
        lines.filter(Boolean).map(([term, text]) => [h("dt", { text: term }), h("dd", { text })]),
      ),
    );
    for (const key of Object.keys(this.element.dataset)) delete this.element.dataset[key];
    Object.assign(this.element.dataset, dataset);
    this.element.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - this.element.offsetWidth - 4);
    const y =
      event.clientY + 14 + this.element.offsetHeight > window.innerHeight
        ? event.clientY - this.element.offsetHeight - 8
        : event.clientY + 14;
    this.element.style.left = `${Math.max(4, x)}px`;
    this.element.style.top = `${Math.max(4, y)}px`;
  }

  hide() {
    this.element.hidden = true;
  }
}
