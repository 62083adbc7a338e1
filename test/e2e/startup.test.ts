/**
 * Start-up that never lies: the bot runs as a real child process. Slack down at start must not leave it
 * deaf (it keeps trying, /healthz says 503 until Slack accepts it, then 200, with no restart); a token
 * Slack refuses, a placeholder token, a port in use or a database it cannot open end it with exit code 2
 * and one line naming the setting to fix.
 */
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NOT_CONNECTED_TEXT } from "../../src/slack/app.js";
import { eventually } from "../support/bot-harness.js";
import {
  type ChildFakes,
  eventuallyAsync,
  type HealthBody,
  startChildFakes,
  viewSubmission,
} from "../support/child-bot.js";

const INSTANCE = "i-0123456789abcdef0";

let fakes: ChildFakes | undefined;
afterEach(async () => {
  await fakes?.close();
  fakes = undefined;
});

/** Exit code 2 and exactly one line on stderr, with no stack trace. */
function expectOneLineExit2(exit: { code: number | null }, stderr: string, ...mentions: string[]): void {
  expect(exit.code, stderr).toBe(2);
  const lines = stderr.trim().split("\n");
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  for (const text of mentions) expect(lines[0]).toContain(text);
}

describe("start-up", () => {
  // Retries back off 1, 2, 4, 8, 16 then 30 s: with start-up and a full /ami on a busy machine, well over the
  // default 30 s.
  it("keeps trying while Slack is down at start, answers 503 meanwhile, then works with no restart", {
    timeout: 120_000,
  }, async () => {
    fakes = await startChildFakes();
    fakes.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const slack = fakes.slack;
    // Slack's address is known, but every connection to it is dropped.
    slack.setDown(true);
    const bot = await fakes.start({ waitUntil: "listening" });

    const down = await eventuallyAsync(
      async () => {
        const h = await bot.health();
        return h.json.slack === "unreachable" ? h : undefined;
      },
      30_000,
      "/healthz to say Slack is unreachable",
    );
    expect(down.status).toBe(503);
    expect(down.json).toMatchObject({ ok: false, slack: "unreachable" } satisfies Partial<HealthBody>);
    // Every attempt is logged, and the process stays up.
    await eventually(() => bot.stdout().includes("Slack could not be reached"), 15_000, "a logged attempt");
    expect(bot.stdout()).toContain('"attempt":1');
    // Someone typing /ami meanwhile is told, privately, why nothing opens.
    const early = await bot.command();
    expect(early.status).toBe(200);
    expect(JSON.parse(early.body)).toEqual({ response_type: "ephemeral", text: NOT_CONNECTED_TEXT });
    await eventually(
      () => bot.stdout().includes("a Slack request arrived before Slack accepted the bot token"),
      15_000,
      "the early request logged",
    );

    slack.setDown(false);
    // The next attempt may be a whole back-off away (up to 30 s, if the steps above were slow).
    const up = await eventuallyAsync(
      async () => {
        const h = await bot.health();
        return h.status === 200 ? h : undefined;
      },
      45_000,
      "/healthz to turn 200 once Slack answers",
    );
    expect(up.json).toEqual({ ok: true, slack: "connected", unfinishedJobs: 0 });
    expect(slack.callsTo("auth.test").length).toBeGreaterThan(0);

    // The same process now takes /ami end to end.
    expect((await bot.command()).status).toBe(200);
    await slack.waitFor("views.open");
    const submitted = await bot.interaction(
      viewSubmission(slack, { instanceId: INSTANCE, imageName: "after-outage", reboot: "reboot" }),
    );
    expect(submitted.status).toBe(200);
    await eventually(() => fakes?.aws.calls("CreateImage").length === 1, 30_000, "CreateImage");
    const root = await eventually(
      () => slack.messages.find((m) => !m.threadTs),
      30_000,
      "the root message in the channel",
    );
    expect(JSON.stringify(root.blocks)).toContain("after-outage");
    expect((await bot.stop()).code).toBe(0);
  });

  it("exits 2 with one line naming SLACK_BOT_TOKEN when Slack refuses the token", async () => {
    fakes = await startChildFakes();
    const bot = await fakes.start({ env: { SLACK_BOT_TOKEN: "xoxb-revoked-0000" }, waitUntil: "spawned" });
    const exit = await bot.exit;
    expectOneLineExit2(exit, bot.stderr(), "SLACK_BOT_TOKEN", "invalid_auth");
    expect(fakes.slack.callsTo("auth.test")).toHaveLength(1);
    // Nothing was posted with the refused token.
    expect(fakes.slack.calls.map((c) => c.method)).toEqual(["auth.test"]);
  });

  it("refuses the placeholder token from .env.example before any call to Slack", async () => {
    fakes = await startChildFakes();
    const bot = await fakes.start({ env: { SLACK_BOT_TOKEN: "xoxb-your-bot-token" }, waitUntil: "spawned" });
    const exit = await bot.exit;
    expect(exit.code).toBe(2);
    expect(bot.stderr()).toContain("SLACK_BOT_TOKEN is still the placeholder from .env.example");
    expect(fakes.slack.calls).toEqual([]);
  });

  it("exits 2 with one line naming PORT when the port is in use", async () => {
    fakes = await startChildFakes();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      const bot = await fakes.start({ env: { PORT: String(port) }, waitUntil: "spawned" });
      const exit = await bot.exit;
      expectOneLineExit2(exit, bot.stderr(), `PORT ${port} is already in use`);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it("exits 2 with one line naming AMI_BOT_DB when the database cannot be opened", async () => {
    fakes = await startChildFakes();
    // A path under a regular file: no folder can be made there, even by root.
    const file = join(dirname(fakes.dbPath), "not-a-folder");
    writeFileSync(file, "");
    const bot = await fakes.start({ env: { AMI_BOT_DB: join(file, "bot.db") }, waitUntil: "spawned" });
    const exit = await bot.exit;
    expectOneLineExit2(exit, bot.stderr(), "AMI_BOT_DB", file);
  });
});
