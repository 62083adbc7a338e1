/**
 * Notification latency: how long after an image turns available at EC2 the thread says so. Runs the real
 * bot (child process) with 30 pending jobs seeded in its database, flips each image to available at a
 * random (seeded) moment at the fake EC2, and times from the flip to the `available` reply's arrival at the
 * fake Slack. Two things set the delay: the poll interval (AMI_POLL_INTERVAL, 1s here and once the
 * default 15s) and the relay's 1.1 s gap between posts to one channel (Slack allows about one a second).
 * So the jobs run spread over 30 channels, with half of them in one busy channel, and all in one channel.
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { type SlackCall, startFakeSlack } from "../test/fakes/fake-slack.js";
import {
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  ROLE_ARN,
  removeTempDirs,
  seededRandom,
  seedPendingJobs,
  sleep,
  spawnBot,
  tempDir,
} from "./lib.js";

const JOBS = 30;
/** Flips happen at random moments within this window. */
const WINDOW_MS = 15_000;

function isAvailableReply(jobId: string) {
  return (call: SlackCall) => {
    const payload = (call.args.metadata as { event_payload?: Record<string, unknown> } | undefined)
      ?.event_payload;
    return call.outcome === "ok" && payload?.job_id === jobId && payload.key === "available";
  };
}

async function scenario(pollInterval: string, channelOf: (index: number) => string): Promise<number[]> {
  const slack = await startFakeSlack();
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  let bot: BotProcess | undefined;
  const dbPath = join(tempDir(), "bot.db");
  try {
    const jobs = await seedPendingJobs({ dbPath, aws, slack, count: JOBS, channelOf });
    bot = await spawnBot({ slack, aws, dbPath, env: { AMI_POLL_INTERVAL: pollInterval } });
    // Let the watcher settle into its rhythm before the first flip.
    await sleep(1_500);
    const random = seededRandom(7);
    const latencies = await Promise.all(
      jobs.map(async (job) => {
        await sleep(random() * WINDOW_MS);
        const reply = slack.waitFor("chat.postMessage", isAvailableReply(job.jobId), 120_000);
        const flippedAt = performance.now();
        aws.setImageState(job.imageId, "available");
        return (await reply).at - flippedAt;
      }),
    );
    return latencies;
  } finally {
    await bot?.stop();
    await slack.close();
    await aws.close();
  }
}

try {
  const report = (interval: string, where: string, ms: number[]) => {
    const label = `notify, AMI_POLL_INTERVAL=${interval}, ${where}: available → thread reply`;
    figure(`${label} p50`, percentile(ms, 50), "ms");
    figure(`${label} p95`, percentile(ms, 95), "ms");
    figure(`${label} max`, Math.max(...ms), "ms");
  };
  const channel = (n: number) => `C0BENCH${String(n).padStart(3, "0")}`;
  report("1s", `${JOBS} jobs in ${JOBS} channels`, await scenario("1s", channel));
  // Half the jobs share one busy channel; the other half each have their own: are those held up?
  const mixed = await scenario("1s", (i) => (i % 2 === 0 ? channel(0) : channel(i)));
  report(
    "1s",
    `${JOBS / 2} jobs in own channels beside ${JOBS / 2} in one busy channel`,
    mixed.filter((_, i) => i % 2 === 1),
  );
  report("1s", `${JOBS} jobs in 1 channel`, await scenario("1s", () => channel(0)));
  // The default interval, for what people will see.
  report("15s (default)", `${JOBS} jobs in ${JOBS} channels`, await scenario("15s", channel));
} finally {
  removeTempDirs();
}
