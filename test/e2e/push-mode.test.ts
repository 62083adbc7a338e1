/**
 * Push mode end to end: the bot long-polls a (fake) SQS queue that EventBridge fills with "EC2 AMI State
 * Change" events, and an event for a job's image gets it checked at once. The watcher polls every
 * 10 minutes here, so only the event can explain a prompt "available"; anything that is not an event for
 * one of the bot's images is deleted, counted, and changes nothing.
 */
import { readFileSync } from "node:fs";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type FakeSqs, INTERNAL_FAILURE, startFakeSqs } from "../fakes/fake-sqs.js";
import { eventually, type Harness, ROLE_ARN, startHarness } from "../support/bot-harness.js";
import { keyOf, requestImage } from "../support/request-image.js";
import { scrapeMetrics, scrapeUntil } from "../support/scrape-metrics.js";

const INSTANCE = "i-0123456789abcdef0";
const ACCOUNT = ROLE_ARN.split(":")[4] as string;
const REGION = "eu-west-1";
/** Far longer than any test: a prompt check can only come from an event. */
const LONG_POLL = "10m";
/** How long an event may take to show in the thread, on a loaded machine (the poll would take 10 min). */
const EVENT_BOUND_MS = 15_000;

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/aws/ec2-ami-state-change.json", import.meta.url), "utf8"),
) as { available: Record<string, unknown> & { detail: Record<string, unknown> } };

/** The guide's "available" event as EventBridge puts it in the queue, for this image, account and region. */
function amiEvent(imageId: string, options: { account?: string; region?: string } = {}): string {
  const region = options.region ?? REGION;
  return JSON.stringify({
    ...fixture.available,
    id: crypto.randomUUID(),
    account: options.account ?? ACCOUNT,
    region,
    time: `${new Date().toISOString().slice(0, 19)}Z`,
    resources: [`arn:aws:ec2:${region}::image/${imageId}`],
    detail: { ...fixture.available.detail, RequestId: crypto.randomUUID(), ImageId: imageId },
  });
}

/** AWS calls that change something: anything but reads and the STS sessions they are made under. */
const isWrite = (action: string) => !/^(Describe|Get)/.test(action) && action !== "AssumeRole";

describe("push mode", () => {
  let sqs: FakeSqs;
  let h: Harness | undefined;

  /** A bot in push mode on a fresh queue; `prepare` runs on the queue before the bot starts. */
  async function start(pollInterval: string, prepare?: (queue: FakeSqs) => void): Promise<Harness> {
    sqs = await startFakeSqs();
    prepare?.(sqs);
    h = await startHarness({ pollInterval, env: { AMI_EVENTS_QUEUE_URL: sqs.queueUrl() } });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    return h;
  }

  beforeEach((ctx) => {
    // What the consumer and the watcher said, for a failure's diagnosis.
    ctx.onTestFailed(() => {
      const said = h?.logs.filter((line) => /"component":"(events|watcher)"/.test(line)) ?? [];
      console.log(`bot log (events, watcher):\n${said.join("")}`);
    });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
    await sqs?.close();
  });

  it("posts available in the job's thread soon after an AMI state event, without waiting for the poll", async () => {
    const bot = await start(LONG_POLL);
    const job = await requestImage(bot, { instanceId: INSTANCE, imageName: "web-1 pushed" });
    const imageId = job.imageId as string;
    expect(imageId).toMatch(/^ami-/);
    await eventually(
      () => bot.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "pending"),
      15_000,
      "pending reply",
    );
    // The consumer is long-polling the queue before the event arrives.
    await eventually(() => sqs.waitingReceives > 0, 15_000, "a long poll held open");

    bot.aws.setImageState(imageId, "available");
    const describesBefore = bot.aws.calls("DescribeImages").length;
    const sentAt = Date.now();
    sqs.send(amiEvent(imageId));

    const available = await eventually(
      () => bot.slack.repliesTo(job.root.ts).find((m) => keyOf(m) === "available"),
      EVENT_BOUND_MS,
      "available reply after the event",
    );
    const elapsed = Date.now() - sentAt;
    console.log(`[figure] AMI event queued → available reply: ${elapsed} ms`);
    expect(available.threadTs).toBe(job.root.ts);
    expect(available.channel).toBe(job.root.channel);
    expect(available.text).toContain(imageId);
    // The image was checked because of the event: a DescribeImages naming it, after it was sent.
    const checks = bot.aws.calls("DescribeImages").slice(describesBefore);
    expect(checks.some((c) => c.at >= sentAt && Object.values(c.params).includes(imageId))).toBe(true);
    // Handled, so deleted: nothing left in the queue, in flight or visible.
    await eventually(() => sqs.messages().length === 0, 15_000, "the event deleted");
    expect(sqs.callsOf("DeleteMessage").length + sqs.callsOf("DeleteMessageBatch").length).toBeGreaterThan(0);
    const scrape = await scrapeMetrics(bot);
    expect(scrape.value("ami_bot_queue_events_total", { outcome: "matched" })).toBe(1);
    expect(scrape.value("ami_bot_queue_events_total", { outcome: "received" })).toBe(1);
  }, 60_000);

  it("deletes and counts events that are not for its images, changes nothing, and still acts on the next one", async () => {
    const bot = await start(LONG_POLL);
    const job = await requestImage(bot, { instanceId: INSTANCE, imageName: "web-1 after noise" });
    const imageId = job.imageId as string;
    await eventually(
      () => bot.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "pending"),
      15_000,
      "pending reply",
    );
    // Everything the bot had to say about the job so far has gone out.
    await scrapeUntil(bot, (s) => s.value("ami_bot_outbox_backlog") === 0, 15_000, "an empty outbox");
    await eventually(() => sqs.waitingReceives > 0, 15_000, "a long poll held open");
    const slackBefore = bot.slack.calls.length;
    const awsBefore = bot.aws.requests.length;
    // An image in the account that the bot did not make (someone else's, already available).
    const foreignImage = bot.aws.addImage({ name: "made by hand", region: REGION });

    sqs.send("{this is not JSON");
    sqs.send(
      JSON.stringify({
        version: "0",
        id: crypto.randomUUID(),
        "detail-type": "EC2 Instance State-change Notification",
        source: "aws.ec2",
        account: ACCOUNT,
        time: `${new Date().toISOString().slice(0, 19)}Z`,
        region: REGION,
        resources: [`arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`],
        detail: { "instance-id": INSTANCE, state: "stopping" },
      }),
    );
    sqs.send(amiEvent(foreignImage.imageId));
    sqs.send(amiEvent("ami-0fedcba9876543210"));

    const counted = await scrapeUntil(
      bot,
      (s) =>
        s.value("ami_bot_queue_events_total", { outcome: "malformed" }) === 2 &&
        s.value("ami_bot_queue_events_total", { outcome: "ignored" }) === 2,
      15_000,
      "the four events counted",
    );
    expect(counted.value("ami_bot_queue_events_total", { outcome: "received" })).toBe(4);
    expect(counted.value("ami_bot_queue_events_total", { outcome: "matched" })).toBe(0);
    expect(counted.value("ami_bot_queue_events_total", { outcome: "error" })).toBe(0);
    await eventually(() => sqs.messages().length === 0, 15_000, "the four events deleted");

    // Nothing followed from them: no Slack post, no AWS write, not even a check of the job's image.
    const postsSince = bot.slack.calls.slice(slackBefore).filter((c) => c.method.startsWith("chat."));
    expect(postsSince.map((c) => c.method)).toEqual([]);
    const awsSince = bot.aws.requests.slice(awsBefore).map((r) => r.action);
    expect(awsSince.filter(isWrite)).toEqual([]);
    expect(awsSince).not.toContain("DescribeImages");
    expect(bot.slack.repliesTo(job.root.ts).map(keyOf)).toEqual(["creating", "pending"]);

    // The consumer carries on: the job's own event is acted on.
    bot.aws.setImageState(imageId, "available");
    sqs.send(amiEvent(imageId));
    await eventually(
      () => bot.slack.repliesTo(job.root.ts).find((m) => keyOf(m) === "available"),
      EVENT_BOUND_MS,
      "available reply after the valid event",
    );
    await eventually(() => sqs.messages().length === 0, 15_000, "the valid event deleted");
    const after = await scrapeUntil(
      bot,
      (s) => s.value("ami_bot_queue_events_total", { outcome: "matched" }) === 1,
      15_000,
      "the valid event counted",
    );
    expect(after.value("ami_bot_queue_events_total", { outcome: "malformed" })).toBe(2);
    expect(after.value("ami_bot_queue_events_total", { outcome: "ignored" })).toBe(2);
    expect(after.value("ami_bot_queue_events_total", { outcome: "received" })).toBe(5);
  }, 60_000);

  it("still finishes the job by polling when every receive from the queue fails", async () => {
    const bot = await start("100ms", (queue) =>
      queue.failNext("ReceiveMessage", { ...INTERNAL_FAILURE, count: 1_000_000 }),
    );

    const job = await requestImage(bot, { instanceId: INSTANCE, imageName: "web-1 queue down" });
    await eventually(
      () => bot.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "pending"),
      15_000,
      "pending reply",
    );
    bot.aws.setImageState(job.imageId as string, "available");
    await eventually(
      () => bot.slack.repliesTo(job.root.ts).find((m) => keyOf(m) === "available"),
      15_000,
      "available reply by polling",
    );
    // The consumer kept trying (and failing), and said so in the metrics.
    expect(sqs.callsOf("ReceiveMessage").length).toBeGreaterThan(0);
    const scrape = await scrapeUntil(
      bot,
      (s) =>
        (s.value("ami_bot_aws_errors_total", { operation: "ReceiveMessage", code: "InternalFailure" }) ?? 0) >
        0,
      15_000,
      "a failed receive counted",
    );
    expect(scrape.value("ami_bot_queue_events_total", { outcome: "received" })).toBe(0);
  }, 60_000);
});
