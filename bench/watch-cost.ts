/**
 * Watch cost: how many EC2 API calls the watcher makes to check every pending image once, for 1, 100, 1,000
 * and 10,000 pending images spread over 1 and over 5 account/region groups, beside the per-job waiter
 * approach (one DescribeImages per image per poll, which is what `waitUntilImageAvailable` sends) measured
 * in the same run on the same images. EC2 throttles per account and region, so calls per check is what
 * decides how far the bot scales. Uses the real watcher, the real SQLite store (temp file) and the real
 * Ec2Images adapter against the fake EC2/STS endpoint, whose request log is the count. The images are made
 * through CreateImage and tagged with `ami-bot:job-id`, image and snapshots, as the bot tags them: the
 * watcher lists pending images and snapshots by that tag. A tick handles at most the watcher's batch (2,000
 * jobs), so 10,000 pending images take five ticks at the same moment: that round is what is counted, and
 * beside it one tick with a batch as large as the backlog. The clock is moved on by the poll interval
 * between rounds; the first round also assumes the read-only role once per group (counted separately).
 * A round's wall time is also taken with EC2 answered from memory: the watcher's and the store's own share.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { CreateImageCommand, DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { pino } from "pino";
import { Ec2Images } from "../src/aws/ec2-images.js";
import type { Target, WatcherSettings } from "../src/config.js";
import type { ImageService } from "../src/domain/ports.js";
import { NO_AFTER_STEPS } from "../src/domain/target.js";
import { openDatabase } from "../src/store/database.js";
import { SqliteJobStore } from "../src/store/sqlite-job-store.js";
import { createImageWatcher } from "../src/watcher/image-watcher.js";
import { type FakeAws, startFakeAws } from "../test/fakes/fake-aws.js";
import { MemoryImageService } from "../test/fakes/memory-image-service.js";
import {
  figure,
  INSTANCE,
  mapLimited,
  percentile,
  removeTempDirs,
  setupClient,
  tempDir,
  USER,
} from "./lib.js";

const IMAGE_COUNTS = [1, 100, 1000, 10_000];
const GROUP_COUNTS = [1, 5];
/** Steady rounds timed per scenario (the median is shown). */
const REPEAT = 3;
/** The watcher's own default: jobs handled per tick. */
const WATCHER_BATCH = 2000;
const REGIONS = ["eu-west-1", "us-east-1", "ap-southeast-2", "eu-central-1", "us-west-2"];
const settings: WatcherSettings = {
  pollIntervalMs: 15_000,
  slowAfterMs: 4 * 3_600_000,
  slowPollIntervalMs: 5 * 60_000,
  giveUpAfterMs: 24 * 3_600_000,
};

// The SDK's standard variables, as the bot would have them (the endpoint is set per scenario).
Object.assign(process.env, {
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: "eu-west-1",
  AWS_CONFIG_FILE: "/nonexistent/aws-config",
  AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
  AWS_EC2_METADATA_DISABLED: "true",
});

/** Group g: its own account (role) in its own region. */
function targetsFor(groups: number): Target[] {
  return Array.from({ length: groups }, (_, g) => {
    const accountId = String(100_000_000_000 + g);
    return {
      name: `acct-${g}`,
      roleArn: `arn:aws:iam::${accountId}:role/ami-bot-target`,
      accountId,
      partition: "aws",
      after: NO_AFTER_STEPS,
      admins: [],
      externalId: undefined,
      regions: [REGIONS[g] as string],
      allow: { users: [USER], usergroups: [], channels: [] },
      instanceScope: { requiredTags: {} },
      reboot: "never",
      tagKeys: undefined,
      jobsPerHour: 10,
      allowGuests: false,
      allowPublicChannels: false,
      approval: undefined,
    };
  });
}

/** Pending images made through CreateImage, tagged for their jobs as the bot tags them; returns their ids. */
async function createTaggedImages(
  aws: FakeAws,
  region: string,
  jobIds: readonly string[],
): Promise<string[]> {
  if (!aws.instances.has(INSTANCE)) aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  const client = setupClient(aws, region);
  const ids = await mapLimited(jobIds, 8, async (jobId) => {
    const tags = [{ Key: "ami-bot:job-id", Value: jobId }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: `bench ${jobId}`,
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    return out.ImageId as string;
  });
  client.destroy();
  return ids;
}

function countCalls(aws: FakeAws, from: number) {
  const requests = aws.requests.slice(from);
  const n = (action: string) => requests.filter((r) => r.action === action).length;
  return {
    describeImages: n("DescribeImages"),
    snapshots: n("DescribeSnapshots"),
    assumeRole: n("AssumeRole"),
  };
}

interface Row {
  images: number;
  groups: number;
  /** Ticks in one round (one check of every pending image). */
  ticks: number;
  botImages: number;
  botSnapshots: number;
  /** The calls of one tick whose batch holds every pending job, when a round takes more than one tick. */
  oneTick: number | undefined;
  assumeRole: number;
  assumeRoleLater: number;
  waiter: number;
  firstTickMs: number;
  tickMs: number;
  ownMs: number;
  waiterMs: number;
}

async function scenario(imageCount: number, groups: number): Promise<Row> {
  const targets = targetsFor(groups);
  const aws = await startFakeAws({ roles: Object.fromEntries(targets.map((t) => [t.roleArn, {}])) });
  process.env.AWS_ENDPOINT_URL = aws.url;
  try {
    // Images round-robin over the groups, created at the fake through CreateImage.
    const perGroup = targets.map(
      (_, g) => Math.floor(imageCount / groups) + (g < imageCount % groups ? 1 : 0),
    );
    const jobIds = perGroup.map((n, g) => Array.from({ length: n }, (_, i) => `job-${g}-${i}`));
    const imageIds = await Promise.all(
      targets.map((t, g) => createTaggedImages(aws, t.regions[0] as string, jobIds[g] ?? [])),
    );

    const db = openDatabase(join(tempDir(), "watch.db"));
    const store = new SqliteJobStore(db);
    let now = Date.now();
    // Jobs made in turn across the groups, a millisecond apart, as requests arrive: the store hands them out
    // oldest first, so a tick of 2,000 holds some of every group, as it would in use.
    const jobs = Array.from({ length: Math.max(...perGroup) }, (_, i) =>
      targets.flatMap((target, g) => {
        const imageId = imageIds[g]?.[i];
        return imageId === undefined ? [] : [{ target, imageId, id: jobIds[g]?.[i] as string }];
      }),
    ).flat();
    for (const [n, { target, imageId, id }] of jobs.entries()) {
      const created = now - jobs.length + n;
      store.insert(
        {
          id,
          idempotencyKey: `view-${id}`,
          requestedBy: USER,
          originChannelId: "C0BENCH01",
          targetName: target.name,
          roleArn: target.roleArn,
          region: target.regions[0] as string,
          instanceId: INSTANCE,
          instanceName: "web-1",
          imageName: `bench ${id}`,
          description: undefined,
          noReboot: true,
          tags: [],
          excludedDevices: [],
          channelId: "C0BENCH01",
          requestHash: `bench-${id}`,
        },
        created,
      );
      store.apply(id, { type: "image_created", imageId }, created);
    }
    const watcherOn = (images: ImageService, batchSize = WATCHER_BATCH) =>
      createImageWatcher({
        store,
        images,
        targets,
        settings,
        batchSize,
        clock: { now: () => now },
        logger: pino({ level: "silent" }),
      });
    const ec2 = new Ec2Images();
    /** Ticks at one moment until no job is due: one check of every pending image. */
    const round = async (watcher: ReturnType<typeof watcherOn>) => {
      let ticks = 0;
      while (store.due(now, 1).length > 0) {
        if (++ticks > 2 * Math.ceil(imageCount / WATCHER_BATCH))
          throw new Error("pending jobs were not checked");
        await watcher.tick();
      }
      return ticks;
    };
    const timedRound = async (watcher: ReturnType<typeof watcherOn>) => {
      const from = aws.requests.length;
      const t0 = performance.now();
      const ticks = await round(watcher);
      const ms = performance.now() - t0;
      return { ms, ticks, ...countCalls(aws, from) };
    };
    const watcher = watcherOn(ec2);
    const first = await timedRound(watcher); // includes one AssumeRole per group for the read-only session
    const steadyRounds = [];
    for (let i = 0; i < REPEAT; i++) {
      now += settings.pollIntervalMs;
      steadyRounds.push(await timedRound(watcher));
    }
    const steady = steadyRounds[steadyRounds.length - 1] as Awaited<ReturnType<typeof timedRound>>;
    // A round of several ticks, beside one tick whose batch holds every pending job.
    let oneTick: number | undefined;
    if (steady.ticks > 1) {
      now += settings.pollIntervalMs;
      const all = await timedRound(watcherOn(ec2, imageCount));
      oneTick = all.describeImages + all.snapshots;
    }
    if (store.unfinishedCount() !== imageCount) throw new Error("jobs left the pending state");

    // The same round with EC2 answered from memory: the watcher's and the store's own time.
    const memory = new MemoryImageService();
    for (const [g, target] of targets.entries())
      for (const imageId of imageIds[g] ?? [])
        memory.addImage({ target, region: target.regions[0] as string }, { imageId, name: imageId });
    const memoryWatcher = watcherOn(memory);
    const ownRounds: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      now += settings.pollIntervalMs;
      const t1 = performance.now();
      await round(memoryWatcher);
      ownRounds.push(performance.now() - t1);
    }

    // The per-job waiter: each job polls its own image with DescribeImages(ImageIds=[id]).
    const from = aws.requests.length;
    const t0 = performance.now();
    const clients = targets.map((t) => new EC2Client({ region: t.regions[0] as string }));
    const polls = targets.flatMap((_, g) => (imageIds[g] ?? []).map((id) => ({ client: clients[g], id })));
    await mapLimited(polls, 16, ({ client, id }) =>
      (client as EC2Client).send(new DescribeImagesCommand({ ImageIds: [id] })),
    );
    for (const client of clients) client.destroy();
    const waiterMs = performance.now() - t0;
    const waiter = countCalls(aws, from).describeImages;
    db.close();
    return {
      images: imageCount,
      groups,
      ticks: steady.ticks,
      botImages: steady.describeImages,
      botSnapshots: steady.snapshots,
      oneTick,
      assumeRole: first.assumeRole,
      assumeRoleLater: steadyRounds.reduce((sum, t) => sum + t.assumeRole, 0),
      waiter,
      firstTickMs: first.ms,
      tickMs: percentile(
        steadyRounds.map((t) => t.ms),
        50,
      ),
      ownMs: percentile(ownRounds, 50),
      waiterMs,
    };
  } finally {
    await aws.close();
  }
}

const rows: Row[] = [];
const ratio = (r: Row) => r.waiter / (r.botImages + r.botSnapshots);
try {
  for (const groups of GROUP_COUNTS)
    for (const images of IMAGE_COUNTS) {
      const row = await scenario(images, groups);
      rows.push(row);
      const bot = row.botImages + row.botSnapshots;
      figure(
        `watch: ${images} pending in ${groups} group${groups > 1 ? "s" : ""}, EC2 calls per check, bot vs per-job waiter`,
        `${bot} vs ${row.waiter} (${ratio(row).toFixed(1)}×)` +
          `${row.ticks > 1 ? ` in ${row.ticks} ticks (one tick of all: ${row.oneTick})` : ""}; ` +
          `round ${row.tickMs.toFixed(0)} ms, own share ${row.ownMs.toFixed(0)} ms`,
      );
    }
  const target = rows.find((r) => r.images === 1000 && r.groups === 1);
  if (target)
    figure(
      "watch: waiter ÷ bot at 1,000 pending in one group (target ≥ 500×)",
      `${ratio(target).toFixed(0)}×${ratio(target) >= 500 ? "" : " (below target)"}`,
    );
  console.log(
    "\n| pending images | groups | bot calls per check (Images+Snapshots) | ticks | one tick of all | waiter calls per check | waiter ÷ bot | AssumeRole: first round / later rounds | round wall time: first / steady (median) | same, EC2 answered in memory | waiter poll round |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows)
    console.log(
      `| ${r.images} | ${r.groups} | ${r.botImages + r.botSnapshots} (${r.botImages}+${r.botSnapshots}) | ${r.ticks} | ` +
        `${r.oneTick ?? "–"} | ${r.waiter} | ${ratio(r).toFixed(1)}× | ${r.assumeRole} / ${r.assumeRoleLater} | ` +
        `${r.firstTickMs.toFixed(0)} / ${r.tickMs.toFixed(0)} ms | ${r.ownMs.toFixed(0)} ms | ${r.waiterMs.toFixed(0)} ms |`,
    );
  console.log(
    `(one check = every pending image checked once: ticks at one moment, each handling at most the watcher's\n` +
      ` batch of ${WATCHER_BATCH} jobs; "one tick of all" is the same check with a batch as large as the backlog.\n` +
      " Calls counted at the fake EC2 endpoint; wall times against the fake include its own work, which runs in\n" +
      " this process; waiter rounds run 16 requests at a time)",
  );
} finally {
  removeTempDirs();
}
