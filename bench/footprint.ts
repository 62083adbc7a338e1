/**
 * Footprint: what the bot costs to keep running. Spawns the real bot as a child process and measures
 * the time from spawn to its "ami-bot ready" log line and to the first GET /healthz answered 200
 * (median of 3 starts), and its resident memory (VmRSS from /proc, sampled every 100 ms) once started and
 * idle, and with 1,000 pending jobs being watched (seeded into the database before start, polled every second).
 * Measured twice: compiled with tsc and run by plain node (as `npm start` does), and from source with tsx.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import {
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  REPO_ROOT,
  ROLE_ARN,
  removeTempDirs,
  seedPendingJobs,
  sleep,
  spawnBot,
  tempDir,
} from "./lib.js";

const STARTS = 3;
const IDLE_MS = 3_000;
const ACTIVE_JOBS = 1000;
/** Full checks of the 1,000 jobs to wait for before reading memory. */
const TICKS = 3;

/** Compiles src/ like `npm run build`, into node_modules/.cache so dist/ is left alone. */
function compile(): string | undefined {
  const outDir = join(REPO_ROOT, "node_modules/.cache/ami-bot-bench/dist");
  const tsc = join(REPO_ROOT, "node_modules/typescript/bin/tsc");
  spawnSync(process.execPath, [tsc, "-p", join(REPO_ROOT, "tsconfig.build.json"), "--outDir", outDir], {
    stdio: "ignore",
  });
  const main = join(outDir, "src/main.js");
  return existsSync(main) ? main : undefined;
}

const slack = await startFakeSlack();
const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
const running: BotProcess[] = [];
const mib = (n: number) => `${n.toFixed(1)} MiB`;

/** Starts the bot STARTS times (on a fresh copy of `seededDb`, or an empty database); the last one stays up. */
async function startRepeatedly(
  compiledMain: string | undefined,
  seededDb: string | undefined,
  env: Record<string, string> = {},
) {
  const ready: number[] = [];
  const healthy: number[] = [];
  let bot: BotProcess | undefined;
  for (let i = 0; i < STARTS; i++) {
    await bot?.stop();
    const dbPath = join(tempDir(), "bot.db");
    if (seededDb) copyFileSync(seededDb, dbPath);
    bot = await spawnBot({ slack, aws, compiledMain, dbPath, env });
    running.push(bot);
    ready.push(bot.readyMs);
    healthy.push(bot.healthyMs);
  }
  return { bot: bot as BotProcess, readyMs: percentile(ready, 50), healthyMs: percentile(healthy, 50) };
}

/** Samples VmRSS every 100 ms until `done()`: the median sample, the highest, and the kernel's peak. */
async function sampleMemory(bot: BotProcess, done: () => boolean): Promise<string> {
  const samples: number[] = [];
  const deadline = Date.now() + 60_000;
  do {
    samples.push(bot.memory().rssMiB);
    await sleep(100);
  } while (!done() && Date.now() < deadline);
  const { peakMiB } = bot.memory();
  return `${mib(percentile(samples, 50))} (highest sample ${mib(Math.max(...samples))}, VmHWM ${mib(peakMiB)})`;
}

async function measure(mode: string, compiledMain: string | undefined, seededDb: string): Promise<void> {
  const idle = await startRepeatedly(compiledMain, undefined);
  figure(`footprint, ${mode}: spawn → "ami-bot ready" log line (median of ${STARTS})`, idle.readyMs, "ms");
  figure(`footprint, ${mode}: spawn → /healthz 200 (median of ${STARTS})`, idle.healthyMs, "ms");
  const idleUntil = Date.now() + IDLE_MS;
  figure(
    `footprint, ${mode}: RSS idle, no jobs`,
    await sampleMemory(idle.bot, () => Date.now() >= idleUntil),
  );
  await idle.bot.stop();

  // 1,000 pending jobs in the database before start, each checked every second.
  const active = await startRepeatedly(compiledMain, seededDb, { AMI_POLL_INTERVAL: "1s" });
  figure(
    `footprint, ${mode}: spawn → /healthz 200 with ${ACTIVE_JOBS} pending jobs (median of ${STARTS})`,
    active.healthyMs,
    "ms",
  );
  // One full check of 1,000 images in one place is 5 DescribeImages calls (200 ids each).
  const from = aws.calls("DescribeImages").length;
  const checks = () => Math.floor((aws.calls("DescribeImages").length - from) / 5);
  const memory = await sampleMemory(active.bot, () => checks() >= TICKS);
  figure(`footprint, ${mode}: RSS with ${ACTIVE_JOBS} pending jobs over ${checks()} full checks`, memory);
  await active.bot.stop();
}

try {
  const seededDb = join(tempDir(), "seeded.db");
  await seedPendingJobs({ dbPath: seededDb, aws, slack, count: ACTIVE_JOBS, channelOf: (i) => `C0B${i}` });
  aws.requests.length = 0;
  const compiledMain = compile();
  if (compiledMain) await measure("compiled (npm start)", compiledMain, seededDb);
  else console.log("  (tsc produced no build; the compiled run is skipped)");
  await measure("tsx from source", undefined, seededDb);
} finally {
  for (const bot of running) await bot.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
