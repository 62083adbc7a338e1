/** The operators' doctor, run against the local Slack and AWS stand-ins. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EC2Client } from "@aws-sdk/client-ec2";
import { STSClient } from "@aws-sdk/client-sts";
import { webApi } from "@slack/bolt";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getBotIdentity } from "../../src/aws/bot-identity.js";
import { Ec2Images } from "../../src/aws/ec2-images.js";
import { createSessionFactory } from "../../src/aws/scoped-credentials.js";
import { readOnlyPolicy } from "../../src/aws/session-policy.js";
import { type Config, loadConfig } from "../../src/config.js";
import { formatDoctor, runDoctor } from "../../src/doctor.js";
import { type FakeAws, startFakeAws } from "../fakes/fake-aws.js";
import { type FakeSlack, startFakeSlack } from "../fakes/fake-slack.js";

const ROLE = "arn:aws:iam::123456789012:role/ami-bot-target";
const OTHER_ROLE = "arn:aws:iam::210987654321:role/ami-bot-target";
const base = { accessKeyId: "test", secretAccessKey: "test" };

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
      SLACK_SIGNING_SECRET: "s",
      SLACK_API_URL: slack.url,
      AMI_BOT_CONFIG: file,
    });
  });
  afterEach(async () => {
    await slack.close();
    await aws.close();
  });

  function deps() {
    const sessions = createSessionFactory({ endpoint: aws.url, credentials: base });
    return {
      config,
      slack: new webApi.WebClient("xoxb-test-token", { slackApiUrl: slack.url, retryConfig: { retries: 0 } }),
      botIdentity: () =>
        getBotIdentity(new STSClient({ region: "eu-west-1", endpoint: aws.url, credentials: base })),
      assumeRole: async (target: Config["targets"][number], region: string) => {
        const policy = readOnlyPolicy({ partition: target.partition, accountId: target.accountId, region });
        await sessions({ target, region, policy, userId: "ami-bot-doctor", channelId: "none" })();
      },
      images: new Ec2Images({
        sessions,
        clientFactory: (region, credentials) =>
          new EC2Client({ region, credentials, endpoint: aws.url, maxAttempts: 1 }),
      }),
    };
  }

  it("prints a pass, fail or skip line for Slack, the bot's identity, each role and each region", async () => {
    aws.addInstance({ instanceId: "i-0123456789abcdef0", name: "web-1", region: "eu-west-1" });
    const lines = await runDoctor(deps());
    expect(lines.map((l) => [l.status, l.check])).toEqual([
      ["PASS", "Slack token (auth.test)"],
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
    expect(lines[0]).toMatchObject({
      status: "FAIL",
      check: "Slack token (auth.test)",
      detail: "invalid_auth",
    });
  });
});
