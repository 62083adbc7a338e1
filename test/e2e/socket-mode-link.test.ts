/**
 * Socket Mode's link to Slack: every connection attempt has a time limit and a log line, /healthz answers
 * 503 while the socket is down, and a dropped socket is reopened with no restart.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type RunningBot, startBot } from "../../src/bot.js";
import { loadConfig } from "../../src/config.js";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
import { type FakeSlack, startFakeSlack } from "../fakes/fake-slack.js";
import { type FakeSocketMode, startFakeSocketMode } from "../fakes/fake-socket-mode.js";
import {
  ALLOWED_USER,
  CHANNEL,
  EXTERNAL_ID,
  eventually,
  ROLE_ARN,
  socketModeEnv,
} from "../support/bot-harness.js";
import { eventuallyAsync, type HealthBody } from "../support/child-bot.js";

/** Short waits, so a test sees several attempts in a second. */
const RETRY = { initialDelayMs: 50, maxDelayMs: 200, attemptTimeoutMs: 300 };

let slack: FakeSlack;
let aws: FakeAws;
let bot: RunningBot | undefined;
let dir: string;
let logs: { msg: string; attempt?: number; reason?: string }[];

async function start(socketModeUrl: string, retry = RETRY): Promise<{ port: number; bot: RunningBot }> {
  slack = await startFakeSlack({ socketModeUrl });
  const config = loadConfig(socketModeEnv({ slackUrl: slack.url, port: 0, dbPath: join(dir, "bot.db") }));
  const destination = { write: (line: string) => void logs.push(JSON.parse(line)) };
  bot = await startBot(config, pino({ level: "info" }, destination), { channelGapMs: 0, slackRetry: retry });
  return { port: bot.port as number, bot };
}

async function health(port: number): Promise<{ status: number; json: HealthBody }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: res.status, json: (await res.json()) as HealthBody };
}

const attemptsLogged = () => logs.filter((l) => l.msg === "opening the Socket Mode connection to Slack");

beforeEach(async () => {
  aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
  vi.stubEnv("AWS_ENDPOINT_URL", aws.url);
  vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
  vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
  vi.stubEnv("AWS_REGION", "eu-west-1");
  dir = mkdtempSync(join(tmpdir(), "ami-bot-socket-link-"));
  logs = [];
});
afterEach(async () => {
  await bot?.stop();
  bot = undefined;
  await slack.close();
  await aws.close();
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

describe("the Socket Mode link", () => {
  let hanging: Server;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => (hanging ? hanging.close(() => resolve()) : resolve()));
  });

  it("gives up on a connection that is accepted and never answered, logs each attempt, and answers 503", async () => {
    // Accepts the TCP connection, never answers the WebSocket upgrade.
    hanging = createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    const { port: wsPort } = hanging.address() as { port: number };
    const started = await start(`ws://127.0.0.1:${wsPort}/link`);

    await eventually(() => attemptsLogged().length >= 3, 10_000, "three connection attempts");
    const failures = logs.filter((l) => l.msg === "the Socket Mode connection to Slack failed; trying again");
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures[0]).toMatchObject({ attempt: 1, reason: "no answer within 300 ms" });
    expect(attemptsLogged().map((l) => l.attempt)).toEqual(
      Array.from({ length: attemptsLogged().length }, (_, i) => i + 1),
    );
    const h = await health(started.port);
    expect(h.status).toBe(503);
    expect(h.json).toMatchObject({ ok: false, slack: "connecting" });

    // Stopping does not wait for the attempt in progress.
    const t0 = Date.now();
    await started.bot.stop();
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});

describe("a dropped socket", () => {
  let socket: FakeSocketMode;
  beforeEach(async () => {
    socket = await startFakeSocketMode();
  });
  afterEach(async () => {
    await socket.close();
  });

  it("answers 503 while the socket is down and reopens it, with no restart", async () => {
    // Refused attempts fail at once; a long attempt limit only keeps a slow (loaded) open from being given
    // up and counted again, so the reopening below greets exactly one more connection.
    const { port, bot: running } = await start(socket.url, { ...RETRY, attemptTimeoutMs: 5_000 });
    await running.ready;
    const greeted = socket.connectionCount();
    expect(await health(port)).toEqual({
      status: 200,
      json: { ok: true, slack: "connected", unfinishedJobs: 0 },
    });

    // Slack's end goes away and refuses new connections for a while.
    socket.refuse(true);
    socket.dropConnections();
    const down = await eventuallyAsync(
      async () => {
        const h = await health(port);
        return h.status === 503 ? h : undefined;
      },
      10_000,
      "/healthz to turn 503",
    );
    expect(down.json).toMatchObject({ ok: false, slack: "disconnected" });
    await eventually(
      () => logs.some((l) => l.msg === "the Socket Mode connection to Slack failed; trying again"),
      10_000,
      "a failed reconnection attempt",
    );
    expect(logs.some((l) => l.msg === "the Socket Mode connection to Slack dropped; reopening it")).toBe(
      true,
    );

    socket.refuse(false);
    await eventuallyAsync(async () => (await health(port)).status === 200, 10_000, "/healthz back to 200");
    expect(socket.connectionCount()).toBe(greeted + 1);

    // The reopened socket carries /ami.
    const ack = await socket.deliver(
      "slash_commands",
      {
        command: "/ami",
        text: "",
        user_id: ALLOWED_USER,
        channel_id: CHANNEL,
        team_id: "T111",
        trigger_id: "111.222.again",
      },
      { timeoutMs: 10_000 },
    );
    expect(ack.envelope_id).toBeDefined();
    const opened = await slack.waitFor("views.open");
    expect(opened.args.trigger_id).toBe("111.222.again");
  });
});
