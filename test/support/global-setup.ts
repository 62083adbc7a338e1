/**
 * Once per test run: builds the bot that child-process tests run (dist/, as production runs it, instead
 * of compiling TypeScript in every child), and gives the run a temporary folder of its own, removed at the
 * end, so no test leaves files behind in /tmp (nor does vitest's own folder of transformed modules).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export default function setup(project: TestProject): () => void {
  const build = spawnSync(
    process.execPath,
    ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"],
    {
      cwd: REPO_ROOT,
      encoding: "utf8",
    },
  );
  // Only child-process tests need dist/: they fail with the compiler's output, the others still run.
  if (build.status !== 0)
    process.env.AMI_TEST_BUILD_ERROR = `the build for child-process tests failed:\n${build.stdout}${build.stderr}`;
  // Workers and the bots they spawn inherit this; os.tmpdir() reads TMPDIR.
  const previous = process.env.TMPDIR;
  const runDir = mkdtempSync(join(tmpdir(), "ami-bot-test-run-"));
  process.env.TMPDIR = runDir;
  return () => {
    rmSync(runDir, { recursive: true, force: true });
    // Vitest's own folder of transformed modules, made before this setup ran; it does not remove it itself.
    rmSync(project.tmpDir, { recursive: true, force: true });
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  };
}
