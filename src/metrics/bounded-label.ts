/**
 * Label values that come from outside (AWS error codes, Slack method names and errors) are capped, so a
 * misbehaving service or a bug cannot grow a metric without bound: only short, plain tokens pass, and only
 * the first `maxValues` distinct ones; anything else is reported as "other".
 */

/** What any label value of ours may look like: no spaces, quotes, slashes or ids with colons. */
const LABEL_VALUE = /^[A-Za-z0-9_.]{1,64}$/;

export const OTHER_LABEL = "other";

/** Returns a function that maps a raw value to itself or to "other", remembering what it let through. */
export function boundedLabel(maxValues: number): (value: string) => string {
  const seen = new Set<string>();
  return (value) => {
    if (!LABEL_VALUE.test(value)) return OTHER_LABEL;
    if (seen.has(value)) return value;
    if (seen.size >= maxValues) return OTHER_LABEL;
    seen.add(value);
    return value;
  };
}

/** Returns a function that lets through only the listed values, mapping anything else to "other". */
export function knownLabel(values: readonly string[]): (value: string) => string {
  const known = new Set(values);
  return (value) => (known.has(value) ? value : OTHER_LABEL);
}
