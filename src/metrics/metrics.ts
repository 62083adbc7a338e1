/**
 * The bot's Prometheus metrics. Each bot gets its own Registry (never prom-client's global one), so several
 * bots in one process (the tests) never share or collide. Labels carry counts by kind only: states,
 * operations, methods, error codes, never a user, channel, instance, image or job id.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { JOB_STATES } from "../domain/job.js";
import { boundedLabel, knownLabel, OTHER_LABEL } from "./bounded-label.js";

/** What the store reports at each scrape (the store's stats() fits). */
export interface MetricsSnapshot {
  readonly jobsByState: Readonly<Record<string, number>>;
  readonly outboxBacklog: number;
  /** Epoch milliseconds (the bot's clock) when the oldest undelivered message was written. */
  readonly oldestOutboxCreatedAt: number | undefined;
}

export interface MetricsSources {
  snapshot(): MetricsSnapshot | Promise<MetricsSnapshot>;
  /** Epoch milliseconds; Date.now by default. */
  now?: () => number;
  /** Told when a snapshot fails or times out (the scrape still answers, from the last values). */
  onSnapshotError?: (error: unknown) => void;
  /** A snapshot slower than this counts as failed, so a stuck store never holds a scrape. Default 5 s. */
  snapshotTimeoutMs?: number;
}

export type LeaseKind = "job" | "message";
export type QueueEventOutcome = "received" | "matched" | "ignored" | "malformed" | "error";

export interface Metrics {
  readonly registry: Registry;
  /** The Prometheus text exposition of every metric, snapshot gauges read afresh. */
  render(): Promise<{ contentType: string; body: string }>;
  /** A job reached a final state `seconds` after it was accepted. */
  jobFinished(state: string, seconds: number): void;
  /** One logical AWS call (SDK retries included) and, when it failed, its error code. */
  awsCall(operation: string, errorCode?: string): void;
  /** One HTTP request to Slack and, when it failed, Slack's error (or the HTTP/network failure). */
  slackCall(method: string, errorCode?: string): void;
  tickDuration(seconds: number): void;
  /** This bot took over a job or message whose lease another replica (or a crashed one) let run out. */
  leaseTakeover(kind: LeaseKind): void;
  queueEvent(outcome: QueueEventOutcome): void;
}

/** Images take minutes to hours: 30 s to 4 h. */
const JOB_DURATION_BUCKETS = [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400];
const TICK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LEASE_KINDS: readonly LeaseKind[] = ["job", "message"];
const QUEUE_OUTCOMES: readonly QueueEventOutcome[] = ["received", "matched", "ignored", "malformed", "error"];
/** Distinct operations, methods or error codes kept per metric before the rest become "other". */
const MAX_OPERATIONS = 100;
const MAX_ERROR_CODES = 100;

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  const registers = [registry];
  const now = sources.now ?? Date.now;
  collectDefaultMetrics({ register: registry });

  const jobState = knownLabel(JOB_STATES);
  const operation = boundedLabel(MAX_OPERATIONS);
  const awsCode = boundedLabel(MAX_ERROR_CODES);
  const method = boundedLabel(MAX_OPERATIONS);
  const slackCode = boundedLabel(MAX_ERROR_CODES);
  const leaseKind = knownLabel(LEASE_KINDS);
  const queueOutcome = knownLabel(QUEUE_OUTCOMES);

  // Every snapshot-fed metric collects through one shared read: prom-client starts all collects in the same
  // tick, so a scrape reads the store once, and the error counter is current in the scrape that failed.
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> => {
    refreshing ??= readSnapshot().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };

  const jobs = new Gauge({
    name: "ami_bot_jobs",
    help: "Jobs in the store by state (every state listed, 0 when none).",
    labelNames: ["state"],
    registers,
    collect: refresh,
  });
  const outboxBacklog = new Gauge({
    name: "ami_bot_outbox_backlog",
    help: "Slack messages written and not yet delivered.",
    registers,
    collect: refresh,
  });
  const outboxAge = new Gauge({
    name: "ami_bot_outbox_oldest_age_seconds",
    help: "Age of the oldest undelivered Slack message (0 when none).",
    registers,
    collect: refresh,
  });
  const snapshotErrors = new Counter({
    name: "ami_bot_metrics_snapshot_errors_total",
    help: "Scrapes whose store snapshot failed or timed out (the store gauges then keep their last values).",
    registers,
    collect: refresh,
  });
  const jobDuration = new Histogram({
    name: "ami_bot_job_duration_seconds",
    help: "Time from a job's acceptance to its final state, by final state.",
    labelNames: ["state"],
    buckets: JOB_DURATION_BUCKETS,
    registers,
  });
  const awsCalls = new Counter({
    name: "ami_bot_aws_calls_total",
    help: "AWS API calls by operation, each counted once however many attempts the SDK made.",
    labelNames: ["operation"],
    registers,
  });
  const awsErrors = new Counter({
    name: "ami_bot_aws_errors_total",
    help: "AWS API calls that failed, by operation and error code.",
    labelNames: ["operation", "code"],
    registers,
  });
  const slackCalls = new Counter({
    name: "ami_bot_slack_calls_total",
    help: "HTTP requests to Slack by Web API method (each retry counted; response_url posts as response_url).",
    labelNames: ["method"],
    registers,
  });
  const slackErrors = new Counter({
    name: "ami_bot_slack_errors_total",
    help: "Failed Slack requests by method and Slack error (or ratelimited, http_<status>, a network code).",
    labelNames: ["method", "code"],
    registers,
  });
  const tick = new Histogram({
    name: "ami_bot_watcher_tick_duration_seconds",
    help: "Time one watcher tick took.",
    buckets: TICK_BUCKETS,
    registers,
  });
  const takeovers = new Counter({
    name: "ami_bot_lease_takeovers_total",
    help: "Jobs or messages this bot took over after another holder's lease ran out.",
    labelNames: ["kind"],
    registers,
  });
  const queueEvents = new Counter({
    name: "ami_bot_queue_events_total",
    help: "Image events read from the queue, by outcome.",
    labelNames: ["outcome"],
    registers,
  });
  // Counters at 0 from the start, so rate() and alerts see them before the first event.
  for (const kind of LEASE_KINDS) takeovers.inc({ kind }, 0);
  for (const outcome of QUEUE_OUTCOMES) queueEvents.inc({ outcome }, 0);

  async function readSnapshot(): Promise<void> {
    let snapshot: MetricsSnapshot;
    try {
      snapshot = await withTimeout(
        Promise.resolve().then(() => sources.snapshot()),
        sources.snapshotTimeoutMs ?? 5_000,
      );
    } catch (error) {
      snapshotErrors.inc();
      sources.onSnapshotError?.(error);
      return;
    }
    jobs.reset();
    let other = 0;
    for (const state of JOB_STATES) jobs.set({ state }, snapshot.jobsByState[state] ?? 0);
    for (const [state, count] of Object.entries(snapshot.jobsByState))
      if (jobState(state) === OTHER_LABEL) other += count;
    if (other > 0) jobs.set({ state: OTHER_LABEL }, other);
    outboxBacklog.set(snapshot.outboxBacklog);
    const oldest = snapshot.oldestOutboxCreatedAt;
    outboxAge.set(oldest === undefined ? 0 : Math.max(0, (now() - oldest) / 1000));
  }

  return {
    registry,
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    jobFinished(state, seconds) {
      if (Number.isNaN(seconds)) return;
      jobDuration.observe({ state: jobState(state) }, Math.max(0, seconds));
    },
    awsCall(op, errorCode) {
      const labels = { operation: operation(op) };
      awsCalls.inc(labels);
      if (errorCode !== undefined) awsErrors.inc({ ...labels, code: awsCode(errorCode) });
    },
    slackCall(name, errorCode) {
      const labels = { method: method(name) };
      slackCalls.inc(labels);
      if (errorCode !== undefined) slackErrors.inc({ ...labels, code: slackCode(errorCode) });
    },
    tickDuration(seconds) {
      if (Number.isNaN(seconds)) return;
      tick.observe(Math.max(0, seconds));
    },
    leaseTakeover(kind) {
      takeovers.inc({ kind: leaseKind(kind) });
    },
    queueEvent(outcome) {
      queueEvents.inc({ outcome: queueOutcome(outcome) });
    },
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`metrics snapshot took longer than ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
