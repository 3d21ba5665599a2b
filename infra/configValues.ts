// Small pieces every config reader shares (validate.ts, addonsConfig.ts) and the chart-values merge (cni.ts).

/** A value in a message: JSON-quoted (one line, whatever it holds) and cut short. */
export function q(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}..."` : text;
}

/** A plain object (a config map, chart values), not a list or null. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A DNS-1123 label: node names, add-on names, namespaces. */
export const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
