/**
 * Once per test run: builds the bot that child-process tests run (dist/, as production runs it, instead
 * of compiling TypeScript in every child), starts the run's throwaway PostgreSQL server (alongside the
 * build), and gives the run a temporary folder of its own, removed at the end, so no test leaves files
 * behind in /tmp (nor does vitest's own folder of transformed modules).
 */
import { execFile } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { startPostgres } from "./postgres.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Workers and the bots they spawn inherit this; os.tmpdir() reads TMPDIR.
  const previous = process.env.TMPDIR;
  const runDir = mkdtempSync(join(tmpdir(), "ami-bot-test-run-"));
  // Run as root, the Postgres server is the postgres user, and its folder is in here: let it pass through.
  chmodSync(runDir, 0o711);
  const [buildError, postgres] = await Promise.all([
    buildForChildProcessTests(),
    startPostgres({ tmpDir: runDir }).catch((error: unknown) =>
      String(error instanceof Error ? error.message : error),
    ),
  ]);
  process.env.TMPDIR = runDir;
  // Only child-process tests need dist/: they fail with the compiler's output, the others still run.
  if (buildError !== undefined)
    process.env.AMI_TEST_BUILD_ERROR = `the build for child-process tests failed:\n${buildError}`;
  // Likewise only Postgres tests fail (with this message) when the server did not start.
  if (typeof postgres === "string") project.provide("postgresError", postgres);
  else project.provide("postgresUrl", postgres.url);
  return async () => {
    try {
      if (typeof postgres !== "string") await postgres.stop();
    } finally {
      rmSync(runDir, { recursive: true, force: true });
      // Vitest's own folder of transformed modules, made before this setup ran; it does not remove it itself.
      rmSync(project.tmpDir, { recursive: true, force: true });
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
    }
  };
}

/** Compiles dist/; resolves to the compiler's output when that fails. */
function buildForChildProcessTests(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"],
      { cwd: REPO_ROOT, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve(error ? `${stdout}${stderr}` || error.message : undefined),
    );
  });
}
