/** A small reader of the Prometheus text format, enough for tests to look metrics up by name and labels. */

export interface Family {
  help: string | undefined;
  type: string | undefined;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Families by name; a histogram's _bucket, _sum and _count samples are filed under the family. */
export function parsePrometheusText(body: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    const known = families.get(name);
    if (known) return known;
    const created: Family = { help: undefined, type: undefined, samples: [] };
    families.set(name, created);
    return created;
  };
  for (const line of body.split("\n")) {
    if (line.trim() === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name = "", text] = meta;
      if (kind === "HELP") family(name).help = text;
      else family(name).type = text;
      continue;
    }
    const match = SAMPLE.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name = "", rawLabels = "", value = ""] = match;
    const labels: Record<string, string> = {};
    for (const [, key = "", val = ""] of rawLabels.matchAll(LABEL)) labels[key] = val;
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const owner = families.has(name) ? name : families.has(base) ? base : name;
    family(owner).samples.push({ name, labels, value: Number(value) });
  }
  return families;
}

/** The value of the one sample with exactly these labels, or undefined. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const samples = families.get(name)?.samples ?? families.get(base)?.samples ?? [];
  const wanted = JSON.stringify(Object.entries(labels).sort());
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted)
    ?.value;
}
