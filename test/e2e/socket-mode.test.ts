/**
 * Socket Mode, the manifest's default: with SLACK_APP_TOKEN set the bot connects out over a WebSocket
 * (no public URL, no signing secret), answers /ami and the form through it, and still serves /healthz.
 */
import { mkdtempSync, rmSync } from "node:fs";
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
  formState,
  ROLE_ARN,
  socketModeEnv,
} from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";

describe("Socket Mode", () => {
  let socket: FakeSocketMode;
  let slack: FakeSlack;
  let aws: FakeAws;
  let bot: RunningBot;
  let port: number;
  let dir: string;

  beforeEach(async () => {
    socket = await startFakeSocketMode();
    slack = await startFakeSlack({ socketModeUrl: socket.url });
    aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
    aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    vi.stubEnv("AWS_ENDPOINT_URL", aws.url);
    vi.stubEnv("AWS_ACCESS_KEY_ID", "test");
    vi.stubEnv("AWS_SECRET_ACCESS_KEY", "test");
    vi.stubEnv("AWS_REGION", "eu-west-1");
    dir = mkdtempSync(join(tmpdir(), "ami-bot-socket-"));
    const config = loadConfig(socketModeEnv({ slackUrl: slack.url, port: 0, dbPath: join(dir, "bot.db") }));
    bot = await startBot(config, pino({ level: "silent" }), {
      channelGapMs: 0,
    });
    port = bot.port as number;
    await bot.ready;
    await socket.connected();
  });
  afterEach(async () => {
    await bot.stop();
    await socket.close();
    await slack.close();
    await aws.close();
    vi.unstubAllEnvs();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers /ami and the form over the WebSocket and serves /healthz on PORT", async () => {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true, slack: "connected", unfinishedJobs: 0 });

    const commandAck = await socket.deliver("slash_commands", {
      command: "/ami",
      text: "",
      user_id: ALLOWED_USER,
      channel_id: CHANNEL,
      team_id: "T111",
      trigger_id: "111.222.socket",
      response_url: "https://hooks.slack.com/commands/T111/111/xxxxx",
    });
    expect(commandAck.envelope_id).toBe("env-1");
    const opened = await slack.waitFor("views.open");
    expect(opened.args.trigger_id).toBe("111.222.socket");

    const view = opened.args.view as { private_metadata: string; blocks: unknown[] };
    const submitAck = await socket.deliver("interactive", {
      type: "view_submission",
      team: { id: "T111" },
      user: { id: ALLOWED_USER, name: "someone", team_id: "T111" },
      api_app_id: "A111",
      trigger_id: "111.333.socket",
      view: {
        id: "V0SOCKET01",
        type: "modal",
        callback_id: "ami_create",
        private_metadata: view.private_metadata,
        blocks: view.blocks,
        hash: "h",
        state: {
          values: formState({ instanceId: INSTANCE, imageName: "over the socket", reboot: "reboot" }),
        },
      },
    });
    // An empty ack closes the modal, exactly as an empty HTTP 200 does.
    expect(submitAck.payload ?? {}).toEqual({});
    const root = await eventually(
      () => slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "root",
    );
    expect(JSON.stringify(root.blocks)).toContain("over the socket");
    await eventually(() => aws.calls("CreateImage")[0], 10_000, "CreateImage");
  });

  it("returns field errors in the ack when the form is invalid", async () => {
    const ack = await socket.deliver("interactive", {
      type: "view_submission",
      team: { id: "T111" },
      user: { id: ALLOWED_USER, name: "someone", team_id: "T111" },
      api_app_id: "A111",
      view: {
        id: "V0SOCKET02",
        type: "modal",
        callback_id: "ami_create",
        private_metadata: "",
        hash: "h",
        state: { values: formState({ instanceId: INSTANCE, imageName: "x", reboot: "reboot" }) },
      },
    });
    expect(ack.payload).toEqual({
      response_action: "errors",
      errors: { image_name: "The name needs at least 3 characters." },
    });
    expect(aws.requests).toHaveLength(0);
  });

  it("opens no second form when Slack redelivers /ami over the socket", async () => {
    const command = {
      command: "/ami",
      text: "",
      user_id: ALLOWED_USER,
      channel_id: CHANNEL,
      team_id: "T111",
      trigger_id: "111.444.socket",
    };
    await socket.deliver("slash_commands", command, { retryAttempt: 1 });
    await new Promise((r) => setTimeout(r, 300));
    expect(slack.callsTo("views.open")).toHaveLength(0);
  });
});
