// The tab's light or dark theme, following TensorBoard's: TensorBoard marks its dark mode with
// a `dark-mode` class on the <body> of its own page, which the tab's iframe (same origin) can
// read and watch; where it cannot, the browser's prefers-color-scheme decides. The colours are
// the custom properties of style.css; canvases read them here, so they change with the theme.

export const DARK_CLASS = "wg-dark";
export const HOST_DARK_CLASS = "dark-mode";

/**
 * Whether to draw dark: TensorBoard's choice when its page can be read (`hostDark` true or
 * false), else the browser's (`prefersDark`).
 */
export function resolveDark(hostDark, prefersDark) {
  return hostDark === null || hostDark === undefined ? Boolean(prefersDark) : hostDark;
}

/** The <body> of TensorBoard's page embedding `win`, or null (not framed, or another origin). */
export function hostBody(win) {
  for (const candidate of [win.parent, win.top]) {
    if (!candidate || candidate === win) continue;
    try {
      const body = candidate.document?.body;
      if (body) return body;
    } catch {
      // A page of another origin: its document is not ours to read.
    }
  }
  return null;
}

/**
 * Keeps `wg-dark` on `win`'s <html> in step with TensorBoard's theme (or the browser's) and
 * calls `onChange(dark)` when it flips, so that canvases are drawn again. Returns the current
 * value.
 */
export function followTheme(win, onChange = () => {}) {
  const media = win.matchMedia ? win.matchMedia("(prefers-color-scheme: dark)") : null;
  const body = hostBody(win);
  let dark = null;
  const apply = () => {
    const next = resolveDark(body ? body.classList.contains(HOST_DARK_CLASS) : null, media?.matches);
    if (next === dark) return;
    dark = next;
    win.document.documentElement.classList.toggle(DARK_CLASS, dark);
    onChange(dark);
  };
  apply();
  if (body && win.MutationObserver) {
    new win.MutationObserver(apply).observe(body, { attributes: true, attributeFilter: ["class"] });
  }
  media?.addEventListener?.("change", apply);
  return dark;
}

/** The value of CSS custom property `name` (say "--wg-fg") on the document, or `fallback`. */
export function themeColor(name, fallback = "#000000") {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}
