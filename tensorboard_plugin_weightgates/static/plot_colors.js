// The colours of the activation plots' canvases (saturation_plot.js, gradient_flow.js): the
// tab's theme colours, CSS custom properties (--wg-fg, --wg-bg, ...) that style.css sets for
// the light and the dark theme, read from an element's computed style, since CSS does not reach
// into a canvas. Pure.

/** The properties and the colours used where a page does not set them (the light theme). */
export const PLOT_COLOR_DEFAULTS = Object.freeze({
  bg: "#ffffff",
  fg: "#212121",
  muted: "#616161",
  border: "#e0e0e0",
  panel: "#fafafa",
  accent: "#1976d2",
  bad: "#d32f2f",
  good: "#2e7d32",
});

/**
 * The theme's colours from a computed style (`getComputedStyle(element)`, or anything with
 * `getPropertyValue`): `{bg, fg, muted, border, panel, accent, bad, good}`, each property
 * `--wg-<key>` where it is set, else its default.
 */
export function plotColors(style) {
  const colors = {};
  for (const [key, fallback] of Object.entries(PLOT_COLOR_DEFAULTS)) {
    const value = style?.getPropertyValue?.(`--wg-${key}`)?.trim();
    colors[key] = value || fallback;
  }
  return colors;
}
