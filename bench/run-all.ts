/**
 * `npm run bench`: runs every benchmark in turn, each in its own process (so one's memory, timers and
 * environment cannot skew the next), passes their output through, and ends with a summary of every
 * `[bench]` figure. `npm run bench -- watch` runs only the benchmarks whose file name contains "watch".
 */
import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";

const BENCHES = [
  { file: "modal-latency.ts", title: "1. Modal latency" },
  { file: "watch-cost.ts", title: "2. Watch cost" },
  { file: "notification-latency.ts", title: "3. Notification latency" },
  { file: "footprint.ts", title: "4. Footprint" },
  { file: "picker-cost.ts", title: "5. Picker cost" },
  { file: "decisions.ts", title: "6. Decisions" },
  { file: "replicas.ts", title: "7. Replicas" },
  { file: "after-steps.ts", title: "8. After steps and keep rule" },
];
/** A benchmark still running after this long is stopped and reported as timed out. */
const TIMEOUT_MS = 4 * 60_000;

interface Outcome {
  readonly title: string;
  readonly seconds: number;
  readonly status: string;
  readonly figures: { label: string; value: string }[];
}

function run(file: string, title: string): Promise<Outcome> {
  const started = performance.now();
  const figures: Outcome["figures"] = [];
  const child = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL(file, import.meta.url))],
    {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    },
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, TIMEOUT_MS);
  let pending = "";
  child.stdout.on("data", (chunk: Buffer) => {
    process.stdout.write(chunk);
    const lines = (pending + chunk.toString("utf8")).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const m = /^\[bench\] (.+): (.+)$/.exec(line); // the label may hold ': ', the value does not
      if (m) figures.push({ label: m[1] as string, value: m[2] as string });
    }
  });
  return new Promise((resolve) => {
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const status = timedOut ? "timed out" : code === 0 ? "ok" : `failed (${code ?? signal})`;
      resolve({ title, seconds: (performance.now() - started) / 1000, status, figures });
    });
  });
}

const filter = process.argv[2];
const outcomes: Outcome[] = [];
for (const { file, title } of BENCHES) {
  if (filter && !file.includes(filter)) continue;
  console.log(`\n=== ${title} (bench/${file}) ===`);
  outcomes.push(await run(file, title));
}

console.log("\n=== Summary ===\n");
const rows = outcomes.flatMap((o) => o.figures.map((f) => ({ bench: o.title, ...f })));
const width = (pick: (r: (typeof rows)[number]) => string, head: string) =>
  Math.max(head.length, ...rows.map((r) => pick(r).length));
const wb = width((r) => r.bench, "benchmark");
const wl = width((r) => r.label, "figure");
console.log(`${"benchmark".padEnd(wb)} | ${"figure".padEnd(wl)} | value`);
console.log(`${"-".repeat(wb)}-|-${"-".repeat(wl)}-|------`);
for (const r of rows) console.log(`${r.bench.padEnd(wb)} | ${r.label.padEnd(wl)} | ${r.value}`);
console.log("");
for (const o of outcomes) console.log(`${o.title}: ${o.status} in ${o.seconds.toFixed(1)} s`);
console.log(`total: ${outcomes.reduce((s, o) => s + o.seconds, 0).toFixed(1)} s`);
process.exitCode = outcomes.every((o) => o.status === "ok") ? 0 : 1;
