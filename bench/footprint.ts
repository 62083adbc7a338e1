/**
 * Footprint: what the bot costs to start and keep running. Spawns the real bot as a child process and measures
 * the time from spawn to its "ami-bot ready" log line (logged once Slack accepted the token) and to the first
 * GET /healthz answered 200 (median of 3 starts), started two ways: `npm start` in the repository, as the
 * README runs it (npm, then prestart's build check, then node), and `node dist/src/main.js` directly. dist/
 * is brought up to date once beforehand, so both are the steady state; what a start right after a source
 * change adds is prestart's rebuild, timed as a cold tsc build into a scratch folder (dist/ is left alone).
 * For the direct start also its resident memory (VmRSS from /proc, sampled every 100 ms) once started and
 * idle, and with 1,000 pending jobs being watched (seeded into the database before start, polled every second).
 *
 * Then each of those two is set beside the floor any bot on the AWS SDK pays: a bare node process that only
 * imports @aws-sdk/client-ec2 and @aws-sdk/client-sts and constructs one client of each. All three run in
 * processes of their own with the same node flags (`--expose-gc` and a SIGUSR2 → gc() preload, see
 * GC_ON_SIGNAL_FLAGS), and after their warm-up (3 s idle; 3 full checks of the jobs) each is read the same way:
 * 5 times a forced full GC, 300 ms to settle, VmRSS; the median. The bot's overhead is its figure minus the floor.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import {
  type BotLaunch,
  type BotProcess,
  childNodeOptions,
  EXTERNAL_ID,
  figure,
  GC_ON_SIGNAL_FLAGS,
  percentile,
  REGION,
  REPO_ROOT,
  ROLE_ARN,
  removeTempDirs,
  rssAfterGc,
  seedPendingJobs,
  sleep,
  spawnBot,
  tempDir,
  until,
} from "./lib.js";

const STARTS = 3;
const IDLE_MS = 3_000;
const ACTIVE_JOBS = 1000;
/** Full checks of the 1,000 jobs to wait for before reading memory. */
const TICKS = 3;
const DIST_MAIN = join(REPO_ROOT, "dist/src/main.js");
/** Forced-GC readings of each process's memory (the median is the figure). */
const GC_SAMPLES = 5;
const IDLE_TARGET_MIB = 30;
const ACTIVE_TARGET_MIB = 45;
/** The floor: what importing the two AWS SDK clients the bot uses, and making one of each, costs. */
const FLOOR_SOURCE = `
import { EC2Client } from "@aws-sdk/client-ec2";
import { STSClient } from "@aws-sdk/client-sts";
globalThis.clients = [new EC2Client({}), new STSClient({})];
setInterval(() => {}, 60_000);
console.log("floor ready");
`;
/** What scripts/build-if-stale.mjs says on stderr when it compiles. */
const COMPILING = "compiling TypeScript";

/** `node scripts/build-if-stale.mjs`, as prestart runs it: compiles into dist/ only if src changed. */
function buildIfStale(): boolean {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, "scripts/build-if-stale.mjs")], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "inherit", "pipe"],
    encoding: "utf8",
  });
  if (result.stderr) process.stderr.write(result.stderr);
  if (result.status !== 0) throw new Error(`build-if-stale.mjs failed (${result.status ?? result.signal})`);
  return result.stderr.includes(COMPILING);
}

/** ms for a cold `tsc -p tsconfig.build.json` into a scratch folder (its build info too, so dist/ is untouched). */
function coldBuildMs(): number | undefined {
  const outDir = join(tempDir(), "dist");
  const tsc = join(REPO_ROOT, "node_modules/typescript/bin/tsc");
  const started = performance.now();
  const result = spawnSync(
    process.execPath,
    [tsc, "-p", "tsconfig.build.json", "--outDir", outDir, "--tsBuildInfoFile", join(outDir, ".tsbuildinfo")],
    { cwd: REPO_ROOT, stdio: "ignore" },
  );
  const ms = performance.now() - started;
  return result.status === 0 && existsSync(join(outDir, "src/main.js")) ? ms : undefined;
}

const slack = await startFakeSlack();
const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
const running: BotProcess[] = [];
const mib = (n: number) => `${n.toFixed(1)} MiB`;

/** Starts the bot STARTS times (on a fresh copy of `seededDb`, or an empty database); the last one stays up. */
async function startRepeatedly(
  launch: BotLaunch,
  seededDb: string | undefined,
  env: Record<string, string> = {},
  nodeFlags: readonly string[] = [],
) {
  const ready: number[] = [];
  const healthy: number[] = [];
  let rebuilt = 0;
  let bot: BotProcess | undefined;
  for (let i = 0; i < STARTS; i++) {
    await bot?.stop();
    const dbPath = join(tempDir(), "bot.db");
    if (seededDb) copyFileSync(seededDb, dbPath);
    bot = await spawnBot({ slack, aws, launch, dbPath, env, nodeFlags });
    running.push(bot);
    ready.push(bot.readyMs);
    healthy.push(bot.healthyMs);
    if (bot.logs.some((line) => line.includes(COMPILING))) rebuilt++;
  }
  // Someone saving a file under src/ while this runs makes prestart compile: say so beside the figure.
  if (rebuilt) console.log(`  (${rebuilt} of these ${STARTS} starts compiled: src changed during the run)`);
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

async function startTimes(mode: string, launch: BotLaunch, nodeFlags: readonly string[] = []) {
  const idle = await startRepeatedly(launch, undefined, {}, nodeFlags);
  figure(`footprint, ${mode}: spawn → "ami-bot ready" log line (median of ${STARTS})`, idle.readyMs, "ms");
  figure(`footprint, ${mode}: spawn → /healthz 200 (median of ${STARTS})`, idle.healthyMs, "ms");
  return idle;
}

/** VmRSS after forced GCs (see rssAfterGc): the median, and the figure's text with the samples' range. */
async function settledRss(pid: number): Promise<{ mib: number; text: string }> {
  const samples = await rssAfterGc(pid, GC_SAMPLES);
  const median = percentile(samples, 50);
  const range = `${Math.min(...samples).toFixed(1)}–${Math.max(...samples).toFixed(1)}`;
  return { mib: median, text: `${mib(median)} (median of ${GC_SAMPLES} after forced GC, ${range})` };
}

/** The floor, in a node process of its own, with the bot's node flags and AWS settings; read like the bot. */
async function measureFloor(): Promise<number> {
  const home = tempDir("ami-bot-bench-floor-");
  const child = spawn(process.execPath, ["--input-type=module", "-e", FLOOR_SOURCE], {
    cwd: REPO_ROOT, // where @aws-sdk/* resolve from, as for dist/src/main.js
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      NODE_OPTIONS: childNodeOptions(GC_ON_SIGNAL_FLAGS),
      AWS_ENDPOINT_URL: aws.url,
      AWS_REGION: REGION,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_CONFIG_FILE: join(home, "no-aws-config"),
      AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
      AWS_EC2_METADATA_DISABLED: "true",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let exited: number | string | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = code ?? signal;
      resolve();
    }),
  );
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString("utf8");
  });
  try {
    await until(
      () => {
        if (exited !== undefined) throw new Error(`the floor process exited (${exited}):\n${output}`);
        return output.includes("floor ready");
      },
      30_000,
      "the floor process",
    );
    await sleep(IDLE_MS);
    const floor = await settledRss(child.pid as number);
    figure(
      "footprint, floor (node importing @aws-sdk/client-ec2 and client-sts, one client each): RSS",
      floor.text,
    );
    return floor.mib;
  } finally {
    if (exited === undefined) {
      child.kill("SIGTERM");
      await exit;
    }
  }
}

function overhead(mode: string, what: string, botMiB: number, floorMiB: number, targetMiB: number): void {
  figure(
    `footprint, ${mode}: RSS ${what} above the floor`,
    `${mib(botMiB - floorMiB)} (target ≤ ${targetMiB} MiB)`,
  );
}

async function measureDirect(mode: string, seededDb: string, floorMiB: number): Promise<void> {
  // Started with the GC flags so the same process can be read after a forced GC too (they change nothing
  // until SIGUSR2 comes).
  const idle = await startTimes(mode, { kind: "node", main: DIST_MAIN }, GC_ON_SIGNAL_FLAGS);
  const idleUntil = Date.now() + IDLE_MS;
  figure(
    `footprint, ${mode}: RSS idle, no jobs`,
    await sampleMemory(idle.bot, () => Date.now() >= idleUntil),
  );
  const idleSettled = await settledRss(idle.bot.pid);
  figure(`footprint, ${mode}: RSS idle, no jobs, after forced GC`, idleSettled.text);
  await idle.bot.stop();

  // 1,000 pending jobs in the database before start, each checked every second.
  const active = await startRepeatedly(
    { kind: "node", main: DIST_MAIN },
    seededDb,
    { AMI_POLL_INTERVAL: "1s" },
    GC_ON_SIGNAL_FLAGS,
  );
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
  const activeSettled = await settledRss(active.bot.pid);
  figure(
    `footprint, ${mode}: RSS with ${ACTIVE_JOBS} pending jobs, after forced GC (still checked every second)`,
    activeSettled.text,
  );
  await active.bot.stop();

  overhead(mode, "idle", idleSettled.mib, floorMiB, IDLE_TARGET_MIB);
  overhead(mode, `with ${ACTIVE_JOBS} pending jobs`, activeSettled.mib, floorMiB, ACTIVE_TARGET_MIB);
}

try {
  // npm start runs in the repository, where the bot would also read a .env: flag one if it is there.
  if (existsSync(join(REPO_ROOT, ".env")))
    console.log(
      "  (the repository has a .env: npm start reads it, for variables this benchmark does not set)",
    );
  if (buildIfStale()) console.log("  (dist/ was out of date and has been rebuilt before measuring)");
  const seededDb = join(tempDir(), "seeded.db");
  await seedPendingJobs({ dbPath: seededDb, aws, slack, count: ACTIVE_JOBS, channelOf: (i) => `C0B${i}` });
  aws.requests.length = 0;

  const npm = await startTimes("npm start", { kind: "npm-start" });
  await npm.bot.stop();
  const floorMiB = await measureFloor();
  await measureDirect("node dist/src/main.js", seededDb, floorMiB);

  const buildMs = coldBuildMs();
  if (buildMs === undefined)
    console.log("  (tsc failed in the scratch build; the rebuild figure is skipped)");
  else {
    figure(
      "footprint, npm start after a source change: prestart's rebuild (cold tsc build, once)",
      buildMs,
      "ms",
    );
    figure(
      "footprint, npm start after a source change: spawn → /healthz 200 (estimate: rebuild + steady start)",
      buildMs + npm.healthyMs,
      "ms",
    );
  }
} finally {
  for (const bot of running) await bot.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
