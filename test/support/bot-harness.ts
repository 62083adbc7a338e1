/**
 * Runs the real bot in HTTP mode on an ephemeral port against local stand-ins: the fake Slack Web API
 * and a fake AWS endpoint reached through the SDK's standard AWS_ENDPOINT_URL override.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pino } from "pino";
import { vi } from "vitest";
import { type BotOverrides, createBotMetadataCodec, type RunningBot, startBot } from "../../src/bot.js";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/logger.js";
import type { SlackBudgets } from "../../src/slack/budgets.js";
import { SqliteJobStore } from "../../src/store/sqlite-job-store.js";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
import { type FakeSlack, type FakeSlackOptions, startFakeSlack } from "../fakes/fake-slack.js";
import { interactionBody, postSigned, slashCommandBody } from "./slack-requests.js";

export const SIGNING_SECRET = "test-signing-secret-0123456789";
export const ROLE_ARN = "arn:aws:iam::123456789012:role/ami-bot-target";
export const EXTERNAL_ID = "external-id-0123456789";
export const ALLOWED_USER = "U0ALLOWED1";
export const CHANNEL = "C0CHANNEL1";

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/slack/view_submission.bolt-python.json", import.meta.url), "utf8"),
) as { view: Record<string, unknown> } & Record<string, unknown>;

/** private_metadata as the bot itself signs it, for payloads of a modal the test pretends was opened. */
export function signedMetadata(origin: string, nameVersion = 0, autoName?: string): string {
  return createBotMetadataCodec({
    slack: {
      botToken: "xoxb-test-token",
      signingSecret: SIGNING_SECRET,
      appToken: undefined,
      apiUrl: undefined,
    },
  }).encode({ origin, nameVersion, autoName });
}

/**
 * The waits for AWS and Slack, relaxed: on a loaded 2-core machine a cold first call to the in-process fakes
 * can outlast production's budgets, and the handler would take its "too slow" path in a test expecting the
 * usual outcome. A test of a "too slow" path sets DEFAULT_SLACK_BUDGETS (or the one budget) itself. The
 * picker's settle stays production's, since every keystroke waits it out; a burst test lengthens it.
 */
export const RELAXED_BUDGETS: Partial<SlackBudgets> = {
  instanceCheckMs: 10_000,
  volumeListMs: 10_000,
  nameCheckMs: 10_000,
  permalinkMs: 10_000,
  peopleLookupMs: 10_000,
  pickerAnswerMs: 10_000,
};

export interface Harness {
  readonly slack: FakeSlack;
  readonly aws: FakeAws;
  readonly dbPath: string;
  readonly env: Record<string, string>;
  bot: RunningBot;
  /** The bot's store: the embedded SQLite one, which answers synchronously (the harness never sets DATABASE_URL). */
  readonly store: SqliteJobStore;
  readonly url: string;
  readonly logs: string[];
  /**
   * Stops the bot and starts a new one on the same database; `overrides` go over the harness's own for it
   * and later restarts (replacing those of an earlier restart; its budgets merged over the harness's).
   */
  restart(overrides?: BotOverrides): Promise<void>;
  command(
    fields: { user_id?: string; channel_id?: string; text?: string },
    headers?: Record<string, string>,
  ): ReturnType<typeof postSigned>;
  interaction(payload: unknown, headers?: Record<string, string>): ReturnType<typeof postSigned>;
  /** A view_submission shaped like Slack's, for the modal the bot opened last. */
  submission(values: FormAnswers, options?: { userId?: string; viewId?: string }): Record<string, unknown>;
  close(): Promise<void>;
}

export interface FormAnswers {
  readonly instanceId?: string;
  readonly instanceText?: string;
  readonly imageName?: string;
  readonly description?: string;
  readonly reboot?: "reboot" | "no_reboot";
  /** The reboot tick box of an `ask` target: ticked or not (instead of `reboot`). */
  readonly rebootBox?: boolean;
  readonly tags?: string;
  readonly channel?: string;
  readonly where?: string;
  /** Ticked copy regions and share accounts, in the blocks drawn for `where` (default prod|eu-west-1). */
  readonly copyTo?: readonly string[];
  readonly shareWith?: readonly string[];
}

/** A checkboxes element's state, as Slack sends it, with these values ticked. */
function ticked(actionId: string, values: readonly string[]): Record<string, unknown> {
  return {
    [actionId]: {
      type: "checkboxes",
      selected_options: values.map((value) => ({ value, text: { type: "plain_text", text: value } })),
    },
  };
}

/** view.state.values as Slack would send them for the given answers. */
export function formState(a: FormAnswers, nameBlock = "image_name"): Record<string, Record<string, unknown>> {
  return {
    ...(a.where
      ? {
          where: {
            where_select: {
              type: "static_select",
              selected_option: { value: a.where, text: { type: "plain_text", text: a.where } },
            },
          },
        }
      : {}),
    instance: {
      instance_select: {
        type: "external_select",
        selected_option: a.instanceId
          ? {
              value: a.instanceId,
              text: {
                type: "plain_text",
                text: a.instanceText ?? `web-1 (${a.instanceId}) · running · t3.micro`,
              },
            }
          : null,
      },
    },
    [nameBlock]: { image_name_input: { type: "plain_text_input", value: a.imageName ?? null } },
    description: { description_input: { type: "plain_text_input", value: a.description ?? null } },
    reboot: {
      reboot_choice:
        a.rebootBox === undefined
          ? {
              type: "radio_buttons",
              selected_option: a.reboot
                ? { value: a.reboot, text: { type: "plain_text", text: a.reboot } }
                : null,
            }
          : {
              type: "checkboxes",
              selected_options: a.rebootBox
                ? [
                    {
                      value: "reboot",
                      text: { type: "plain_text", text: "Reboot the instance while imaging" },
                    },
                  ]
                : [],
            },
    },
    tags: { tags_input: { type: "plain_text_input", value: a.tags ?? null } },
    channel: {
      channel_select: { type: "conversations_select", selected_conversation: a.channel ?? CHANNEL },
    },
    ...(a.copyTo && { [`copy_to.${a.where ?? "prod|eu-west-1"}`]: ticked("copy_to_choice", a.copyTo) }),
    ...(a.shareWith && {
      [`share_with.${a.where ?? "prod|eu-west-1"}`]: ticked("share_with_choice", a.shareWith),
    }),
  };
}

export async function startHarness(
  options: {
    env?: Record<string, string>;
    slack?: FakeSlackOptions;
    overrides?: BotOverrides;
    pollInterval?: string;
    /** Log through the bot's own createLogger (with its redaction), as production does. */
    appLogger?: boolean;
    /** The bot's own AWS keys (default "test"/"test"); distinctive values let a test search logs for them. */
    awsCredentials?: { accessKeyId: string; secretAccessKey: string };
  } = {},
): Promise<Harness> {
  const slack = await startFakeSlack(options.slack);
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  vi.stubEnv("AWS_ENDPOINT_URL", aws.url);
  vi.stubEnv("AWS_REGION", "eu-west-1");
  vi.stubEnv("AWS_ACCESS_KEY_ID", options.awsCredentials?.accessKeyId ?? "test");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", options.awsCredentials?.secretAccessKey ?? "test");
  vi.stubEnv("AWS_SESSION_TOKEN", "");
  vi.stubEnv("AWS_PROFILE", "");
  const dbPath = join(mkdtempSync(join(tmpdir(), "ami-bot-e2e-")), "bot.db");
  const env: Record<string, string> = {
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.url,
    PORT: "0",
    AMI_BOT_DB: dbPath,
    AMI_TARGET_NAME: "prod",
    AMI_TARGET_ROLE_ARN: ROLE_ARN,
    AMI_TARGET_EXTERNAL_ID: EXTERNAL_ID,
    AMI_TARGET_REGIONS: "eu-west-1",
    AMI_TARGET_ALLOW_USERS: ALLOWED_USER,
    AMI_POLL_INTERVAL: options.pollInterval ?? "100ms",
    LOG_LEVEL: "debug",
    ...options.env,
  };
  const logs: string[] = [];
  let extra: BotOverrides = {};
  const start = async (): Promise<RunningBot> => {
    const config: Config = loadConfig(env);
    const destination = { write: (line: string) => void logs.push(line) };
    const logger: Logger = options.appLogger
      ? createLogger("debug", destination)
      : pino({ level: "debug" }, destination);
    const started = await startBot(config, logger, botOverrides(options.overrides, extra));
    // Tests start once Slack has accepted the bot, as a person would find it.
    await started.ready;
    return started;
  };
  let bot = await start();
  const urlOf = (b: RunningBot) => `http://127.0.0.1:${b.port}/slack/events`;

  const harness: Harness = {
    slack,
    aws,
    dbPath,
    env,
    logs,
    get bot() {
      return bot;
    },
    set bot(b) {
      bot = b;
    },
    get store() {
      if (!(bot.store instanceof SqliteJobStore)) throw new Error("the harness runs the bot on SQLite");
      return bot.store;
    },
    get url() {
      return urlOf(bot);
    },
    async restart(overrides = {}) {
      await bot.stop();
      extra = overrides;
      bot = await start();
    },
    command(fields, headers) {
      const body = slashCommandBody({
        user_id: fields.user_id ?? ALLOWED_USER,
        channel_id: fields.channel_id ?? CHANNEL,
        text: fields.text ?? "",
        response_url: slack.responseUrl,
      });
      return postSigned(urlOf(bot), body, SIGNING_SECRET, headers ? { headers } : {});
    },
    interaction(payload, headers) {
      return postSigned(urlOf(bot), interactionBody(payload), SIGNING_SECRET, headers ? { headers } : {});
    },
    submission(values, opts = {}) {
      const opened = [...slack.callsTo("views.open")].pop();
      const view = (opened?.args.view ?? {}) as Record<string, unknown>;
      return {
        ...fixture,
        user: { id: opts.userId ?? ALLOWED_USER, username: "someone", name: "someone", team_id: "T111" },
        view: {
          ...fixture.view,
          id: opts.viewId ?? "V0VIEW0001",
          callback_id: "ami_create",
          blocks: view.blocks ?? [],
          private_metadata: view.private_metadata ?? "",
          state: { values: formState(values) },
        },
      };
    },
    async close() {
      await bot.stop().catch(() => undefined);
      await slack.close();
      await aws.close();
      vi.unstubAllEnvs();
      rmSync(dirname(dbPath), { recursive: true, force: true });
    },
  };
  return harness;
}

/** What the harness's bot runs with: no channel gap and relaxed budgets, unless the test says otherwise. */
function botOverrides(given: BotOverrides = {}, onRestart: BotOverrides = {}): BotOverrides {
  return {
    channelGapMs: 0,
    ...given,
    ...onRestart,
    budgets: { ...RELAXED_BUDGETS, ...given.budgets, ...onRestart.budgets },
  };
}

/** Polls until the check passes (for background work: the watcher and the outbox). */
export async function eventually<T>(
  check: () => T | undefined | false,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A block_actions payload from the modal the bot opened last (its blocks and signed metadata), with the
 * form filled in as `answers` and one action: a button click or an instance pick.
 */
export function modalActionPayload(
  h: Harness,
  options: { userId?: string; answers: FormAnswers; action: Record<string, unknown>; metadata?: string },
): Record<string, unknown> {
  const opened = h.slack.callsTo("views.open").at(-1);
  const view = (opened?.args.view ?? {}) as { private_metadata?: string; blocks?: unknown[] };
  const userId = options.userId ?? ALLOWED_USER;
  return {
    type: "block_actions",
    user: { id: userId, username: "someone", name: "someone", team_id: "T111" },
    api_app_id: "A111",
    token: "verification_token",
    container: { type: "view", view_id: "V0VIEW0001" },
    trigger_id: "111.222.valid",
    team: { id: "T111", domain: "workspace-domain" },
    view: {
      id: "V0VIEW0001",
      type: "modal",
      callback_id: "ami_create",
      hash: "1596530361.3wRYuk3R",
      private_metadata: options.metadata ?? view.private_metadata,
      blocks: view.blocks,
      state: { values: formState(options.answers) },
    },
    actions: [{ block_id: "x", action_ts: "1596530385.194939", ...options.action }],
  };
}

/** The one target every test bot has (prod, eu-west-1, the allowed user), with a quick watcher. */
export const ONE_TARGET_ENV: Readonly<Record<string, string>> = {
  AMI_TARGET_NAME: "prod",
  AMI_TARGET_ROLE_ARN: ROLE_ARN,
  AMI_TARGET_EXTERNAL_ID: EXTERNAL_ID,
  AMI_TARGET_REGIONS: "eu-west-1",
  AMI_TARGET_ALLOW_USERS: ALLOWED_USER,
  AMI_POLL_INTERVAL: "100ms",
};

/** The variables of a one-target bot in Socket Mode, pointed at a fake Slack (which hands out the socket). */
export function socketModeEnv(options: {
  slackUrl: string;
  port: number;
  dbPath: string;
}): Record<string, string> {
  return {
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_APP_TOKEN: "xapp-test-token",
    SLACK_API_URL: options.slackUrl,
    PORT: String(options.port),
    AMI_BOT_DB: options.dbPath,
    ...ONE_TARGET_ENV,
  };
}
