/**
 * Builds and runs the whole bot from a Config: store → AWS adapter → Slack app → watcher and outbox relay.
 * Side effects are injected here and only here, so tests run the real bot against local stand-ins.
 */
import { randomUUID } from "node:crypto";
import { Ec2Images } from "./aws/ec2-images.js";
import type { Config } from "./config.js";
import { mentionedUsergroups } from "./domain/access.js";
import { type Clock, type ImageService, type Notifier, type StepHook, systemClock } from "./domain/ports.js";
import type { Logger } from "./logger.js";
import { createBackgroundClient, createSlackApp } from "./slack/app.js";
import { createInflightTracker } from "./slack/inflight.js";
import { createMetadataCodec } from "./slack/private-metadata.js";
import { registerListeners } from "./slack/register.js";
import { SlackNotifier } from "./slack/slack-notifier.js";
import { createUsergroupDirectory } from "./slack/usergroup-directory.js";
import { openDatabase } from "./store/database.js";
import { SqliteJobStore } from "./store/sqlite-job-store.js";
import { createImageWatcher } from "./watcher/image-watcher.js";
import { createOutboxRelay } from "./watcher/outbox-relay.js";

export interface BotOverrides {
  readonly images?: ImageService;
  readonly notifier?: Notifier;
  readonly clock?: Clock;
  readonly newJobId?: () => string;
  readonly channelGapMs?: number;
  readonly onStep?: StepHook;
}

export interface RunningBot {
  /** The HTTP port (HTTP mode, or the health port in Socket Mode). */
  readonly port: number | undefined;
  readonly store: SqliteJobStore;
  /** Stops taking requests, lets work in flight finish, and closes the database. */
  stop(): Promise<void>;
}

export async function startBot(
  config: Config,
  logger: Logger,
  overrides: BotOverrides = {},
): Promise<RunningBot> {
  const clock = overrides.clock ?? systemClock;
  const onStep = overrides.onStep ?? crashHook(config.crashAt, logger);
  const db = openDatabase(config.databasePath);
  const store = new SqliteJobStore(db);
  const images = overrides.images ?? new Ec2Images();
  const background = createBackgroundClient(config, logger);
  const notifier = overrides.notifier ?? new SlackNotifier({ client: background, config, clock });
  const relay = createOutboxRelay({
    store,
    notifier,
    clock,
    logger: logger.child({ component: "outbox" }),
    onStep,
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
    onStep,
  });
  let accepting = true;
  const slack = createSlackApp(config, logger, () => ({
    ok: accepting,
    unfinishedJobs: store.unfinishedCount(),
  }));
  const directory = createUsergroupDirectory({
    client: background,
    groupIds: mentionedUsergroups(config.targets),
    ttlMs: config.usergroupCacheMs,
    clock,
    logger,
  });
  const inflight = createInflightTracker();
  slack.app.use(inflight.middleware);
  registerListeners(slack.app, {
    config,
    store,
    images,
    clock,
    logger,
    directory,
    newJobId: overrides.newJobId ?? randomUUID,
    metadata: createBotMetadataCodec(config),
    onStep,
    onJobAccepted: () => {
      relay.wake();
      watcher.wake();
    },
  });

  const { port } = await slack.start();
  // Resume every unfinished job and every undelivered message left by an earlier run.
  watcher.start();
  relay.start();
  logger.info(
    { port, mode: config.slack.appToken ? "socket" : "http", unfinishedJobs: store.unfinishedCount() },
    "ami-bot ready",
  );

  let stopped: Promise<void> | undefined;
  return {
    port,
    store,
    stop() {
      stopped ??= shutdown();
      return stopped;
    },
  };

  async function shutdown(): Promise<void> {
    accepting = false;
    await slack.stop();
    // Requests already received run to the end (a modal to open, a job to wake) before the store closes.
    await inflight.drain(10_000);
    await watcher.stop();
    await relay.stop();
    db.close();
    logger.info("ami-bot stopped");
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
