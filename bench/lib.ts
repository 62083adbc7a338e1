/**
 * Shared pieces of the benchmarks: printing figures, percentiles, a bot child process pointed at the local
 * fakes, and jobs seeded straight into the database. Everything listens and connects on 127.0.0.1 only.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import { CreateImageCommand, EC2Client } from "@aws-sdk/client-ec2";
import type { NewJob } from "../src/domain/ports.js";
import { openDatabase } from "../src/store/database.js";
import { SqliteJobStore } from "../src/store/sqlite-job-store.js";
import type { FakeAws } from "../test/fakes/fake-aws.js";
import type { FakeSlack } from "../test/fakes/fake-slack.js";
import { freePort } from "../test/support/free-port.js";

export const SIGNING_SECRET = "bench-signing-secret-0123456789";
export const ACCOUNT_ID = "123456789012";
export const ROLE_ARN = `arn:aws:iam::${ACCOUNT_ID}:role/ami-bot-target`;
export const EXTERNAL_ID = "external-id-0123456789";
export const USER = "U0BENCHUSR";
export const REGION = "eu-west-1";
export const TARGET = "prod";
export const INSTANCE = "i-0123456789abcdef0";
export const REPO_ROOT = new URL("..", import.meta.url).pathname;

/** Prints one figure; run-all.ts collects these lines into its summary. */
export function figure(label: string, value: number | string, unit = ""): void {
  const shown = typeof value === "number" ? round(value) : value;
  console.log(`[bench] ${label}: ${shown}${unit ? ` ${unit}` : ""}`);
}

export function round(value: number): string {
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Nearest-rank percentile (p in 0–100) of a non-empty sample. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] ?? Number.NaN;
}

export { seededRandom } from "../test/support/seeded-random.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const tempDirs: string[] = [];
export function tempDir(prefix = "ami-bot-bench-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Polls until `check` returns a value, or throws after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false, timeoutMs: number, what: string) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Preloaded into the bot process: Bolt's HTTP receiver listens on every interface when given a bare
 * port, so listens without a host are pinned to 127.0.0.1. The bot's code is not changed.
 */
const LOOPBACK_ONLY = `data:text/javascript,${encodeURIComponent(`
import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") args.splice(1, 0, "127.0.0.1");
  else if (args[0] && typeof args[0] === "object" && args[0].port !== undefined && !args[0].host)
    args[0] = { ...args[0], host: "127.0.0.1" };
  return listen.apply(this, args);
};`)}`;

export interface BotProcess {
  /** The bot's own node process (under `npm start`, npm's grandchild). */
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:port/slack/events */
  readonly url: string;
  /** ms from spawn to the "ami-bot ready" log line. */
  readonly readyMs: number;
  /** ms from spawn to the first GET /healthz answered 200. */
  readonly healthyMs: number;
  readonly logs: string[];
  /** Resident set size now (VmRSS) and its peak so far (VmHWM), in MiB. */
  memory(): { rssMiB: number; peakMiB: number };
  stop(): Promise<void>;
}

/** How the bot is started. */
export type BotLaunch =
  /** `node --import tsx src/main.ts`: from source (the default). */
  | { readonly kind: "tsx" }
  /** `node <main>`: a compiled entry point such as dist/src/main.js. */
  | { readonly kind: "node"; readonly main: string }
  /** `npm start` in the repository, as the README runs it (prestart's build check, then node dist/src/main.js). */
  | { readonly kind: "npm-start" };

export interface SpawnBotOptions {
  readonly slack: FakeSlack;
  readonly aws: FakeAws;
  readonly dbPath: string;
  readonly launch?: BotLaunch;
  readonly env?: Record<string, string>;
  /**
   * Extra Node flags for the bot's process (such as GC_ON_SIGNAL_FLAGS); none by default. The compiled modes
   * pass them through NODE_OPTIONS, so under `npm start` npm's own node gets them too.
   */
  readonly nodeFlags?: readonly string[];
}

/** Process groups of `npm start` runs not yet known to be gone: killed outright if the benchmark exits. */
const liveGroups = new Set<number>();
let groupsGuarded = false;
function guardGroups(): void {
  if (groupsGuarded) return;
  groupsGuarded = true;
  const killAll = () => {
    for (const pgid of liveGroups) signalGroup(pgid, "SIGKILL");
  };
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => {
      killAll();
      process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    });
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // already gone
  }
}

/** Processes of a process group that have not exited (zombies left unreaped do not count), from /proc. */
export function groupMembers(pgid: number): { pid: number; argv: string[] }[] {
  const members: { pid: number; argv: string[] }[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(pgrp) !== pgid || state === "Z") continue;
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").slice(0, -1);
      members.push({ pid: Number(name), argv });
    } catch {
      // exited while we looked
    }
  }
  return members;
}

/** Starts the real bot as a child process in HTTP mode, against the fakes. */
export async function spawnBot(options: SpawnBotOptions): Promise<BotProcess> {
  const launch = options.launch ?? { kind: "tsx" };
  const port = await freePort();
  const home = tempDir("ami-bot-bench-cwd-"); // no .env there: only the variables below apply
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: options.slack.url,
    PORT: String(port),
    AMI_BOT_DB: options.dbPath,
    AMI_TARGET_NAME: TARGET,
    AMI_TARGET_ROLE_ARN: ROLE_ARN,
    AMI_TARGET_EXTERNAL_ID: EXTERNAL_ID,
    AMI_TARGET_REGIONS: REGION,
    AMI_TARGET_ALLOW_USERS: USER,
    AWS_ENDPOINT_URL: options.aws.url,
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_CONFIG_FILE: join(home, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    LOG_LEVEL: "info",
    ...options.env,
  };
  // The compiled modes get the loopback preload through NODE_OPTIONS, so `npm start` (whose node process
  // cannot be given flags) and `node dist/src/main.js` see exactly the same environment.
  const nodeFlags = options.nodeFlags ?? [];
  if (launch.kind !== "tsx") env.NODE_OPTIONS = childNodeOptions(nodeFlags);
  const [command, args, cwd]: [string, string[], string] =
    launch.kind === "npm-start"
      ? ["npm", ["start"], REPO_ROOT] // REPO_ROOT's .env, if any, would apply here (see footprint.ts)
      : launch.kind === "node"
        ? [process.execPath, [launch.main], home]
        : [
            process.execPath,
            [
              "--import",
              import.meta.resolve("tsx"),
              "--import",
              LOOPBACK_ONLY,
              ...nodeFlags,
              join(REPO_ROOT, "src/main.ts"),
            ],
            home,
          ];
  // npm's update check would ask the registry on every start (HOME is fresh); nothing else of npm's is set.
  const spawnEnv = launch.kind === "npm-start" ? { ...env, npm_config_update_notifier: "false" } : env;
  // npm start runs the bot as a grandchild (npm → sh → node): give it a process group of its own to stop.
  const group = launch.kind === "npm-start";
  const started = performance.now();
  const child: ChildProcess = spawn(command, args, {
    cwd,
    env: spawnEnv,
    stdio: ["ignore", "pipe", "pipe"],
    detached: group,
  });
  const leader = child.pid ?? 0;
  if (group && leader) {
    guardGroups();
    liveGroups.add(leader);
  }
  const logs: string[] = [];
  let readyAt: number | undefined;
  let exited: number | string | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = code ?? signal;
      resolve();
    }),
  );
  let pending = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const lines = (pending + chunk.toString("utf8")).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (readyAt === undefined && line.includes('"ami-bot ready"')) readyAt = performance.now();
      if (logs.length < 5000) logs.push(line);
    }
  });
  child.stderr?.on("data", (chunk: Buffer) => logs.push(chunk.toString("utf8")));
  /** Under npm, the bot's own process once found: stopped first, so sh and npm exit after it as they would. */
  let botPid: number | undefined;
  const stop = group
    ? async () => {
        if (!liveGroups.has(leader)) return;
        try {
          process.kill(botPid ?? -leader, "SIGTERM");
        } catch {
          signalGroup(leader, "SIGTERM");
        }
        const killer = setTimeout(() => signalGroup(leader, "SIGKILL"), 5_000);
        await exit;
        // npm may be gone before the bot it started: wait for the whole group.
        await until(
          () => groupMembers(leader).length === 0,
          20_000,
          `process group ${leader} to exit`,
        ).finally(() => clearTimeout(killer));
        liveGroups.delete(leader);
      }
    : async () => {
        if (exited !== undefined) return;
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exit;
        clearTimeout(killer);
      };

  try {
    let healthyAt: number | undefined;
    while (healthyAt === undefined) {
      if (exited !== undefined) throw new Error(`bot exited (${exited}):\n${logs.slice(-20).join("\n")}`);
      if (performance.now() - started > 60_000) throw new Error("bot did not become healthy in 60 s");
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`)
        .then((res) => res.status === 200)
        .catch(() => false);
      if (ok) healthyAt = performance.now();
      else await sleep(5);
    }
    await until(() => readyAt !== undefined, 10_000, "the ready log line");
    // Under npm the bot is the group's `node dist/src/main.js` (npm → sh → node), not the leader.
    botPid = group
      ? groupMembers(leader).find(
          (m) => basename(m.argv[0] ?? "") === "node" && m.argv[1] === "dist/src/main.js",
        )?.pid
      : leader;
    const pid = botPid ?? leader;
    return {
      pid,
      port,
      url: `http://127.0.0.1:${port}/slack/events`,
      readyMs: (readyAt as number) - started,
      healthyMs: healthyAt - started,
      logs,
      memory: () => memoryOf(pid),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Resident set size now (VmRSS) and its peak so far (VmHWM) of any process, in MiB. */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 };
}

/**
 * Node flags that let a benchmark force a full garbage collection in a child process: with them, SIGUSR2
 * makes it run `gc()` (nothing else changes until then). Send SIGUSR2 only to processes started with them.
 */
export const GC_ON_SIGNAL_FLAGS: readonly string[] = [
  "--expose-gc",
  `--import=data:text/javascript,${encodeURIComponent('process.on("SIGUSR2", () => globalThis.gc?.());')}`,
];

/**
 * Resident memory with garbage collected: `samples` times, forces a full GC in `pid` (a process started
 * with GC_ON_SIGNAL_FLAGS), waits `settleMs` and reads VmRSS. Returns the samples, in MiB.
 */
export async function rssAfterGc(pid: number, samples = 5, settleMs = 300): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < samples; i++) {
    process.kill(pid, "SIGUSR2");
    await sleep(settleMs);
    out.push(memoryOf(pid).rssMiB);
  }
  return out;
}

/** The same node flags, environment and loopback pinning every benchmark child gets (see spawnBot). */
export function childNodeOptions(flags: readonly string[] = []): string {
  return [`--import=${LOOPBACK_ONLY}`, ...flags].join(" ");
}

export interface BareBoltProcess {
  readonly pid: number;
  /** http://127.0.0.1:port/slack/events */
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Starts bench/bare-bolt-app.ts (a Bolt app that only acks /ami and opens `view`) as spawnBot starts the
 * bot from source: `node --import tsx`, the loopback preload, the same token, signing secret and Slack URL.
 */
export async function spawnBareBolt(options: { slack: FakeSlack; view: unknown }): Promise<BareBoltProcess> {
  const port = await freePort();
  const home = tempDir("ami-bot-bench-bare-");
  const viewFile = join(home, "view.json");
  writeFileSync(viewFile, JSON.stringify(options.view));
  const child = spawn(
    process.execPath,
    [
      "--import",
      import.meta.resolve("tsx"),
      "--import",
      LOOPBACK_ONLY,
      join(REPO_ROOT, "bench/bare-bolt-app.ts"),
    ],
    {
      cwd: home,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: home,
        SLACK_BOT_TOKEN: "xoxb-test-token",
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_API_URL: options.slack.url,
        PORT: String(port),
        BARE_VIEW_FILE: viewFile,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logs: string[] = [];
  let ready = false;
  let exited: number | string | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", (code, signal) => {
      exited = code ?? signal;
      resolve();
    }),
  );
  child.stdout.on("data", (chunk: Buffer) => {
    const text = chunk.toString("utf8");
    if (text.includes("bare bolt app ready")) ready = true;
    if (logs.length < 1000) logs.push(text);
  });
  child.stderr.on("data", (chunk: Buffer) => logs.push(chunk.toString("utf8")));
  const stop = async () => {
    if (exited !== undefined) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exit;
    clearTimeout(killer);
  };
  try {
    await until(
      () => {
        if (exited !== undefined) throw new Error(`bare Bolt app exited (${exited}):\n${logs.join("")}`);
        return ready;
      },
      60_000,
      "the bare Bolt app to listen",
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { pid: child.pid ?? 0, url: `http://127.0.0.1:${port}/slack/events`, stop };
}

/** An EC2 client on the bot's own (non-session) test key, for setting up images at the fake. */
export function setupClient(aws: FakeAws, region: string): EC2Client {
  return new EC2Client({
    region,
    endpoint: aws.url,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
}

/** Creates `count` pending images in one region of the fake, through its CreateImage; returns their ids. */
export async function createImages(aws: FakeAws, region: string, count: number): Promise<string[]> {
  if (!aws.instances.has(INSTANCE)) aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  const client = setupClient(aws, region);
  const indexes = Array.from({ length: count }, (_, i) => i);
  const ids = await mapLimited(indexes, 8, async (i) => {
    const out = await client.send(
      new CreateImageCommand({ InstanceId: INSTANCE, Name: `bench ${region} ${i} ${Date.now()}` }),
    );
    return out.ImageId as string;
  });
  client.destroy();
  return ids;
}

export interface SeededJob {
  readonly jobId: string;
  readonly imageId: string;
  readonly channel: string;
  readonly rootTs: string;
}

/** The i-th benchmark job of a run (ids, view and hash prefixed, so runs of different benches never meet). */
export function benchJob(i: number, channel: string, prefix: string): NewJob {
  return {
    id: `${prefix}-job-${String(i).padStart(5, "0")}`,
    idempotencyKey: `${prefix}-view-${i}`,
    requestedBy: USER,
    originChannelId: channel,
    targetName: TARGET,
    roleArn: ROLE_ARN,
    region: REGION,
    instanceId: INSTANCE,
    instanceName: "web-1",
    imageName: `${prefix} image ${i}`,
    description: undefined,
    noReboot: true,
    tags: [],
    excludedDevices: [],
    channelId: channel,
    requestHash: `${prefix}-${i}`,
  };
}

/**
 * Writes `count` jobs whose images are pending into a new database, as the bot would have left them
 * after CreateImage. Given `slack`, their root and "pending" messages count as already posted and each
 * root is placed in the fake Slack (so replies have a thread to go to); without it the bot posts them.
 */
export async function seedPendingJobs(options: {
  dbPath: string;
  aws: FakeAws;
  slack?: FakeSlack;
  count: number;
  channelOf: (index: number) => string;
}): Promise<SeededJob[]> {
  const imageIds = await createImages(options.aws, REGION, options.count);
  const db = openDatabase(options.dbPath);
  const store = new SqliteJobStore(db);
  const now = Date.now();
  const seeded = imageIds.map((imageId, i) => {
    const channel = options.channelOf(i);
    const { id: jobId } = benchJob(i, channel, "bench");
    store.insert(benchJob(i, channel, "bench"), now);
    store.apply(jobId, { type: "image_created", imageId }, now);
    const rootTs = `1700000000.${String(i).padStart(6, "0")}`;
    if (options.slack) {
      store.markRootPosted(jobId, channel, rootTs, now);
      for (const message of store.outboxForJob(jobId)) store.markDelivered(message.id, rootTs, now);
      options.slack.messages.push({
        channel,
        ts: rootTs,
        threadTs: undefined,
        text: `bench root ${i}`,
        blocks: [],
        metadata: undefined,
        broadcast: false,
        updates: 0,
      });
    }
    return { jobId, imageId, channel, rootTs };
  });
  db.close();
  return seeded;
}
