/**
 * Runs the real bot as a child process (`node --import tsx src/main.ts`), the way it runs in production,
 * against the fakes living in the test process. Crash and shutdown tests kill it with real signals and
 * start it again on the same database.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
import { type FakeSlack, type FakeSlackOptions, startFakeSlack } from "../fakes/fake-slack.js";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  type FormAnswers,
  formState,
  ONE_TARGET_ENV,
  ROLE_ARN,
  SIGNING_SECRET,
} from "./bot-harness.js";
import { interactionBody, sign, slashCommandBody } from "./slack-requests.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

const fixture = JSON.parse(
  readFileSync(new URL("../fixtures/slack/view_submission.bolt-python.json", import.meta.url), "utf8"),
) as { view: Record<string, unknown> } & Record<string, unknown>;

export interface ChildBotOptions {
  readonly slackUrl: string;
  readonly awsUrl: string;
  readonly dbPath: string;
  /** Sets AMI_BOT_CRASH_AT: the child SIGKILLs itself at this step. */
  readonly crashAt?: string;
  /** Extra or overriding variables. */
  readonly env?: Record<string, string>;
  readonly readyTimeoutMs?: number;
  /**
   * When startChildBot resolves: once /healthz answers 200 (default), once it answers at all (a bot still
   * waiting for Slack answers 503), or at once after spawning (for a bot expected to exit).
   */
  readonly waitUntil?: "healthy" | "listening" | "spawned";
  /** The Node.js binary to run the bot with (default: the one running the tests). */
  readonly nodeBinary?: string;
  /** The folder holding the compiled bot (`dist/src/main.js`) and its node_modules (default: this repository). */
  readonly appDir?: string;
}

/** What GET /healthz answers. */
export interface HealthBody {
  readonly ok: boolean;
  readonly slack: string;
  readonly stopping?: boolean;
  readonly unfinishedJobs: number;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

export interface ChildBot {
  readonly pid: number;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  /** Resolves when the process has exited, however it ended. */
  readonly exit: Promise<ChildExit>;
  /** Everything the child wrote so far. */
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL if it has not exited within the timeout. */
  stop(timeoutMs?: number): Promise<ChildExit>;
  health(): Promise<HttpAnswer & { json: HealthBody }>;
  /** A signed /ami slash command. */
  command(fields?: { user_id?: string; channel_id?: string; text?: string }): Promise<HttpAnswer>;
  /** A signed interaction payload (view_submission, block_suggestion, …). */
  interaction(payload: unknown): Promise<HttpAnswer>;
}

/**
 * One HTTP exchange on a fresh connection (no keep-alive), so a test never holds a socket that would
 * keep the bot's server from closing, and a dead bot shows as a refused connection.
 */
export function httpRequest(
  url: string,
  options: { method?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? "GET",
        agent: false,
        headers: { connection: "close", ...options.headers },
        timeout: options.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on("error", reject);
    req.end(options.body);
  });
}

/** The variables of a one-target bot in HTTP mode, pointed at the fakes. Nothing else is inherited. */
export function childEnv(options: ChildBotOptions, port: number): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "/tmp",
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    // Empty values, so a stray .env in the repository cannot switch the child to Socket Mode or a file.
    SLACK_APP_TOKEN: "",
    AMI_BOT_CONFIG: "",
    SLACK_API_URL: options.slackUrl,
    PORT: String(port),
    AMI_BOT_DB: options.dbPath,
    ...ONE_TARGET_ENV,
    LOG_LEVEL: "info",
    AWS_ENDPOINT_URL: options.awsUrl,
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/nonexistent/aws-config",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
    // The crash switch works only under the test harness (NODE_ENV=test), never in production.
    ...(options.crashAt ? { AMI_BOT_CRASH_AT: options.crashAt, NODE_ENV: "test" } : {}),
    ...options.env,
  };
}

/** Starts the bot and resolves once GET /healthz answers 200; rejects with its output if it dies first. */
export async function startChildBot(options: ChildBotOptions): Promise<ChildBot> {
  if (process.env.AMI_TEST_BUILD_ERROR) throw new Error(process.env.AMI_TEST_BUILD_ERROR);
  // PORT=0: the bot binds a free port itself and logs it. A port picked here and handed over could be taken
  // by another process in between, and this test would then talk to that process.
  let port = 0;
  // The compiled build, as production runs it (test/support/global-setup.ts builds it once per run).
  const child: ChildProcess = spawn(options.nodeBinary ?? process.execPath, ["dist/src/main.js"], {
    cwd: options.appDir ?? REPO_ROOT,
    env: childEnv(options, 0),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString("utf8");
    if (port === 0) port = listeningPort(out) ?? 0;
  });
  child.stderr?.on("data", (c: Buffer) => {
    err += c.toString("utf8");
  });
  let exited: ChildExit | undefined;
  const exit = new Promise<ChildExit>((resolve) => {
    child.on("exit", (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    });
  });
  const baseUrl = () => `http://127.0.0.1:${port}`;
  const signed = (body: string) =>
    httpRequest(`${baseUrl()}/slack/events`, {
      method: "POST",
      body,
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...sign(body, SIGNING_SECRET, Math.floor(Date.now() / 1000)),
      },
    });

  const bot: ChildBot = {
    pid: child.pid ?? -1,
    get port() {
      return port;
    },
    get baseUrl() {
      return baseUrl();
    },
    exit,
    stdout: () => out,
    stderr: () => err,
    kill(signal) {
      if (!exited) child.kill(signal);
    },
    async stop(timeoutMs = 15_000) {
      if (exited) return exited;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
    async health() {
      const res = await httpRequest(`${baseUrl()}/healthz`, { timeoutMs: 2000 });
      return { ...res, json: JSON.parse(res.body) as HealthBody };
    },
    command(fields = {}) {
      return signed(
        slashCommandBody({
          user_id: fields.user_id ?? ALLOWED_USER,
          channel_id: fields.channel_id ?? CHANNEL,
          text: fields.text ?? "",
        }),
      );
    },
    interaction(payload) {
      return signed(interactionBody(payload));
    },
  };

  if (options.waitUntil === "spawned") return bot;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exited)
      throw new Error(
        `the bot exited (${exited.code ?? exited.signal}) before it was ready:\n${err}\n${out.slice(-2000)}`,
      );
    const ok =
      port !== 0 &&
      (await bot.health().then(
        (r) => r.status === 200 || options.waitUntil === "listening",
        () => false,
      ));
    if (ok) return bot;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the bot did not answer /healthz in time:\n${err}\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The port from the bot's "listening" log line, once it has been written. */
function listeningPort(stdout: string): number | undefined {
  for (const line of stdout.split("\n")) {
    if (!line.includes('"listening; checking the Slack token"')) continue;
    try {
      const port = (JSON.parse(line) as { port?: unknown }).port;
      if (typeof port === "number" && port > 0) return port;
    } catch {
      // The line has not been written in full yet.
    }
  }
  return undefined;
}

/** A view_submission shaped like Slack's, for the modal the bot opened last on this fake Slack. */
export function viewSubmission(
  slack: FakeSlack,
  values: FormAnswers,
  options: { userId?: string; viewId?: string } = {},
): Record<string, unknown> {
  const opened = slack.callsTo("views.open").at(-1);
  const view = (opened?.args.view ?? {}) as Record<string, unknown>;
  return {
    ...fixture,
    user: { id: options.userId ?? ALLOWED_USER, username: "someone", name: "someone", team_id: "T111" },
    view: {
      ...fixture.view,
      id: options.viewId ?? "V0VIEW0001",
      callback_id: "ami_create",
      blocks: view.blocks ?? [],
      private_metadata: view.private_metadata ?? "",
      state: { values: formState(values) },
    },
  };
}

/** Like `eventually`, for checks that must ask over the network. */
export async function eventuallyAsync<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ChildFakes {
  readonly slack: FakeSlack;
  readonly aws: FakeAws;
  readonly dbPath: string;
  /** What startChildBot needs to reach these fakes and this database. */
  readonly options: Pick<ChildBotOptions, "slackUrl" | "awsUrl" | "dbPath">;
  /** Children started with `start`, so `close` can make sure none outlives the test. */
  readonly bots: ChildBot[];
  start(extra?: Partial<ChildBotOptions>): Promise<ChildBot>;
  close(): Promise<void>;
}

/** A fake Slack, a fake AWS (with the harness's role) and a fresh database file for child bots. */
export async function startChildFakes(slackOptions: FakeSlackOptions = {}): Promise<ChildFakes> {
  const slack = await startFakeSlack(slackOptions);
  const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  const dbPath = join(mkdtempSync(join(tmpdir(), "ami-bot-child-")), "bot.db");
  const options = { slackUrl: slack.url, awsUrl: aws.url, dbPath };
  const bots: ChildBot[] = [];
  return {
    slack,
    aws,
    dbPath,
    options,
    bots,
    async start(extra = {}) {
      const bot = await startChildBot({ ...options, ...extra });
      bots.push(bot);
      return bot;
    },
    async close() {
      for (const bot of bots) bot.kill("SIGKILL");
      await Promise.all(bots.map((b) => b.exit));
      await slack.close();
      await aws.close();
      rmSync(dirname(dbPath), { recursive: true, force: true });
    },
  };
}
