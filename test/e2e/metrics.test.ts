/**
 * GET /metrics on the bot's own HTTP port (beside /slack/events), after real /ami jobs: the Prometheus text
 * a scraper reads, with figures that match what the bot did, and labels that name kinds of things only,
 * never a person, channel, job, instance or image.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ALLOWED_USER, CHANNEL, eventually, type Harness, startHarness } from "../support/bot-harness.js";
import { keyOf, type RequestedImage, requestImage } from "../support/request-image.js";
import { type Scrape, scrapeUntil } from "../support/scrape-metrics.js";

const INSTANCE = "i-0123456789abcdef0";
const REFUSED_INSTANCE = "i-0fedcba9876543210";
const UNFINISHED = ["awaiting_approval", "queued", "pending", "cancelling"] as const;

/** Runs one job to "available" and waits until its last update has gone out. */
async function availableJob(h: Harness, imageName: string): Promise<RequestedImage> {
  const job = await requestImage(h, { instanceId: INSTANCE, imageName });
  await eventually(
    () => h.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "pending"),
    15_000,
    "pending reply",
  );
  h.aws.setImageState(job.imageId as string, "available");
  await eventually(
    () => h.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "available"),
    15_000,
    "available reply",
  );
  return job;
}

/** Runs one job whose CreateImage AWS refuses with `code`, to its "refused" reply. */
async function refusedJob(h: Harness, imageName: string, code: string): Promise<RequestedImage> {
  h.aws.failNext("CreateImage", { code, status: 400, message: "refused by the test" });
  const job = await requestImage(h, { instanceId: REFUSED_INSTANCE, imageName });
  await eventually(
    () => h.slack.repliesTo(job.root.ts).some((m) => keyOf(m) === "refused"),
    15_000,
    "refused reply",
  );
  return job;
}

/** Every label value of every sample in a scrape. */
function labelValues(scrape: Scrape): string[] {
  return [...scrape.families.values()].flatMap((f) => f.samples.flatMap((s) => Object.values(s.labels)));
}

describe("GET /metrics", () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    h.aws.addInstance({ instanceId: REFUSED_INSTANCE, name: "db-1" });
  });
  afterEach(async () => {
    await h.close();
  });

  it("serves Prometheus text with the job, AWS, Slack and watcher figures of a job that became available", async () => {
    await availableJob(h, "web-1 metrics");
    // Scraped once the last message (the root's final update) has been delivered.
    const scrape = await scrapeUntil(
      h,
      (s) => s.status === 200 && s.value("ami_bot_outbox_backlog") === 0,
      15_000,
      "an empty outbox",
    );

    expect(scrape.status).toBe(200);
    expect(scrape.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(scrape.families.get("ami_bot_jobs")?.type).toBe("gauge");
    expect(scrape.value("ami_bot_jobs", { state: "available" })).toBe(1);
    for (const state of UNFINISHED) expect(scrape.value("ami_bot_jobs", { state }), state).toBe(0);
    expect(scrape.value("ami_bot_job_duration_seconds_count", { state: "available" })).toBe(1);
    expect(scrape.value("ami_bot_outbox_backlog")).toBe(0);

    const atLeastOnce = (name: string, labels: Record<string, string> = {}) =>
      expect(scrape.value(name, labels) ?? 0, `${name} ${JSON.stringify(labels)}`).toBeGreaterThanOrEqual(1);
    atLeastOnce("ami_bot_aws_calls_total", { operation: "CreateImage" });
    atLeastOnce("ami_bot_aws_calls_total", { operation: "DescribeImages" });
    atLeastOnce("ami_bot_aws_calls_total", { operation: "AssumeRole" });
    atLeastOnce("ami_bot_slack_calls_total", { method: "chat.postMessage" });
    atLeastOnce("ami_bot_slack_calls_total", { method: "views.open" });
    atLeastOnce("ami_bot_watcher_tick_duration_seconds_count");
  }, 60_000);

  it("counts a CreateImage that AWS refused under its operation and error code", async () => {
    await refusedJob(h, "db-1 refused", "InvalidAMIName.Duplicate");
    const scrape = await scrapeUntil(
      h,
      (s) => s.value("ami_bot_jobs", { state: "refused" }) === 1 && s.value("ami_bot_outbox_backlog") === 0,
      15_000,
      "the refused job settled",
    );
    expect(
      scrape.value("ami_bot_aws_errors_total", {
        operation: "CreateImage",
        code: "InvalidAMIName.Duplicate",
      }),
    ).toBe(1);
    expect(scrape.value("ami_bot_aws_calls_total", { operation: "CreateImage" })).toBeGreaterThanOrEqual(1);
    expect(scrape.value("ami_bot_job_duration_seconds_count", { state: "refused" })).toBe(1);
    for (const state of UNFINISHED) expect(scrape.value("ami_bot_jobs", { state }), state).toBe(0);
  }, 60_000);

  it("puts no user, channel, job, instance or image id in any label", async () => {
    const done = await availableJob(h, "web-1 ids");
    const refused = await refusedJob(h, "db-1 ids", "InvalidAMIName.Duplicate");
    const scrape = await scrapeUntil(
      h,
      (s) => s.value("ami_bot_jobs", { state: "refused" }) === 1 && s.value("ami_bot_outbox_backlog") === 0,
      15_000,
      "both jobs settled",
    );
    const ids = [
      ALLOWED_USER,
      CHANNEL,
      done.jobId,
      refused.jobId,
      INSTANCE,
      REFUSED_INSTANCE,
      done.imageId as string,
      done.root.ts,
      refused.root.ts,
    ];
    expect(ids.every(Boolean)).toBe(true);
    const values = labelValues(scrape);
    expect(values.length).toBeGreaterThan(0);
    const leaks = values.filter((value) => ids.some((id) => value.includes(id)));
    expect(leaks).toEqual([]);
    // Nor anywhere else in the text (help lines included).
    expect(ids.filter((id) => scrape.body.includes(id))).toEqual([]);
  }, 60_000);
});
