/**
 * Notification latency: how long after an image turns available at EC2 the thread says so. Runs the real
 * bot (child process) with 30 pending jobs seeded in its database, flips each image to available at a
 * random (seeded) moment at the fake EC2, and times from the flip to the `available` reply's arrival at the
 * fake Slack. Two things set the delay: the poll interval (AMI_POLL_INTERVAL, 1s here and once the
 * default 15s) and the relay's 1.1 s gap between posts to one channel (Slack allows about one a second).
 * So the jobs run spread over 30 channels, with half of them in one busy channel, and all in one channel.
 *
 * Push mode (AMI_EVENTS_QUEUE_URL) beside the default 15 s poll: the bot long-polls a fake SQS queue, and at
 * each flip the benchmark puts the "EC2 AMI State Change" event for that image in the queue, as EventBridge
 * would right after the change. Same jobs, channels, flips and poll interval as the polling-only run.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { type SlackCall, startFakeSlack } from "../test/fakes/fake-slack.js";
import { type FakeSqs, startFakeSqs } from "../test/fakes/fake-sqs.js";
import {
  ACCOUNT_ID,
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  REGION,
  ROLE_ARN,
  removeTempDirs,
  seededRandom,
  seedPendingJobs,
  sleep,
  spawnBot,
  tempDir,
  until,
} from "./lib.js";

const JOBS = 30;
/** Flips happen at random moments within this window. */
const WINDOW_MS = 15_000;

const fixture = JSON.parse(
  readFileSync(new URL("../test/fixtures/aws/ec2-ami-state-change.json", import.meta.url), "utf8"),
) as { available: Record<string, unknown> & { detail: Record<string, unknown> } };

/**
 * The EC2 User Guide's "available" event as EventBridge puts it in the queue, for this image, in the account
 * and region of the seeded jobs (ROLE_ARN's account, which is also the fake EC2's, and REGION).
 */
function availableEvent(imageId: string): string {
  return JSON.stringify({
    ...fixture.available,
    id: randomUUID(),
    account: ACCOUNT_ID,
    region: REGION,
    time: `${new Date().toISOString().slice(0, 19)}Z`,
    resources: [`arn:aws:ec2:${REGION}::image/${imageId}`],
    detail: { ...fixture.available.detail, RequestId: randomUUID(), ImageId: imageId },
  });
}

function isAvailableReply(jobId: string) {
  return (call: SlackCall) => {
    const payload = (call.args.metadata as { event_payload?: Record<string, unknown> } | undefined)
      ?.event_payload;
    return call.outcome === "ok" && payload?.job_id === jobId && payload.key === "available";
  };
}

/** With `push`, the bot also long-polls a fake SQS queue, and each flip is followed by its AMI event. */
async function scenario(
  pollInterval: string,
  channelOf: (index: number) => string,
  push = false,
): Promise<number[]> {
  const slack = await startFakeSlack();
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  // The seeded jobs are in the fake EC2's account, which the event names: make sure they agree.
  if (aws.accountId !== ACCOUNT_ID || ROLE_ARN.split(":")[4] !== ACCOUNT_ID)
    throw new Error("the seeded jobs' account is not the fake EC2's");
  let sqs: FakeSqs | undefined;
  let bot: BotProcess | undefined;
  const dbPath = join(tempDir(), "bot.db");
  try {
    const jobs = await seedPendingJobs({ dbPath, aws, slack, count: JOBS, channelOf });
    if (push) sqs = await startFakeSqs();
    const queue: Record<string, string> = sqs ? { AMI_EVENTS_QUEUE_URL: sqs.queueUrl() } : {};
    bot = await spawnBot({ slack, aws, dbPath, env: { AMI_POLL_INTERVAL: pollInterval, ...queue } });
    if (sqs) {
      const events = sqs;
      await until(() => events.waitingReceives > 0, 30_000, "the bot's long poll of the events queue");
    }
    // Let the watcher settle into its rhythm before the first flip.
    await sleep(1_500);
    const random = seededRandom(7);
    const latencies = await Promise.all(
      jobs.map(async (job) => {
        await sleep(random() * WINDOW_MS);
        const reply = slack.waitFor("chat.postMessage", isAvailableReply(job.jobId), 120_000);
        const flippedAt = performance.now();
        aws.setImageState(job.imageId, "available");
        // As EventBridge would, right after the change (its own delivery delay is not modelled).
        sqs?.send(availableEvent(job.imageId));
        return (await reply).at - flippedAt;
      }),
    );
    if (sqs) {
      // Every event was received and handled (a handled event is deleted), so the replies came from push.
      const events = sqs;
      await until(() => events.messages().length === 0, 30_000, "every AMI event handled and deleted");
    }
    return latencies;
  } finally {
    await bot?.stop();
    await sqs?.close();
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
  // The same, with each flip's EC2 AMI State Change event sent to the queue the bot long-polls.
  report(
    "15s (default) + push events",
    `${JOBS} jobs in ${JOBS} channels`,
    await scenario("15s", channel, true),
  );
} finally {
  removeTempDirs();
}
