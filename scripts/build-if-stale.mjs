#!/usr/bin/env node
// Builds dist/ with tsc only when a source or a tsconfig is newer than the last build, so `npm start` and
// the test run's setup take a moment when nothing changed (tsc itself needs 7-20 s even incrementally).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
// tsc leaves its own .tsbuildinfo untouched when the output does not change, so keep a stamp of our own.
const stamp = join(root, "dist", ".build-stamp");

function newest(path) {
  const info = statSync(path);
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const inputs = ["src", "tsconfig.json", "tsconfig.build.json", "package-lock.json"].map((p) => join(root, p));
const built =
  existsSync(stamp) && existsSync(join(root, "dist", "src", "main.js")) ? statSync(stamp).mtimeMs : 0;
const force = process.argv.includes("--force");
if (force || built === 0 || Math.max(...inputs.filter(existsSync).map(newest)) > built) {
  process.stderr.write("ami-bot: compiling TypeScript (sources changed since the last build)…\n");
  const startedAt = new Date();
  const tsc = spawnSync(
    process.execPath,
    [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
    {
      cwd: root,
      stdio: "inherit",
    },
  );
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // Dated when the build began: a file saved during the build makes the next start build again.
  writeFileSync(stamp, "");
  utimesSync(stamp, startedAt, startedAt);
}
