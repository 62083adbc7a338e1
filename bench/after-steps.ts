/**
 * Steps after the image and the keep rule: what the new after-create steps and the keep rule's sweep cost
 * the account's EC2 and STS APIs, counted at the fake endpoint, through the real adapters.
 *
 * 1. Copies and sharing: N jobs (10, 100, 200) whose images are available, each to be copied into two
 *    regions and shared with two accounts, driven by the real image watcher (SQLite store in memory, the real
 *    Ec2Images adapter against the fake EC2/STS over HTTP) until every job is available. The clock is moved
 *    on by the poll interval between checks; the copies stay pending for PENDING_CHECKS checks and one more
 *    slowAfter (4 h) later, and are then completed with the fake's completeImage. Counts the calls per job
 *    by action, the ticks, and the DescribeImages of one check while the copies are pending (each copy is
 *    looked up on its own, where pending images are looked up once per place). The sweep's last figure adds
 *    10 ms to every answer, to show how its time grows with AWS's latency.
 * 2. The keep rule's sweep: one target keeping the newest 5 images per instance, the images of 1,000 of its
 *    finished jobs (in the SQLite store) of 100 instances (made up at the fake with the bot's tags, created
 *    over 200 days, a few with deregistration protection, a few named by a launch template) and 20 more
 *    tagged images of jobs the store does not know, in one region and then in two (the target's region and
 *    a region it copies into, holding the 1,000 jobs' copies). One real sweep (createKeepSweep with the real
 *    Ec2Cleanup), its summary recorded instead of posted: calls by action, removed, kept and left-alone
 *    counts, wall time, and the summary's size against Slack's limits (50 blocks, 3,000 characters a
 *    section). Then a second sweep, as the next day's would run.
 */
import { performance } from "node:perf_hooks";
import type { types } from "@slack/bolt";
import { pino } from "pino";
import { Ec2Cleanup } from "../src/aws/ec2-cleanup.js";
import { Ec2Images } from "../src/aws/ec2-images.js";
import type { Target, WatcherSettings } from "../src/config.js";
import type { SweepReport } from "../src/domain/keep-rule.js";
import type { NewJob } from "../src/domain/ports.js";
import { cleanupSummaryMessage } from "../src/slack/blocks/cleanup-summary.js";
import { openDatabase } from "../src/store/database.js";
import { SqliteJobStore } from "../src/store/sqlite-job-store.js";
import { createImageWatcher } from "../src/watcher/image-watcher.js";
import { createKeepSweep } from "../src/watcher/keep-sweep.js";
import { type FakeAws, type FakeImage, startFakeAws } from "../test/fakes/fake-aws.js";
import { testTarget } from "../test/fakes/job-fixtures.js";
import {
  ACCOUNT_ID,
  benchJob,
  figure,
  INSTANCE,
  REGION,
  ROLE_ARN,
  round,
  seededRandom,
  USER,
} from "./lib.js";

const JOB_COUNTS = [10, 100, 200];
const COPY_REGIONS = ["us-east-1", "ap-southeast-2"];
const SHARE_WITH = ["210987654321", "345678901234"];
/** Checks the copies stay pending before the fake completes them. */
const PENDING_CHECKS = 3;
const settings: WatcherSettings = {
  pollIntervalMs: 15_000,
  slowAfterMs: 4 * 3_600_000,
  slowPollIntervalMs: 5 * 60_000,
  giveUpAfterMs: 24 * 3_600_000,
};
const SWEEP_REGIONS = [REGION, "us-east-1"];
const INSTANCES = 100;
const IMAGES_PER_REGION = 1000;
const KEEP_LAST = 5;
const PROTECTED_PER_REGION = 10;
const TEMPLATES_PER_REGION = 10;
/** Images per region tagged by ami-bot whose jobs this store does not know. */
const UNKNOWN_PER_REGION = 20;
const DAY_MS = 86_400_000;
/** Slack's limits on one message: blocks, a section's text, a header's text. */
const SLACK_MAX_BLOCKS = 50;
const SLACK_SECTION_CHARS = 3000;
const SLACK_HEADER_CHARS = 150;
const ACTIONS = [
  "AssumeRole",
  "DescribeImages",
  "DescribeSnapshots",
  "CopyImage",
  "ModifyImageAttribute",
  "ModifySnapshotAttribute",
  "DescribeLaunchTemplateVersions",
  "DeregisterImage",
];

// The SDK's standard variables, as the bot would have them (the endpoint is set per scenario).
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: REGION,
  AWS_CONFIG_FILE: "/nonexistent/aws-config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
  AWS_EC2_METADATA_DISABLED: "true",
});

const silent = pino({ level: "silent" });

function benchTarget(regions: string[], after: Target["after"]): Target {
  return testTarget({
    name: "prod",
    roleArn: ROLE_ARN,
    accountId: ACCOUNT_ID,
    regions,
    allow: { users: [USER], usergroups: [], channels: [] },
    after,
  });
}

/** A job of the bench target, as the form would have stored it, with this id and instance. */
function benchNewJob(id: string, instanceId: string, extra: Partial<NewJob> = {}): NewJob {
  return {
    ...benchJob(0, "C0BENCH01", "bench"),
    id,
    idempotencyKey: `view-${id}`,
    instanceId,
    requestHash: `bench-${id}`,
    ...extra,
  };
}

type Counts = Record<string, number>;
function countCalls(aws: FakeAws, from: number, to = aws.requests.length): Counts {
  const counts: Counts = {};
  for (const r of aws.requests.slice(from, to)) counts[r.action] = (counts[r.action] ?? 0) + 1;
  return counts;
}
const n = (c: Counts, action: string) => c[action] ?? 0;
const total = (c: Counts) => Object.values(c).reduce((a, b) => a + b, 0);
const byAction = (c: Counts, per = 1) =>
  ACTIONS.filter((a) => n(c, a) > 0)
    .map((a) => `${a} ${round(n(c, a) / per)}`)
    .join(", ");

// ─── 1. Copies and sharing ───────────────────────────────────────────────────────────────────────────

interface StepsRow {
  jobs: number;
  /** Calls from the first tick to the last, by action. */
  calls: Counts;
  ticks: number;
  checks: number;
  wallMs: number;
  /** The tick that starts the steps (shares the source, asks for the copies): calls and time. */
  startCalls: Counts;
  startMs: number;
  /** One check with every copy pending: DescribeImages, and time. */
  pendingDescribe: number;
  pendingCalls: Counts;
  pendingMs: number;
  /** The check that finds the copies available and shares them. */
  lastCalls: Counts;
  lastMs: number;
  /** Per destination region, CopyImage calls in the one tick that starts them. */
  copiesPerRegionInOneTick: number;
  available: number;
  sharedAll: boolean;
  /** After the copies have been pending for slowAfter: how long until the next look. */
  slowNextMs: number;
}

async function stepsScenario(jobCount: number): Promise<StepsRow> {
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: {} } });
  process.env.AWS_ENDPOINT_URL = aws.url;
  const images = new Ec2Images();
  const db = openDatabase(":memory:");
  try {
    const target = benchTarget([REGION], {
      copyTo: COPY_REGIONS.map((region) => ({ region, kmsKeyId: undefined })),
      shareWith: SHARE_WITH,
      keep: undefined,
    });
    const store = new SqliteJobStore(db);
    let now = Date.now();
    // Each job's image, made by the bot (its tags, one snapshot) and available; the job still pending.
    for (let i = 0; i < jobCount; i++) {
      const id = `after-job-${String(i).padStart(4, "0")}`;
      const image = aws.addImage({
        name: `bench after ${i}`,
        region: REGION,
        instanceId: INSTANCE,
        sourceInstanceId: INSTANCE,
        tags: {
          Name: `bench after ${i}`,
          "ami-bot:job-id": id,
          "ami-bot:requested-by": USER,
          "ami-bot:channel": "C0BENCH01",
        },
        snapshots: 1,
      });
      const created = now - jobCount + i;
      store.insert(
        benchNewJob(id, INSTANCE, {
          imageName: `bench after ${i}`,
          copyTo: COPY_REGIONS,
          shareWith: SHARE_WITH,
        }),
        created,
      );
      store.apply(id, { type: "image_created", imageId: image.imageId }, created);
    }
    const watcher = createImageWatcher({
      store,
      images,
      targets: [target],
      settings,
      clock: { now: () => now },
      logger: silent,
    });
    const copies = () => [...aws.images.values()].filter((i) => i.sourceImageId !== undefined);

    /** Ticks at one moment until no job is due: one check of every unfinished job. */
    const check = async () => {
      const from = aws.requests.length;
      const t0 = performance.now();
      let ticks = 0;
      /** Where each tick's requests start. */
      const starts: number[] = [];
      while (store.due(now, 1).length > 0) {
        if (++ticks > 10) throw new Error("jobs stayed due at one moment");
        starts.push(aws.requests.length);
        await watcher.tick();
      }
      return { ticks, starts, ms: performance.now() - t0, from, to: aws.requests.length };
    };

    const start = aws.requests.length;
    const t0 = performance.now();
    let ticks = 0;
    let checks = 0;
    // First check: the images are found available (one DescribeImages for the place), the jobs turn
    // finishing and are due at once: a second tick shares the source images and asks for the copies.
    const first = await check();
    ticks += first.ticks;
    checks++;
    if (first.ticks !== 2)
      throw new Error(`expected the steps to start in a second tick, got ${first.ticks}`);
    const startCalls = countCalls(aws, first.starts[1] as number, first.to);
    const copyCalls = aws.requests.slice(first.from, first.to).filter((r) => r.action === "CopyImage");
    const copiesPerRegionInOneTick = Math.max(
      ...COPY_REGIONS.map((region) => copyCalls.filter((r) => r.region === region).length),
    );
    if (copies().length !== jobCount * COPY_REGIONS.length)
      throw new Error(`expected ${jobCount * COPY_REGIONS.length} copies, found ${copies().length}`);

    let pending: Awaited<ReturnType<typeof check>> | undefined;
    for (let i = 0; i < PENDING_CHECKS; i++) {
      now += settings.pollIntervalMs;
      pending = await check();
      ticks += pending.ticks;
      checks++;
    }
    if (!pending) throw new Error("no pending check");
    // Once the copies have been pending for slowAfter, the next look comes a slow interval later.
    now += settings.slowAfterMs;
    ticks += (await check()).ticks;
    checks++;
    const next = db.prepare("SELECT MIN(next_check_at) AS at FROM jobs WHERE state = 'finishing'").get() as {
      at: number;
    };
    const slowNextMs = next.at - now;
    for (const copy of copies()) aws.completeImage(copy.imageId);
    now += slowNextMs;
    const last = await check();
    ticks += last.ticks;
    checks++;
    // Anything left (a step retried later) runs to its end, a poll interval at a time.
    while (store.unfinishedCount() > 0) {
      if (checks > PENDING_CHECKS + 100) throw new Error("jobs did not finish");
      now += settings.pollIntervalMs;
      ticks += (await check()).ticks;
      checks++;
    }
    const wallMs = performance.now() - t0;
    const calls = countCalls(aws, start);

    const pendingCalls = countCalls(aws, pending.from, pending.to);
    const sharedAll = [...aws.images.values()].every(
      (i) =>
        SHARE_WITH.every((a) => i.launchPermissions.has(a)) &&
        i.snapshots.every((s) => SHARE_WITH.every((a) => s.createVolumePermissions.has(a))),
    );
    const available = db.prepare("SELECT COUNT(*) AS n FROM jobs WHERE state = 'available'").get() as {
      n: number;
    };
    return {
      jobs: jobCount,
      calls,
      ticks,
      checks,
      wallMs,
      startCalls,
      startMs: first.ms,
      pendingDescribe: n(pendingCalls, "DescribeImages"),
      pendingCalls,
      pendingMs: pending.ms,
      lastCalls: countCalls(aws, last.from, last.to),
      lastMs: last.ms,
      copiesPerRegionInOneTick,
      available: available.n,
      sharedAll,
      slowNextMs,
    };
  } finally {
    images.close();
    db.close();
    await aws.close();
  }
}

// ─── 2. The keep rule's sweep ─────────────────────────────────────────────────────────────────────────

interface SweepRow {
  regions: number;
  images: number;
  calls: Counts;
  callsByRegion: Record<string, number>;
  removed: number;
  keptProtected: number;
  keptInUse: number;
  failed: number;
  regionErrors: number;
  /** Images tagged by ami-bot whose jobs are not this target's finished ones: neither weighed nor removed. */
  leftAlone: number;
  /** Images within the rule (the newest 5 per instance and region), never weighed for removal. */
  within: number;
  left: number;
  wallMs: number;
  summary: SummarySize;
  /** The next day's sweep: calls, whether it posts, what it says. */
  again: { calls: Counts; posted: boolean; removed: number; keptProtected: number; keptInUse: number };
}

interface SummarySize {
  blocks: number;
  /** The longest section text, and each block's text length. */
  longestSection: number;
  headerChars: number;
  /** Characters of every text in the blocks, and the message's JSON. */
  textChars: number;
  jsonChars: number;
  fallbackChars: number;
  /** Image lines shown in the summary, of those removed. */
  removedListed: number;
  fits: boolean;
  problems: string[];
}

function measureSummary(report: SweepReport): SummarySize {
  const message = cleanupSummaryMessage(report);
  const problems: string[] = [];
  let longestSection = 0;
  let headerChars = 0;
  let textChars = 0;
  for (const [i, block] of message.blocks.entries()) {
    const b = block as types.KnownBlock & {
      text?: { text: string };
      elements?: { text?: string }[];
    };
    if (b.type === "section" && b.text) {
      longestSection = Math.max(longestSection, b.text.text.length);
      textChars += b.text.text.length;
      if (b.text.text.length > SLACK_SECTION_CHARS)
        problems.push(`block ${i + 1} (section) has ${b.text.text.length} characters`);
    } else if (b.type === "header" && b.text) {
      headerChars = b.text.text.length;
      textChars += headerChars;
      if (headerChars > SLACK_HEADER_CHARS) problems.push(`the header has ${headerChars} characters`);
    } else if (b.type === "context")
      for (const e of b.elements ?? []) {
        textChars += e.text?.length ?? 0;
        if ((e.text?.length ?? 0) > SLACK_SECTION_CHARS)
          problems.push(`block ${i + 1} (context) has ${e.text?.length} characters`);
      }
  }
  if (message.blocks.length > SLACK_MAX_BLOCKS) problems.push(`${message.blocks.length} blocks`);
  const removedSection = message.blocks.find(
    (b) =>
      b.type === "section" &&
      /^\*(Removed|Would remove) /.test((b as { text?: { text: string } }).text?.text ?? ""),
  ) as { text: { text: string } } | undefined;
  const removedListed = (removedSection?.text.text.match(/^• /gm) ?? []).length;
  return {
    blocks: message.blocks.length,
    longestSection,
    headerChars,
    textChars,
    jsonChars: JSON.stringify(message).length,
    fallbackChars: message.text.length,
    removedListed,
    fits: problems.length === 0,
    problems,
  };
}

async function sweepScenario(regionCount: number, latencyMs = 0): Promise<SweepRow> {
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: {} } });
  process.env.AWS_ENDPOINT_URL = aws.url;
  const cleanup = new Ec2Cleanup();
  const db = openDatabase(":memory:");
  try {
    const regions = SWEEP_REGIONS.slice(0, regionCount);
    // The target's own region, and (with two) a region its images are copied into.
    const target = benchTarget([REGION], {
      copyTo: regions.slice(1).map((region) => ({ region, kmsKeyId: undefined })),
      shareWith: [],
      keep: { lastPerInstance: KEEP_LAST, maxAgeMs: undefined, channel: "C0CLEANUP" },
    });
    const store = new SqliteJobStore(db);
    const random = seededRandom(20261203);
    const now = Date.now();
    const instances = Array.from({ length: INSTANCES }, (_, i) => `i-0${i.toString(16).padStart(16, "0")}`);
    const tagsOf = (jobId: string, instanceId: string, name: string) => ({
      Name: name,
      "ami-bot:job-id": jobId,
      "ami-bot:instance-id": instanceId,
      "ami-bot:requested-by": USER,
      "ami-bot:channel": "C0BENCH01",
    });
    // The target's finished jobs, each with its image in the target's region and (with two regions) its copy
    // in the other, made half an hour later and tagged as CopyImage tags it (the same job id).
    const made: FakeImage[][] = regions.map(() => []);
    for (let i = 0; i < IMAGES_PER_REGION; i++) {
      const instanceId = instances[i % INSTANCES] as string;
      const jobId = `sweep-job-${String(i).padStart(4, "0")}`;
      const name = `web ${instanceId} ${i}`;
      const createdAt = now - Math.floor(random() * 200 * DAY_MS);
      const source = aws.addImage({
        name,
        region: REGION,
        instanceId,
        sourceInstanceId: instanceId,
        tags: tagsOf(jobId, instanceId, name),
        creationDate: createdAt,
        snapshots: 1,
      });
      made[0]?.push(source);
      for (const region of regions.slice(1))
        made[regions.indexOf(region)]?.push(
          aws.addImage({
            name,
            region,
            instanceId,
            tags: { ...tagsOf(jobId, instanceId, name), "ami-bot:source-image": source.imageId },
            creationDate: createdAt + 30 * 60_000,
            snapshots: 1,
          }),
        );
      store.insert(benchNewJob(jobId, instanceId, { imageName: name }), createdAt);
      store.apply(jobId, { type: "image_created", imageId: source.imageId }, createdAt);
      store.apply(jobId, { type: "image_state", state: "available" }, createdAt + 600_000);
    }
    for (const [r, region] of regions.entries()) {
      // Tagged by ami-bot, but not jobs of this target in this store (another ami-bot's, say): left alone.
      for (let i = 0; i < UNKNOWN_PER_REGION; i++) {
        const instanceId = instances[i % INSTANCES] as string;
        aws.addImage({
          name: `other ${region} ${i}`,
          region,
          instanceId,
          tags: tagsOf(`other-bot-job-${r}-${i}`, instanceId, `other ${i}`),
          creationDate: now - Math.floor(random() * 200 * DAY_MS),
          snapshots: 1,
        });
      }
      // A few protected, a few named by a launch template ($Latest, $Default or both), chosen at random.
      const images = made[r] ?? [];
      const pick = () => images[Math.floor(random() * images.length)];
      let protectedCount = 0;
      while (protectedCount < PROTECTED_PER_REGION) {
        const image = pick();
        if (image?.deregistrationProtection !== "disabled") continue;
        image.deregistrationProtection = "enabled-without-cooldown";
        protectedCount++;
      }
      const versions = [undefined, "$Latest", "$Default"] as const;
      for (let t = 0; t < TEMPLATES_PER_REGION; t++)
        aws.addLaunchTemplate({
          region,
          name: `web-${t}`,
          imageId: pick()?.imageId,
          ...(versions[t % 3] && { version: versions[t % 3] }),
        });
    }
    const posted: { channel: string; report: SweepReport }[] = [];
    const sweeper = createKeepSweep({
      store,
      cleanup,
      targets: [target],
      clock: { now: () => Date.now() },
      logger: silent,
      postSummary: async (channel, report) => void posted.push({ channel, report }),
    });
    const from = aws.requests.length;
    aws.latencyMs = latencyMs;
    const t0 = performance.now();
    const { report } = await sweeper.sweep(target, { preview: false, post: "always" });
    const wallMs = performance.now() - t0;
    aws.latencyMs = 0;
    const calls = countCalls(aws, from);
    const callsByRegion: Record<string, number> = {};
    for (const r of aws.requests.slice(from)) callsByRegion[r.region] = (callsByRegion[r.region] ?? 0) + 1;
    if (posted.length !== 1) throw new Error(`expected one summary, got ${posted.length}`);
    const summary = measureSummary(report);

    // The next day's sweep, as the hourly check runs it: posted only when worth telling.
    const againFrom = aws.requests.length;
    const before = posted.length;
    const again = await sweeper.sweep(target, { preview: false, post: "when_worth_telling" });
    return {
      regions: regions.length,
      images: regions.length * (IMAGES_PER_REGION + UNKNOWN_PER_REGION),
      calls,
      callsByRegion,
      removed: report.removed.length,
      keptProtected: report.keptProtected.length,
      keptInUse: report.keptInUse.length,
      failed: report.failed.length,
      regionErrors: report.regionErrors.length,
      leftAlone: report.leftAlone,
      within:
        regions.length * (IMAGES_PER_REGION + UNKNOWN_PER_REGION) -
        report.leftAlone -
        report.removed.length -
        report.keptProtected.length -
        report.keptInUse.length -
        report.failed.length,
      left: aws.images.size,
      wallMs,
      summary,
      again: {
        calls: countCalls(aws, againFrom),
        posted: posted.length > before,
        removed: again.report.removed.length,
        keptProtected: again.report.keptProtected.length,
        keptInUse: again.report.keptInUse.length,
      },
    };
  } finally {
    cleanup.close();
    db.close();
    await aws.close();
  }
}

// ─── Run and print ────────────────────────────────────────────────────────────────────────────────────

const stepRows: StepsRow[] = [];
for (const jobs of JOB_COUNTS) {
  const row = await stepsScenario(jobs);
  stepRows.push(row);
  figure(
    `after steps: ${jobs} jobs (copy to 2 regions, share with 2 accounts), AWS calls per job`,
    `${byAction(row.calls, jobs)} (${round(total(row.calls) / jobs)} in all)`,
  );
  figure(
    `after steps: ${jobs} jobs, DescribeImages in one check with every copy pending`,
    `${row.pendingDescribe} (${round(row.pendingDescribe / jobs)} per job; ${COPY_REGIONS.length} if batched per place, as pending images are)`,
  );
  figure(
    `after steps: ${jobs} jobs, ticks / checks / wall time until every job is available`,
    `${row.ticks} / ${row.checks} / ${row.wallMs.toFixed(0)} ms (available ${row.available}/${jobs}, ${row.sharedAll ? "every image and snapshot shared" : "NOT every image shared"})`,
  );
}
const main = stepRows.at(-1) as StepsRow;
// Pending copies are looked at once per place each poll interval (less often once pending for slowAfter),
// measured: DescribeImages in one check while every copy is pending, whatever the number of jobs.
const hourly = (3_600_000 / settings.pollIntervalMs) * main.pendingDescribe;
const hourlySlow = (3_600_000 / main.slowNextMs) * main.pendingDescribe;
figure(
  `after steps: ${main.jobs} jobs, the tick that starts the steps (share source, CopyImage): calls, time`,
  `${byAction(main.startCalls)}; ${main.startMs.toFixed(0)} ms (with the place's check); ${main.copiesPerRegionInOneTick} CopyImage into each destination region in that one tick`,
);
figure(
  `after steps: ${main.jobs} jobs, one check while copies pending: calls, time`,
  `${byAction(main.pendingCalls)}; ${main.pendingMs.toFixed(0)} ms`,
);
figure(
  `after steps: ${main.jobs} jobs, the check that finds the copies available and shares them: calls, time`,
  `${byAction(main.lastCalls)}; ${main.lastMs.toFixed(0)} ms`,
);
figure(
  `after steps: DescribeImages per hour of copying for all ${main.jobs} jobs (first 4 h, a look every 15 s / after, every ${round(main.slowNextMs / 1000)} s)`,
  `${hourly} / ${hourlySlow} (${round(hourly / main.jobs)} / ${round(hourlySlow / main.jobs)} per job)`,
);

console.log(
  "\n| finishing jobs | calls per job: CopyImage / DescribeImages / ModifyImageAttribute / ModifySnapshotAttribute / AssumeRole | DescribeImages in one check, copies pending (per job) | same, batched per place | ticks (checks) | wall time | one pending check |",
);
console.log("|---:|---|---:|---:|---:|---:|---:|");
for (const r of stepRows) {
  const per = (a: string) => round(n(r.calls, a) / r.jobs);
  console.log(
    `| ${r.jobs} | ${per("CopyImage")} / ${per("DescribeImages")} / ${per("ModifyImageAttribute")} / ${per("ModifySnapshotAttribute")} / ${per("AssumeRole")} | ` +
      `${r.pendingDescribe} (${round(r.pendingDescribe / r.jobs)}) | ${COPY_REGIONS.length} | ${r.ticks} (${r.checks}) | ${r.wallMs.toFixed(0)} ms | ${r.pendingMs.toFixed(0)} ms |`,
  );
}
console.log(
  `(each image has one snapshot; copies stay pending for ${PENDING_CHECKS} checks 15 s apart on the watcher's clock and one\n` +
    " more after 4 h (slowAfter), then the fake completes them. AssumeRole includes the watcher's one read-only\n" +
    " session per place (3 places). Wall times against the fake include its own work, which runs in this process.)",
);

const sweepRows: SweepRow[] = [];
for (const regions of [1, 2]) {
  const row = await sweepScenario(regions);
  sweepRows.push(row);
  const s = row.summary;
  figure(
    `keep rule: ${row.images} bot-tagged images (${INSTANCES} instances) in ${regions} region${regions > 1 ? "s" : ""}, AWS calls of one sweep`,
    `${byAction(row.calls)} (${total(row.calls)} in all; per region ${Object.values(row.callsByRegion).join(" / ")})`,
  );
  figure(
    `keep rule: ${regions} region${regions > 1 ? "s" : ""}, removed / kept protected / kept in launch templates / failed / within the rule / left alone`,
    `${row.removed} / ${row.keptProtected} / ${row.keptInUse} / ${row.failed} / ${row.within} / ${row.leftAlone} (${row.left} images left)`,
  );
  figure(
    `keep rule: ${regions} region${regions > 1 ? "s" : ""}, wall time of one sweep`,
    `${row.wallMs.toFixed(0)} ms`,
  );
  figure(
    `keep rule: ${regions} region${regions > 1 ? "s" : ""}, summary size (Slack: ${SLACK_MAX_BLOCKS} blocks, ${SLACK_SECTION_CHARS} chars a section)`,
    `${s.blocks} blocks, longest section ${s.longestSection} chars, ${s.textChars} chars of text (${s.jsonChars} as JSON); ` +
      `${s.fits ? "fits" : `DOES NOT FIT (${s.problems.join("; ")})`}; lists ${s.removedListed} of ${row.removed} removed images`,
  );
  figure(
    `keep rule: ${regions} region${regions > 1 ? "s" : ""}, the next day's sweep: calls, posted, what it says`,
    `${byAction(row.again.calls)}; ${row.again.posted ? "posted" : "not posted"} (removed ${row.again.removed}, kept protected ${row.again.keptProtected}, in templates ${row.again.keptInUse})`,
  );
}
// The same sweep with every answer 10 ms later: removals run one after another, two round trips each.
const LATENCY_MS = 10;
const slow = await sweepScenario(1, LATENCY_MS);
figure(
  `keep rule: 1 region, wall time of one sweep with ${LATENCY_MS} ms added to every answer`,
  `${slow.wallMs.toFixed(0)} ms (${total(slow.calls)} calls × ${LATENCY_MS} ms = ${total(slow.calls) * LATENCY_MS} ms if made one after another)`,
);
console.log(
  "\n| regions | bot images | DescribeImages | DescribeLaunchTemplateVersions | AssumeRole | DeregisterImage | removed | kept: protected / in a template | wall time | summary: blocks, longest section, listed of removed | fits Slack |",
);
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|");
for (const r of sweepRows)
  console.log(
    `| ${r.regions} | ${r.images} | ${n(r.calls, "DescribeImages")} | ${n(r.calls, "DescribeLaunchTemplateVersions")} | ${n(r.calls, "AssumeRole")} | ` +
      `${n(r.calls, "DeregisterImage")} | ${r.removed} | ${r.keptProtected} / ${r.keptInUse} | ${r.wallMs.toFixed(0)} ms | ` +
      `${r.summary.blocks}, ${r.summary.longestSection} chars, ${r.summary.removedListed} of ${r.removed} | ${r.summary.fits ? "yes" : `NO: ${r.summary.problems.join("; ")}`} |`,
  );
console.log(
  `(${IMAGES_PER_REGION} finished jobs' images per region, ${IMAGES_PER_REGION / INSTANCES} per instance, created over 200 days, and ${UNKNOWN_PER_REGION} of jobs the\n` +
    ` store does not know; keep the newest ${KEEP_LAST} per instance and region; ${PROTECTED_PER_REGION} protected and ${TEMPLATES_PER_REGION} named by a launch template\n` +
    " per region, chosen at random, so about half of them are beyond the rule. The second region holds the jobs' copies\n" +
    " (tagged as CopyImage tags them). The summary is recorded, not posted.)",
);
