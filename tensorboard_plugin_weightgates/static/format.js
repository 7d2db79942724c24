// Number formatting and axis ticks shared by the views. Pure functions.

/** A cell or statistic value as shown in tooltips and tables: NaN and ±Inf spelled out. */
export function formatValue(value, digits = 6) {
  if (value === null || value === undefined) return "—";
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "−Inf";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e-3 && abs < 1e6) return String(Number(value.toPrecision(digits)));
  return value.toExponential(Math.max(0, digits - 1)).replace(/\.?0+e/, "e");
}

/** A short label for an axis tick, with as few digits as the tick spacing needs. */
export function formatTick(value, spacing) {
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(1).replace(/\.0e/, "e");
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(spacing || abs) + 1e-9)));
  return value.toFixed(decimals);
}

/**
 * About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten
 * apart), from the first multiple of the spacing at or above `low`.
 */
export function niceTicks(low, high, count = 5) {
  if (!Number.isFinite(low) || !Number.isFinite(high) || count < 1) return { ticks: [], spacing: 0 };
  if (high < low) [low, high] = [high, low];
  if (high === low) return { ticks: [low], spacing: 0 };
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const spacing = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough) ?? 10 * power;
  const ticks = [];
  const first = Math.ceil(low / spacing - 1e-9);
  for (let i = first; i * spacing <= high + spacing * 1e-9; i++) {
    ticks.push(Number((i * spacing).toPrecision(12)));
  }
  return { ticks, spacing };
}

/** A file name made from free text (run and layer names may hold any character). */
export function safeFilename(text) {
  const cleaned = String(text)
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._]+|_+$/g, "");
  return cleaned.slice(0, 120) || "weightgates";
}
