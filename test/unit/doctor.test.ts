/** The operators' doctor, run against the local Slack and AWS stand-ins. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { STSClient } from "@aws-sdk/client-sts";
import { webApi } from "@slack/bolt";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { getBotIdentity } from "../../src/aws/bot-identity.js";
import { Ec2Images } from "../../src/aws/ec2-images.js";
import { createSessionFactory } from "../../src/aws/scoped-credentials.js";
import { pickerPolicy } from "../../src/aws/session-policy.js";
import { type Config, loadConfig } from "../../src/config.js";
import {
  type DoctorDeps,
  type DoctorLine,
  describeDoctor,
  formatDoctor,
  runDoctor,
} from "../../src/doctor.js";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
import { type FakeSlack, startFakeSlack } from "../fakes/fake-slack.js";

const ROLE = "arn:aws:iam::123456789012:role/ami-bot-target";
const OTHER_ROLE = "arn:aws:iam::210987654321:role/ami-bot-target";
const base = { accessKeyId: "test", secretAccessKey: "test" };
const SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543";
/** Short, so a hung check fails fast; used only where the other checks do not depend on it. */
const TIMEOUT_MS = 100;
const hangForever = () => new Promise<never>(() => {});

describe("npm run doctor", () => {
  let slack: FakeSlack;
  let aws: FakeAws;
  let config: Config;

  beforeEach(async () => {
    slack = await startFakeSlack();
    aws = await startFakeAws({ roles: { [ROLE]: { externalId: "ext-0123456789abcdef" } } });
    const file = join(mkdtempSync(join(tmpdir(), "doctor-")), "targets.json");
    writeFileSync(
      file,
      JSON.stringify({
        targets: [
          {
            name: "prod",
            roleArn: ROLE,
            externalId: "ext-0123456789abcdef",
            regions: ["eu-west-1", "us-east-1"],
          },
          { name: "other", roleArn: OTHER_ROLE, externalId: "ext-0123456789abcdef", regions: ["eu-west-1"] },
        ],
      }),
    );
    config = loadConfig({
      SLACK_BOT_TOKEN: "xoxb-test-token",
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.url,
      AMI_BOT_CONFIG: file,
    });
  });
  afterEach(async () => {
    await slack.close();
    await aws.close();
  });

  function deps(): DoctorDeps {
    const sessions = createSessionFactory({ endpoint: aws.url, credentials: base });
    return {
      config,
      slack: new webApi.WebClient("xoxb-test-token", { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
      botIdentity: () =>
        getBotIdentity(new STSClient({ region: "eu-west-1", endpoint: aws.url, credentials: base })),
      assumeRole: async (target: Config["targets"][number], region: string) => {
        const policy = pickerPolicy({ partition: target.partition, accountId: target.accountId, region });
        await sessions({ target, region, policy, userId: "ami-bot-doctor", channelId: "none" })();
      },
      images: new Ec2Images({
        sessions,
        clientFactory: (region, credentials) =>
          new EC2Client({ region, credentials, endpoint: aws.url, maxAttempts: 1 }),
      }),
      // Neither DATABASE_URL nor AMI_EVENTS_QUEUE_URL is set here (see doctor-postgres-sqs.test.ts).
      checkPostgres: () => Promise.reject(new Error("not configured: not asked")),
      checkEventsQueue: () => Promise.reject(new Error("not configured: not asked")),
      // Generous, so a loaded machine does not fail the real calls to the fakes.
      checkTimeoutMs: 5_000,
    };
  }

  /** The same set-up in Socket Mode, with this app-level token. */
  function socketMode(appToken: string): Config {
    return { ...config, slack: { ...config.slack, appToken, signingSecret: undefined } };
  }

  function withSigningSecret(signingSecret: string | undefined): Config {
    return { ...config, slack: { ...config.slack, signingSecret } };
  }

  it("prints a pass, fail or skip line for Slack, the bot's identity, each role and each region", async () => {
    aws.addInstance({ instanceId: "i-0123456789abcdef0", name: "web-1", region: "eu-west-1" });
    const lines = await runDoctor(deps());
    expect(lines.map((l) => [l.status, l.check])).toEqual([
      ["PASS", "Slack token (auth.test)"],
      ["PASS", "Slack signing secret (HTTP mode)"],
      ["PASS", "AWS identity of the bot"],
      ["PASS", "AssumeRole prod"],
      ["PASS", "CreateImage dry run prod eu-west-1"],
      ["SKIP", "CreateImage dry run prod us-east-1"],
      ["FAIL", "AssumeRole other"],
    ]);
    expect(lines.find((l) => l.check === "AssumeRole other")?.detail).toContain(
      "could not assume the role for target other",
    );
    expect(formatDoctor(lines)).toMatch(/^PASS {2}Slack token \(auth\.test\): team Fake, bot user UBOT$/m);
    // A dry run only: nothing was created.
    expect(aws.images.size).toBe(0);
    expect(aws.calls("CreateImage").every((c) => c.params.DryRun === "true")).toBe(true);
  });

  it("fails the Slack line when the token is refused", async () => {
    const d = deps();
    const lines = await runDoctor({
      ...d,
      slack: new webApi.WebClient("xoxb-wrong", { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
    });
    expect(lines[0]).toMatchObject({ status: "FAIL", check: "Slack token (auth.test)" });
    expect(lines[0]?.detail).toBe(
      "SLACK_BOT_TOKEN is not accepted by Slack (invalid_auth): reinstall the app to the workspace (OAuth & Permissions) and copy its Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN",
    );
  });

  it("says first what it is about to check, with the time limit", () => {
    expect(describeDoctor(config)).toBe(
      "Checking the Slack bot token, the signing secret (HTTP mode), the bot's AWS identity, AssumeRole into 2 target(s) and a CreateImage dry run in 3 region(s); each check gives up after 15 s.",
    );
    expect(describeDoctor(socketMode("xapp-test-token"), 100)).toContain("the app token (Socket Mode)");
  });

  describe("streaming and time limits", () => {
    it("hands each line to onLine as soon as its check finishes, before the run ends", async () => {
      const seen: DoctorLine[] = [];
      let finished = false;
      let seenWhenHung: string[] = [];
      const d = deps();
      const run = runDoctor(
        {
          ...d,
          checkTimeoutMs: TIMEOUT_MS,
          // The third check never answers: the first two lines must be out already.
          botIdentity: () => {
            seenWhenHung = seen.map((l) => l.check);
            return hangForever();
          },
        },
        { onLine: (line) => seen.push(line) },
      );
      void run.then(() => {
        finished = true;
      });
      await vi.waitFor(() => expect(seenWhenHung).toHaveLength(2));
      expect(seenWhenHung).toEqual(["Slack token (auth.test)", "Slack signing secret (HTTP mode)"]);
      expect(finished).toBe(false);
      const lines = await run;
      expect(seen).toEqual(lines);
      expect(lines.map((l) => l.check)).toEqual([
        "Slack token (auth.test)",
        "Slack signing secret (HTTP mode)",
        "AWS identity of the bot",
        "AssumeRole prod",
        "CreateImage dry run prod eu-west-1",
        "CreateImage dry run prod us-east-1",
        "AssumeRole other",
      ]);
    });

    it("fails a check that does not answer in time, in plain words, and still runs the later checks", async () => {
      const d = deps();
      const lines = await runDoctor({
        ...d,
        slack: { auth: { test: hangForever }, apps: d.slack.apps, conversations: d.slack.conversations },
        botIdentity: hangForever,
        checkTimeoutMs: TIMEOUT_MS,
      });
      expect(lines[0]).toEqual({
        status: "FAIL",
        check: "Slack token (auth.test)",
        detail: "no answer from Slack within 0.1 s — check network access to slack.com (or SLACK_API_URL)",
      });
      expect(lines[2]).toMatchObject({ status: "FAIL", check: "AWS identity of the bot" });
      expect(lines[2]?.detail).toMatch(
        /^no answer from AWS STS within 0\.1 s — check network access .*AWS_ENDPOINT_URL_STS.*proxy/,
      );
      // The later checks still ran (whether they passed within 0.1 s depends on the machine's load).
      expect(lines.map((l) => l.check)).toEqual(
        expect.arrayContaining(["AssumeRole prod", "AssumeRole other"]),
      );
      expect(aws.calls("AssumeRole").length).toBeGreaterThan(0);
    });

    it("says Slack did not answer when the Web API client gives up first", async () => {
      slack.delayNext("auth.test", 500);
      const client = new webApi.WebClient("xoxb-test-token", {
        slackApiUrl: slack.url,
        retryConfig: { retries: 0 },
        timeout: 20,
      });
      const lines = await runDoctor({ ...deps(), slack: client, checkTimeoutMs: 1_000 });
      expect(lines[0]?.detail).toBe(
        "no answer from Slack (the Web API client stopped waiting) — check network access to slack.com (or SLACK_API_URL)",
      );
    });

    it("names the EC2 endpoint of the region when a dry run does not answer in time", async () => {
      const d = deps();
      const lines = await runDoctor({
        ...d,
        assumeRole: async () => {},
        images: { ...d.images, findInstances: hangForever } as DoctorDeps["images"],
        checkTimeoutMs: TIMEOUT_MS,
      });
      expect(lines.find((l) => l.check === "CreateImage dry run prod us-east-1")?.detail).toMatch(
        /^no answer from AWS EC2 within 0\.1 s — .*ec2\.us-east-1\.amazonaws\.com.*AWS_ENDPOINT_URL_EC2/,
      );
    });

    it("aborts the signal of a check that runs out of time and leaves no timer behind", async () => {
      vi.useFakeTimers();
      try {
        let signal: AbortSignal | undefined;
        const stub: DoctorDeps = {
          config,
          slack: {
            auth: { test: async () => ({ team: "T", user_id: "U" }) },
            apps: { connections: { open: async () => ({}) } },
            conversations: { info: async () => ({ channel: { is_private: true } }) },
          },
          botIdentity: (s) => {
            signal = s;
            return hangForever();
          },
          assumeRole: async () => {},
          images: { findInstances: async () => [] } as unknown as DoctorDeps["images"],
          checkPostgres: hangForever,
          checkEventsQueue: hangForever,
          checkTimeoutMs: 5_000,
        };
        const run = runDoctor(stub);
        await vi.advanceTimersByTimeAsync(5_000);
        const lines = await run;
        expect(signal?.aborted).toBe(true);
        expect(lines.map((l) => l.status)).toEqual([
          "PASS",
          "PASS",
          "FAIL",
          "PASS",
          "SKIP",
          "SKIP",
          "PASS",
          "SKIP",
        ]);
        expect(vi.getTimerCount()).toBe(0);
      } finally {
        vi.useRealTimers();
      }
    });
  });

  describe("Slack app token (Socket Mode)", () => {
    it("passes when Slack opens a Socket Mode connection with the app token, without printing its URL", async () => {
      const socketSlack = await startFakeSlack({
        socketModeUrl: "wss://wss.fake.slack/link/?ticket=secret-ticket",
      });
      try {
        const client = new webApi.WebClient("xoxb-test-token", {
          slackApiUrl: socketSlack.url,
          retryConfig: { retries: 0 },
        });
        const lines = await runDoctor({ ...deps(), config: socketMode("xapp-test-token"), slack: client });
        expect(lines[1]).toEqual({
          status: "PASS",
          check: "Socket Mode app token (apps.connections.open)",
          detail: "Slack accepted the app-level token; Socket Mode can connect",
        });
        expect(socketSlack.callsTo("apps.connections.open")).toHaveLength(1);
        expect(lines.some((l) => l.check.includes("signing secret"))).toBe(false);
        expect(formatDoctor(lines)).not.toContain("ticket");
      } finally {
        await socketSlack.close();
      }
    });

    it("says how to make an app-level token when Slack refuses it", async () => {
      const lines = await runDoctor({ ...deps(), config: socketMode("xapp-1-revoked-0123456789") });
      expect(lines[1]).toMatchObject({
        status: "FAIL",
        check: "Socket Mode app token (apps.connections.open)",
      });
      expect(lines[1]?.detail).toBe(
        "SLACK_APP_TOKEN is not accepted by Slack (invalid_auth): on the app's Basic Information page, under App-Level Tokens, generate a token with the connections:write scope and put it in SLACK_APP_TOKEN",
      );
    });

    it("says it must be the xapp- token when Slack answers not_allowed_token_type", async () => {
      // This fake answers not_allowed_token_type when it has no Socket Mode URL to hand out.
      const lines = await runDoctor({ ...deps(), config: socketMode("xapp-test-token") });
      expect(lines[1]?.status).toBe("FAIL");
      expect(lines[1]?.detail).toMatch(
        /^SLACK_APP_TOKEN must be the app-level token \(xapp-…\), not the bot token/,
      );
    });

    it("does not call apps.connections.open in HTTP mode", async () => {
      const lines = await runDoctor(deps());
      expect(slack.callsTo("apps.connections.open")).toHaveLength(0);
      expect(lines.some((l) => l.check.startsWith("Socket Mode"))).toBe(false);
    });
  });

  describe("Slack signing secret (HTTP mode)", () => {
    const where =
      "copy it from the app's Basic Information page → App Credentials → Signing Secret into SLACK_SIGNING_SECRET";

    it.each([
      ["has too few characters", "8f14e45fceea167a5a36dedd4bea254", "it has 31 characters"],
      ["has uppercase letters", "8F14E45FCEEA167A5A36DEDD4BEA2543", "it has uppercase letters"],
      [
        "has other characters",
        "8f14e45fceea167a5a36dedd4bea254z",
        "it has characters other than 0–9 and a–f",
      ],
      ["has quotes", '"8f14e45fceea167a5a36dedd4bea2543"', "it contains quotes or spaces"],
      ["is a token", "xoxb-1234-5678-abcdefabcdef", "it looks like a token, not the signing secret"],
    ])("fails, without showing it, when the secret %s", async (_, secret, hint) => {
      const lines = await runDoctor({ ...deps(), config: withSigningSecret(secret) });
      expect(lines[1]).toEqual({
        status: "FAIL",
        check: "Slack signing secret (HTTP mode)",
        detail: `SLACK_SIGNING_SECRET does not look like a Slack signing secret (32 lowercase hex characters; ${hint}): ${where}`,
      });
      expect(formatDoctor(lines)).not.toContain(secret);
    });

    it("fails with where to find it when the secret is not set", async () => {
      const lines = await runDoctor({ ...deps(), config: withSigningSecret(undefined) });
      expect(lines[1]?.status).toBe("FAIL");
      expect(lines[1]?.detail).toContain(`SLACK_SIGNING_SECRET is not set`);
      expect(lines[1]?.detail).toContain(where);
    });
  });

  describe("channels in allow rules", () => {
    const PUBLIC_WARNING =
      "channel C0PUBLIC in target prod's allow rule is public: anyone can join it, so the rule grants nothing unless the target says allowPublicChannels: true";

    /** prod lists four channels; other lists the public one too, and allows public channels. */
    function withChannels(): Config {
      const [prod, other] = config.targets as [Config["targets"][number], Config["targets"][number]];
      return {
        ...config,
        targets: [
          { ...prod, allow: { ...prod.allow, channels: ["C0PUBLIC", "C0PRIVATE", "C0HIDDEN", "D0DIRECT"] } },
          { ...other, allow: { ...other.allow, channels: ["C0PUBLIC"] }, allowPublicChannels: true },
        ],
      };
    }

    beforeEach(() => {
      slack.setChannelPrivacy("C0PUBLIC", "public");
      slack.setChannelPrivacy("C0PRIVATE", "private");
      slack.setChannelPrivacy("C0HIDDEN", "not_found");
    });

    it("reports each listed channel after the Slack lines, warning about a public one a target does not allow", async () => {
      const lines = await runDoctor({ ...deps(), config: withChannels() });
      expect(lines.slice(2, 7)).toEqual([
        { status: "WARN", check: "Channel rule prod C0PUBLIC", detail: PUBLIC_WARNING },
        {
          status: "PASS",
          check: "Channel rule prod C0PRIVATE",
          detail: "private: only its members can use the target through this rule",
        },
        {
          status: "FAIL",
          check: "Channel rule prod C0HIDDEN",
          detail:
            "Slack does not show ami-bot channel C0HIDDEN (channel_not_found), so target prod's rule for it grants nothing: if it is a private channel, invite ami-bot to it; otherwise check the id",
        },
        {
          status: "WARN",
          check: "Channel rule prod D0DIRECT",
          detail:
            "channel D0DIRECT in target prod's allow rule is a direct message, not a channel, so the rule grants nothing",
        },
        {
          status: "PASS",
          check: "Channel rule other C0PUBLIC",
          detail: "the target allows public channels, so the rule counts either way",
        },
      ]);
      expect(formatDoctor(lines)).toContain(`WARN  Channel rule prod C0PUBLIC: ${PUBLIC_WARNING}`);
      // One lookup per channel, none for the DM.
      expect(slack.callsTo("conversations.info").map((c) => c.args.channel)).toEqual([
        "C0PUBLIC",
        "C0PRIVATE",
        "C0HIDDEN",
      ]);
    });

    it("prints no channel line when no rule lists a channel", async () => {
      const lines = await runDoctor(deps());
      expect(lines.some((l) => l.check.startsWith("Channel rule"))).toBe(false);
      expect(slack.callsTo("conversations.info")).toEqual([]);
    });

    it("says how to fix missing scopes when Slack answers missing_scope", async () => {
      slack.failNext("conversations.info", { error: "missing_scope" });
      const lines = await runDoctor({ ...deps(), config: withChannels() });
      expect(lines.find((l) => l.check === "Channel rule prod C0PUBLIC")).toEqual({
        status: "FAIL",
        check: "Channel rule prod C0PUBLIC",
        detail:
          "the Slack app lacks the channels:read or groups:read scope: update its scopes from manifest.yml and reinstall it to the workspace",
      });
    });

    it("skips the lookups when Slack refuses the token", async () => {
      const lines = await runDoctor({
        ...deps(),
        config: withChannels(),
        slack: new webApi.WebClient("xoxb-wrong", { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
      });
      expect(lines.find((l) => l.check === "Channel rule prod C0PUBLIC")).toEqual({
        status: "SKIP",
        check: "Channel rule prod C0PUBLIC",
        detail: "needs a working Slack token",
      });
      expect(slack.callsTo("conversations.info")).toEqual([]);
    });

    it("names the channels in what it is about to check", () => {
      expect(describeDoctor(withChannels())).toContain(
        "the signing secret (HTTP mode), whether the 4 channel(s) in allow rules are private, the bot's AWS identity",
      );
    });
  });

  it("never prints a token or secret, even when an error message carries one", async () => {
    const d = deps();
    const leaky = Object.assign(
      new Error("bad request with token xoxb-test-token and 8f14e45fceea167a5a36dedd4bea2543"),
      {
        code: "slack_webapi_platform_error",
        data: { error: "invalid_auth xoxb-test-token" },
      },
    );
    const lines = await runDoctor({
      ...d,
      config: {
        ...socketMode("xapp-1-A0123-4567-abcdef"),
        slack: { ...socketMode("xapp-1-A0123-4567-abcdef").slack, signingSecret: SIGNING_SECRET },
      },
      slack: {
        auth: { test: () => Promise.reject(leaky) },
        apps: { connections: { open: () => Promise.reject(new Error("refused xapp-1-A0123-4567-abcdef")) } },
        conversations: { info: () => Promise.reject(new Error("not asked")) },
      },
    });
    const text = `${describeDoctor(config)}\n${formatDoctor(lines)}`;
    for (const secret of ["xoxb-test-token", "xapp-1-A0123-4567-abcdef", SIGNING_SECRET]) {
      expect(text).not.toContain(secret);
    }
    expect(lines[0]?.status).toBe("FAIL");
    expect(lines[1]?.status).toBe("FAIL");
  });
});
