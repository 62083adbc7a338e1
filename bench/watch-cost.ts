/**
 * Watch cost: how many EC2 API calls one watcher tick makes for 1, 100 and 1,000 pending images spread
 * over 1 and over 5 account/region groups, beside the per-job waiter approach (one DescribeImages per
 * image per poll, which is what `waitUntilImageAvailable` sends) measured in the same run on the same
 * images. EC2 throttles per account and region, so calls per tick is what decides how far the bot scales.
 * Uses the real watcher, the real SQLite store (temp file) and the real Ec2Images adapter against the
 * fake EC2/STS endpoint, whose request log is the count. The clock is moved on by the poll interval
 * between ticks; the first tick also assumes the read-only role once per group (counted separately).
 * The fake runs in this process and its filters are slow (a regex per value per image), so a tick's wall
 * time is also taken with EC2 answered from memory: that is the watcher's and the store's own share.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { pino } from "pino";
import { Ec2Images } from "../src/aws/ec2-images.js";
import type { Target, WatcherSettings } from "../src/config.js";
import type { ImageService } from "../src/domain/ports.js";
import { openDatabase } from "../src/store/database.js";
import { SqliteJobStore } from "../src/store/sqlite-job-store.js";
import { createImageWatcher } from "../src/watcher/image-watcher.js";
import { type FakeAws, startFakeAws } from "../test/fakes/fake-aws.js";
import { MemoryImageService } from "../test/fakes/memory-image-service.js";
import {
  createImages,
  figure,
  INSTANCE,
  mapLimited,
  percentile,
  removeTempDirs,
  tempDir,
  USER,
} from "./lib.js";

const IMAGE_COUNTS = [1, 100, 1000];
const GROUP_COUNTS = [1, 5];
/** Steady ticks timed per scenario (the median is shown). */
const REPEAT = 3;
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
  botImages: number;
  botSnapshots: number;
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
    const imageIds = await Promise.all(
      targets.map((t, g) => createImages(aws, t.regions[0] as string, perGroup[g] ?? 0)),
    );

    const db = openDatabase(join(tempDir(), "watch.db"));
    const store = new SqliteJobStore(db);
    let now = Date.now();
    targets.forEach((target, g) => {
      for (const [i, imageId] of (imageIds[g] ?? []).entries()) {
        const id = `job-${g}-${i}`;
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
          now,
        );
        store.apply(id, { type: "image_created", imageId }, now);
      }
    });
    const watcherOn = (images: ImageService) =>
      createImageWatcher({
        store,
        images,
        targets,
        settings,
        clock: { now: () => now },
        logger: pino({ level: "silent" }),
      });
    const watcher = watcherOn(new Ec2Images());

    const timedTick = async () => {
      const from = aws.requests.length;
      const t0 = performance.now();
      await watcher.tick();
      const ms = performance.now() - t0;
      if (store.due(now, 10_000).length > 0) throw new Error("some pending jobs were not checked");
      return { ms, ...countCalls(aws, from) };
    };
    const first = await timedTick(); // includes one AssumeRole per group for the read-only session
    const steadyTicks = [];
    for (let i = 0; i < REPEAT; i++) {
      now += settings.pollIntervalMs;
      steadyTicks.push(await timedTick());
    }
    const steady = steadyTicks[steadyTicks.length - 1] as Awaited<ReturnType<typeof timedTick>>;
    if (store.unfinishedCount() !== imageCount) throw new Error("jobs left the pending state");

    // The same tick with EC2 answered from memory: the watcher's and the store's own time.
    const memory = new MemoryImageService();
    for (const [g, target] of targets.entries())
      for (const imageId of imageIds[g] ?? [])
        memory.addImage({ target, region: target.regions[0] as string }, { imageId, name: imageId });
    const memoryWatcher = watcherOn(memory);
    const ownTicks: number[] = [];
    for (let i = 0; i < REPEAT; i++) {
      now += settings.pollIntervalMs;
      const t1 = performance.now();
      await memoryWatcher.tick();
      ownTicks.push(performance.now() - t1);
      if (store.due(now, 10_000).length > 0) throw new Error("the in-memory tick missed jobs");
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
      botImages: steady.describeImages,
      botSnapshots: steady.snapshots,
      assumeRole: first.assumeRole,
      assumeRoleLater: steadyTicks.reduce((sum, t) => sum + t.assumeRole, 0),
      waiter,
      firstTickMs: first.ms,
      tickMs: percentile(
        steadyTicks.map((t) => t.ms),
        50,
      ),
      ownMs: percentile(ownTicks, 50),
      waiterMs,
    };
  } finally {
    await aws.close();
  }
}

const rows: Row[] = [];
try {
  for (const groups of GROUP_COUNTS)
    for (const images of IMAGE_COUNTS) {
      const row = await scenario(images, groups);
      rows.push(row);
      const bot = row.botImages + row.botSnapshots;
      figure(
        `watch: ${images} pending in ${groups} group${groups > 1 ? "s" : ""}, EC2 calls per tick, bot vs per-job waiter`,
        `${bot} vs ${row.waiter} (${(row.waiter / bot).toFixed(1)}×); tick ${row.tickMs.toFixed(0)} ms, ` +
          `own share ${row.ownMs.toFixed(0)} ms`,
      );
    }
  console.log(
    "\n| pending images | groups | bot calls/tick (Images+Snapshots) | waiter calls/tick | waiter ÷ bot | AssumeRole: first tick / later ticks | tick wall time: first / steady (median) | same, EC2 answered in memory | waiter poll round |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows)
    console.log(
      `| ${r.images} | ${r.groups} | ${r.botImages + r.botSnapshots} (${r.botImages}+${r.botSnapshots}) | ${r.waiter} | ` +
        `${(r.waiter / (r.botImages + r.botSnapshots)).toFixed(1)}× | ${r.assumeRole} / ${r.assumeRoleLater} | ` +
        `${r.firstTickMs.toFixed(0)} / ${r.tickMs.toFixed(0)} ms | ${r.ownMs.toFixed(0)} ms | ${r.waiterMs.toFixed(0)} ms |`,
    );
  console.log(
    "(one tick = one check of every pending image; calls counted at the fake EC2 endpoint; wall times against\n" +
      " the fake include its own work, which runs in this process; waiter rounds run 16 requests at a time)",
  );
} finally {
  removeTempDirs();
}
