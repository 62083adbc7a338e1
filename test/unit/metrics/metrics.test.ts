import { describe, expect, it } from "vitest";
import { JOB_STATES } from "../../../src/domain/job.js";
import { createMetrics, type MetricsSnapshot } from "../../../src/metrics/metrics.js";
import { parsePrometheusText, sampleValue } from "./prometheus-text.js";

const NOW = 1_700_000_000_000;

function snapshot(overrides: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  return {
    jobsByState: { pending: 3, available: 10 },
    outboxBacklog: 4,
    oldestOutboxCreatedAt: NOW - 90_000,
    ...overrides,
  };
}

async function scrape(metrics: ReturnType<typeof createMetrics>) {
  const { contentType, body } = await metrics.render();
  return { contentType, body, families: parsePrometheusText(body) };
}

const REQUIRED: Record<string, string> = {
  ami_bot_jobs: "gauge",
  ami_bot_job_duration_seconds: "histogram",
  ami_bot_aws_calls_total: "counter",
  ami_bot_aws_errors_total: "counter",
  ami_bot_slack_calls_total: "counter",
  ami_bot_slack_errors_total: "counter",
  ami_bot_outbox_backlog: "gauge",
  ami_bot_outbox_oldest_age_seconds: "gauge",
  ami_bot_watcher_tick_duration_seconds: "histogram",
  ami_bot_lease_takeovers_total: "counter",
  ami_bot_queue_events_total: "counter",
  ami_bot_metrics_snapshot_errors_total: "counter",
};

describe("createMetrics", () => {
  it("renders every required family with HELP and TYPE in Prometheus text format", async () => {
    const { contentType, families } = await scrape(createMetrics({ snapshot, now: () => NOW }));
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const [name, type] of Object.entries(REQUIRED)) {
      expect(families.get(name)?.type, name).toBe(type);
      expect(families.get(name)?.help, name).toBeTruthy();
    }
    // prom-client's process metrics on the same registry.
    expect(families.get("process_cpu_user_seconds_total")?.type).toBe("counter");
    expect(families.get("nodejs_eventloop_lag_seconds")?.type).toBe("gauge");
  });

  it("reports every job state, 0 when none, and the outbox from the snapshot", async () => {
    const { families } = await scrape(createMetrics({ snapshot, now: () => NOW }));
    for (const state of JOB_STATES) {
      const expected = state === "pending" ? 3 : state === "available" ? 10 : 0;
      expect(sampleValue(families, "ami_bot_jobs", { state }), state).toBe(expected);
    }
    expect(families.get("ami_bot_jobs")?.samples).toHaveLength(JOB_STATES.length);
    expect(sampleValue(families, "ami_bot_outbox_backlog")).toBe(4);
    expect(sampleValue(families, "ami_bot_outbox_oldest_age_seconds")).toBe(90);
  });

  it("reports an outbox age of 0 when nothing is waiting", async () => {
    const metrics = createMetrics({
      snapshot: () => snapshot({ outboxBacklog: 0, oldestOutboxCreatedAt: undefined }),
      now: () => NOW,
    });
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_outbox_oldest_age_seconds")).toBe(0);
  });

  it("reads the store once per scrape however many metrics come from it", async () => {
    let reads = 0;
    const metrics = createMetrics({
      snapshot: async () => {
        reads++;
        return snapshot();
      },
      now: () => NOW,
    });
    await metrics.render();
    expect(reads).toBe(1);
    await metrics.render();
    expect(reads).toBe(2);
  });

  it("still renders, keeps the last values and counts the failure when the snapshot throws", async () => {
    let fail = false;
    const errors: unknown[] = [];
    const metrics = createMetrics({
      snapshot: async () => {
        if (fail) throw new Error("database is closed");
        return snapshot();
      },
      now: () => NOW,
      onSnapshotError: (error) => errors.push(error),
    });
    await metrics.render();
    fail = true;
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_metrics_snapshot_errors_total")).toBe(1);
    expect(sampleValue(families, "ami_bot_jobs", { state: "pending" })).toBe(3);
    expect(sampleValue(families, "ami_bot_outbox_backlog")).toBe(4);
    expect(errors).toEqual([new Error("database is closed")]);
  });

  it("still renders when the very first snapshot throws synchronously", async () => {
    const metrics = createMetrics({
      snapshot: () => {
        throw new Error("no store yet");
      },
    });
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_metrics_snapshot_errors_total")).toBe(1);
    expect(families.get("ami_bot_jobs")?.type).toBe("gauge");
  });

  it("gives up on a snapshot that does not answer in time and counts it as failed", async () => {
    const metrics = createMetrics({ snapshot: () => new Promise(() => {}), snapshotTimeoutMs: 20 });
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_metrics_snapshot_errors_total")).toBe(1);
  });

  it("counts AWS and Slack calls by operation and errors by code", async () => {
    const metrics = createMetrics({ snapshot, now: () => NOW });
    metrics.awsCall("DescribeImages");
    metrics.awsCall("DescribeImages");
    metrics.awsCall("CreateImage", "InvalidAMIName.Duplicate");
    metrics.slackCall("chat.postMessage");
    metrics.slackCall("chat.postMessage", "channel_not_found");
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_aws_calls_total", { operation: "DescribeImages" })).toBe(2);
    expect(sampleValue(families, "ami_bot_aws_calls_total", { operation: "CreateImage" })).toBe(1);
    expect(
      sampleValue(families, "ami_bot_aws_errors_total", {
        operation: "CreateImage",
        code: "InvalidAMIName.Duplicate",
      }),
    ).toBe(1);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "chat.postMessage" })).toBe(2);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", {
        method: "chat.postMessage",
        code: "channel_not_found",
      }),
    ).toBe(1);
  });

  it("reports error codes that are not plain tokens as other", async () => {
    const metrics = createMetrics({ snapshot });
    metrics.awsCall("AssumeRole", "arn:aws:iam::123456789012:role/secret-name");
    metrics.slackCall("chat.postMessage", "channel C0123 not found");
    metrics.slackCall("chat.postMessage", "x".repeat(65));
    const { families } = await scrape(metrics);
    expect(
      sampleValue(families, "ami_bot_aws_errors_total", { operation: "AssumeRole", code: "other" }),
    ).toBe(1);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", { method: "chat.postMessage", code: "other" }),
    ).toBe(2);
  });

  it("keeps at most 100 distinct error codes per metric, the rest as other", async () => {
    const metrics = createMetrics({ snapshot });
    for (let i = 0; i < 150; i++) metrics.slackCall("chat.update", `error_${i}`);
    const { families } = await scrape(metrics);
    const codes = new Set(families.get("ami_bot_slack_errors_total")?.samples.map((s) => s.labels.code));
    expect(codes.size).toBe(101);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", { method: "chat.update", code: "other" }),
    ).toBe(50);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", { method: "chat.update", code: "error_0" }),
    ).toBe(1);
  });

  it("labels job durations only with known states", async () => {
    const metrics = createMetrics({ snapshot });
    metrics.jobFinished("available", 600);
    metrics.jobFinished("U0SOMEONE", 30);
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_job_duration_seconds_count", { state: "available" })).toBe(1);
    expect(sampleValue(families, "ami_bot_job_duration_seconds_sum", { state: "available" })).toBe(600);
    expect(
      sampleValue(families, "ami_bot_job_duration_seconds_bucket", { state: "available", le: "900" }),
    ).toBe(1);
    expect(
      sampleValue(families, "ami_bot_job_duration_seconds_bucket", { state: "available", le: "300" }),
    ).toBe(0);
    expect(
      sampleValue(families, "ami_bot_job_duration_seconds_bucket", { state: "available", le: "14400" }),
    ).toBe(1);
    expect(sampleValue(families, "ami_bot_job_duration_seconds_count", { state: "other" })).toBe(1);
  });

  it("counts ticks, lease takeovers and queue events, starting the counters at 0", async () => {
    const metrics = createMetrics({ snapshot });
    const before = (await scrape(metrics)).families;
    expect(sampleValue(before, "ami_bot_lease_takeovers_total", { kind: "job" })).toBe(0);
    expect(sampleValue(before, "ami_bot_queue_events_total", { outcome: "ignored" })).toBe(0);
    metrics.tickDuration(0.2);
    metrics.leaseTakeover("message");
    metrics.queueEvent("received");
    metrics.queueEvent("ignored");
    metrics.queueEvent("ignored");
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_watcher_tick_duration_seconds_count")).toBe(1);
    expect(sampleValue(families, "ami_bot_watcher_tick_duration_seconds_bucket", { le: "0.25" })).toBe(1);
    expect(sampleValue(families, "ami_bot_lease_takeovers_total", { kind: "message" })).toBe(1);
    expect(sampleValue(families, "ami_bot_queue_events_total", { outcome: "received" })).toBe(1);
    expect(sampleValue(families, "ami_bot_queue_events_total", { outcome: "ignored" })).toBe(2);
  });

  it("keeps two bots' metrics apart in one process", async () => {
    const one = createMetrics({ snapshot });
    const two = createMetrics({ snapshot: () => snapshot({ outboxBacklog: 9 }) });
    one.awsCall("DescribeImages");
    const [a, b] = await Promise.all([scrape(one), scrape(two)]);
    expect(sampleValue(a.families, "ami_bot_aws_calls_total", { operation: "DescribeImages" })).toBe(1);
    expect(
      sampleValue(b.families, "ami_bot_aws_calls_total", { operation: "DescribeImages" }),
    ).toBeUndefined();
    expect(sampleValue(a.families, "ami_bot_outbox_backlog")).toBe(4);
    expect(sampleValue(b.families, "ami_bot_outbox_backlog")).toBe(9);
  });

  it("records through methods that work unbound, as hooks passed around", async () => {
    const metrics = createMetrics({ snapshot });
    const { awsCall, slackCall } = metrics;
    awsCall("DescribeImages");
    slackCall("auth.test");
    const { families } = await scrape(metrics);
    expect(sampleValue(families, "ami_bot_aws_calls_total", { operation: "DescribeImages" })).toBe(1);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "auth.test" })).toBe(1);
  });
});
