/**
 * Builds and runs the whole bot from a Config: store → AWS adapter → Slack app → watcher and outbox relay.
 * Side effects are injected here and only here, so tests run the real bot against local stand-ins.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { AmiStateEvent } from "./aws/ami-state-events.js";
import { Ec2Cleanup } from "./aws/ec2-cleanup.js";
import { Ec2Images } from "./aws/ec2-images.js";
import type { EventsConsumer } from "./aws/events-consumer.js";
import type { Config } from "./config.js";
import type { Job } from "./domain/job.js";
import {
  type Clock,
  type ImageCleanup,
  type ImageService,
  type JobStore,
  type Notifier,
  type StepHook,
  systemClock,
} from "./domain/ports.js";
import { type SlackTokenRejectedError, StartupError } from "./errors.js";
import type { Logger } from "./logger.js";
import { createMetrics, type Metrics } from "./metrics/metrics.js";
import { createBackgroundClient, createSlackApp } from "./slack/app.js";
import { type SlackBudgets, slackBudgets } from "./slack/budgets.js";
import { createCleanupPoster } from "./slack/cleanup-poster.js";
import type { CleanupCommandDeps } from "./slack/commands/ami-cleanup.js";
import { createAccessCheck, type SlackDeps } from "./slack/deps.js";
import { createHomeTabs } from "./slack/home/home-tabs.js";
import { createInflightTracker } from "./slack/inflight.js";
import { createPeopleDirectory, reportChannelRules } from "./slack/people-directory.js";
import { createMetadataCodec } from "./slack/private-metadata.js";
import { registerListeners } from "./slack/register.js";
import type { RetryPolicy } from "./slack/slack-link.js";
import { SlackNotifier } from "./slack/slack-notifier.js";
import { type Db, openDatabase } from "./store/database.js";
import { type DatabaseLock, lockDatabase } from "./store/database-lock.js";
import { SqliteJobStore } from "./store/sqlite-job-store.js";
import { createImageWatcher } from "./watcher/image-watcher.js";
import { createKeepSweep } from "./watcher/keep-sweep.js";
import { createOutboxRelay } from "./watcher/outbox-relay.js";

export interface BotOverrides {
  /** Replaces the EC2 adapter (its close() is called on stop when it has one). */
  readonly images?: ImageService & { close?: () => void };
  /** Replaces the keep rule's EC2 adapter (its close() is called on stop when it has one). */
  readonly cleanup?: ImageCleanup & { close?: () => void };
  readonly notifier?: Notifier;
  readonly clock?: Clock;
  readonly newJobId?: () => string;
  readonly channelGapMs?: number;
  readonly onStep?: StepHook;
  /** How the bot retries reaching Slack (tests shorten it). */
  readonly slackRetry?: Partial<RetryPolicy>;
  /** Slack refused a token after start-up (the app token revoked, say); by default only logged. */
  readonly onSlackFatal?: (error: SlackTokenRejectedError) => void;
  /** How long handlers wait for AWS or Slack, over DEFAULT_SLACK_BUDGETS (tests on a busy machine relax them). */
  readonly budgets?: Partial<SlackBudgets>;
}

export interface RunningBot {
  /** The HTTP port (HTTP mode, or the health port in Socket Mode). */
  readonly port: number | undefined;
  readonly store: JobStore;
  /**
   * Resolves once Slack has accepted the bot (and, in Socket Mode, the socket is open), retrying while
   * Slack cannot be reached; rejects with SlackTokenRejectedError when Slack refuses a token.
   */
  readonly ready: Promise<void>;
  /** Stops taking requests, lets work in flight finish, and closes the database. */
  stop(): Promise<void>;
}

/**
 * Opens the store and starts listening at once (so /healthz tells the truth from the first second), then
 * reaches Slack in the background. Rejects with StartupError when the database or the port is unusable.
 */
export async function startBot(
  config: Config,
  logger: Logger,
  overrides: BotOverrides = {},
): Promise<RunningBot> {
  let store: JobStore | undefined;
  const metrics = createMetrics({
    snapshot: () => {
      if (!store) throw new Error("the store is not open yet");
      return store.stats();
    },
    now: () => (overrides.clock ?? systemClock).now(),
    onSnapshotError: (error) => logger.warn({ err: error }, "metrics could not read the store"),
  });
  const opened = await openStore(config, logger, metrics);
  store = opened.store;
  try {
    return await assemble(config, logger, overrides, opened, metrics);
  } catch (error) {
    // Whatever failed after the database was taken gives it back: a restart in this process must find it free.
    await opened.close();
    throw error;
  }
}

async function assemble(
  config: Config,
  logger: Logger,
  overrides: BotOverrides,
  opened: OpenedStore,
  metrics: Metrics,
): Promise<RunningBot> {
  const clock = overrides.clock ?? systemClock;
  const budgets = slackBudgets(overrides.budgets);
  const onStep = overrides.onStep ?? crashHook(config.crashAt, logger);
  const { store } = opened;
  const images = overrides.images ?? new Ec2Images({ timeouts: config.aws, onAwsCall: metrics.awsCall });
  const background = createBackgroundClient(config, logger, metrics.slackCall);
  const notifier = overrides.notifier ?? new SlackNotifier({ client: background, config, clock });
  const directory = createPeopleDirectory({
    client: background,
    targets: config.targets,
    ttlMs: config.usergroupCacheMs,
    clock,
    logger,
    budgetMs: budgets.peopleLookupMs,
  });
  const recheckAccess = createAccessCheck(directory, config.targets);
  // Home tabs follow jobs from the relay (every message delivered) and from clicks; never blocking either.
  const homes = createHomeTabs({
    client: background,
    store,
    config,
    directory,
    clock,
    logger: logger.child({ component: "home" }),
    permalinkBudgetMs: budgets.permalinkMs,
  });
  const relay = createOutboxRelay({
    store,
    notifier,
    clock,
    logger: logger.child({ component: "outbox" }),
    onStep,
    onDelivered: (job) => homes.jobChanged(job),
    ...(overrides.channelGapMs !== undefined ? { channelGapMs: overrides.channelGapMs } : {}),
  });
  const watcher = createImageWatcher({
    store,
    images,
    targets: config.targets,
    settings: config.watcher,
    clock,
    logger: logger.child({ component: "watcher" }),
    onNotices: () => relay.wake(),
    onTick: (ms) => metrics.tickDuration(ms / 1000),
    onStep,
    // Rules may have changed since the person asked: the watcher asks again right before CreateImage.
    accessNow: async (job) => {
      const decision = await recheckAccess(job.requestedBy, job.originChannelId, job.targetName);
      // Slack did not say (who they are, whether the channel is private): try again later, never create.
      if (decision.inconclusive) throw new Error(`access re-check inconclusive: ${decision.reason}`);
      return decision;
    },
  });
  // The keep rule: a daily sweep per target with a rule, and `/ami cleanup` for its admins.
  const cleanup = overrides.cleanup ?? new Ec2Cleanup({ timeouts: config.aws, onAwsCall: metrics.awsCall });
  const sweep = createKeepSweep({
    store,
    cleanup,
    targets: config.targets,
    clock,
    logger: logger.child({ component: "keep" }),
    postSummary: createCleanupPoster(background),
  });
  let accepting = true;
  const slack = createSlackApp(
    config,
    logger,
    // -1 when the database does not answer: /healthz then says so rather than fail.
    async () => ({
      accepting,
      unfinishedJobs: await Promise.resolve(store.unfinishedCount()).catch(() => -1),
    }),
    {
      ...(overrides.slackRetry ? { retry: overrides.slackRetry } : {}),
      onFatal: overrides.onSlackFatal ?? ((error) => logger.error({ code: error.slackError }, error.message)),
      metrics,
      onSlackCall: metrics.slackCall,
    },
  );
  // Push mode: an AMI state event makes its job due now; polling carries on as the reconciliation.
  const events = await createPushMode(config, logger, metrics, async (event) => {
    const job = await store.checkImageSoon(
      { imageId: event.imageId, region: event.region, accountId: event.account },
      clock.now(),
    );
    if (!job) return false;
    logger.debug({ jobId: job.id, imageId: event.imageId, state: event.state }, "AMI event: checking now");
    watcher.wake();
    return true;
  });
  const inflight = createInflightTracker();
  slack.app.use(inflight.middleware);
  const slackDeps: SlackDeps & CleanupCommandDeps = {
    config,
    store,
    images,
    clock,
    logger,
    directory,
    newJobId: overrides.newJobId ?? randomUUID,
    metadata: createBotMetadataCodec(config),
    budgets,
    onStep,
    homes,
    onJobAccepted: () => {
      relay.wake();
      watcher.wake();
    },
    onJobChanged: (job) => {
      relay.wake();
      watcher.wake();
      homes.jobChanged(job);
    },
    cleanup: sweep,
  };
  registerListeners(slack.app, slackDeps);

  const { port } = await slack.listen();
  const mode = config.slack.appToken ? "socket" : "http";
  logger.info({ port, mode }, "listening; checking the Slack token");
  // Accepted jobs go on while Slack is out of reach: images are made and followed, their messages wait.
  watcher.start();
  events?.start();
  const ready = slack.connect().then(async () => {
    if (!accepting) return;
    // Messages go out only once Slack has accepted the token: a refused token must not drop them.
    relay.start();
    // Its summaries go to Slack, so the daily sweep starts once Slack has accepted the bot.
    sweep.start();
    logger.info({ port, mode, unfinishedJobs: await store.unfinishedCount() }, "ami-bot ready");
    // A channel rule in a public channel grants nothing (anyone can join): say so where operators look.
    void reportChannelRules(directory, config.targets, logger);
  });
  // Whoever started the bot decides what a refused token means (main exits); never an unhandled rejection.
  ready.catch(() => undefined);

  let stopped: Promise<void> | undefined;
  return {
    port,
    store,
    ready,
    stop() {
      stopped ??= shutdown();
      return stopped;
    },
  };

  async function shutdown(): Promise<void> {
    accepting = false;
    await slack.stop();
    // Requests already received run to the end (a modal to open, a job to wake), and work in flight
    // (a CreateImage being answered) gets a few seconds to be stored, all before the store closes. Calls
    // AWS has still not answered are then cut short, so shutdown ends in seconds whatever AWS does.
    await Promise.all([
      inflight.drain(5_000),
      watcher.stop({ graceMs: 5_000, cutShort: () => images.close?.() }),
      relay.stop(),
      events?.stop(),
      sweep.stop({ graceMs: 5_000, cutShort: () => cleanup.close?.() }),
    ]);
    // Publishes still running read nothing more from the store once stopped.
    homes.stop();
    images.close?.();
    cleanup.close?.();
    await opened.close();
    logger.info("ami-bot stopped");
  }
}

/**
 * The consumer of AMI state events when AMI_EVENTS_QUEUE_URL is set. Loaded only then (as the Postgres
 * driver is), so a bot without push mode does not carry the SQS client's memory.
 */
async function createPushMode(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  onImageEvent: (event: AmiStateEvent) => Promise<boolean>,
): Promise<EventsConsumer | undefined> {
  if (!config.eventsQueueUrl) return undefined;
  const { createEventsConsumer } = await import("./aws/events-consumer.js");
  return createEventsConsumer({
    queueUrl: config.eventsQueueUrl,
    onAwsCall: metrics.awsCall,
    timeouts: config.aws,
    logger: logger.child({ component: "events" }),
    onCounted: metrics.queueEvent,
    onImageEvent,
  });
}

interface OpenedStore {
  readonly store: JobStore;
  close(): Promise<void>;
}

/**
 * Postgres when DATABASE_URL is set (replicas share it, each claiming work under leases); otherwise the
 * embedded SQLite file, taken for this process alone.
 */
async function openStore(config: Config, logger: Logger, metrics: Metrics): Promise<OpenedStore> {
  // How long a job took from the request to its end, by how it ended.
  const onFinished = (job: Job) =>
    metrics.jobFinished(job.state, ((job.finishedAt ?? job.updatedAt) - job.createdAt) / 1000);
  if (!config.databaseUrl) {
    const { db, lock } = openSqlite(config.databasePath);
    return { store: new SqliteJobStore(db, onFinished), close: async () => closeSqlite(db, lock) };
  }
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  try {
    const { openPostgresJobStore } = await import("./store/postgres-job-store.js");
    const store = await openPostgresJobStore(config.databaseUrl, {
      owner,
      leaseMs: config.leaseMs,
      onTakeover: (kind, count) => {
        for (let i = 0; i < count; i++) metrics.leaseTakeover(kind);
        logger.warn({ kind, count, owner }, "took over work whose lease another replica let run out");
      },
      onFinished,
      onPoolError: (error) =>
        logger.warn({ code: (error as { code?: string }).code }, "a Postgres connection failed"),
    });
    logger.info({ owner, leaseMs: config.leaseMs }, "using Postgres; claiming work under leases");
    // A claim should outlast the longest call it guards: a replica stalled mid-call past its lease may see
    // another make the same call (AWS's unique image names and the look-up before reposting still stop
    // duplicates, but at a cost).
    const longestCallMs = config.aws.connectTimeoutMs + config.aws.requestTimeoutMs;
    if (config.leaseMs < longestCallMs)
      logger.warn(
        { leaseMs: config.leaseMs, longestCallMs },
        "AMI_LEASE is shorter than an AWS call may take (AMI_AWS_CONNECT_TIMEOUT + AMI_AWS_REQUEST_TIMEOUT); keep it longer in production",
      );
    return { store, close: () => store.close() };
  } catch (error) {
    // The message names the setting, never the URL itself (it may carry a password).
    throw new StartupError(
      `DATABASE_URL: cannot open the Postgres database (${(error as Error).message}); check the URL, that the server is up and that the user may create tables`,
      { cause: error },
    );
  }
}

/**
 * Takes the database for this process, then opens it, naming the setting when either fails. One bot per
 * SQLite file: a second one would claim the same jobs and call CreateImage twice.
 */
function openSqlite(path: string): { db: Db; lock: DatabaseLock } {
  let lock: DatabaseLock | undefined;
  try {
    lock = lockDatabase(path);
    if (lock) return { db: openDatabase(path), lock };
  } catch (error) {
    lock?.release();
    throw new StartupError(
      `AMI_BOT_DB: cannot open the database at ${path} (${(error as Error).message}); point AMI_BOT_DB at a writable file`,
      { cause: error },
    );
  }
  throw new StartupError(
    `AMI_BOT_DB: another ami-bot process is using ${path}; stop it first (one bot per database: roll a deployment stop-then-start)`,
  );
}

/** Closes the database, then lets another bot take it (a restart in this process, or the next deployment). */
function closeSqlite(db: Db, lock: DatabaseLock): void {
  try {
    db.close();
  } finally {
    lock.release();
  }
}

/**
 * AMI_BOT_CRASH_AT names a step at which the process kills itself with SIGKILL: the crash tests use it to
 * prove that a job survives a crash at any point. Unset in normal use, when the hook does nothing.
 */
function crashHook(crashAt: string | undefined, logger: Logger): StepHook {
  if (!crashAt) return () => {};
  logger.warn({ crashAt }, "crash testing hook armed: the process will kill itself at this step");
  return (step) => {
    if (step === crashAt) process.kill(process.pid, "SIGKILL");
  };
}

/** Keyed by a secret the bot already holds, so a modal opened before a restart still verifies after it. */
export function createBotMetadataCodec(config: Pick<Config, "slack">) {
  return createMetadataCodec(`ami-bot-metadata:${config.slack.signingSecret ?? config.slack.botToken}`);
}
