// The tab's colours as CSS custom properties (--wg-fg, --wg-bg, ...; style.css sets them, also
// for the dark theme), read for what is drawn on canvases, which CSS does not reach. Pure.

/** The properties and the colours used where a page does not set them (the light theme). */
export const THEME_DEFAULTS = Object.freeze({
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
export function themeColors(style) {
  const colors = {};
  for (const [key, fallback] of Object.entries(THEME_DEFAULTS)) {
    const value = style?.getPropertyValue?.(`--wg-${key}`)?.trim();
    colors[key] = value || fallback;
  }
  return colors;
}
