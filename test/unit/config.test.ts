import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { ConfigError } from "../../src/errors.js";

const BASE = {
  SLACK_BOT_TOKEN: "xoxb-1-2-3",
  SLACK_SIGNING_SECRET: "s3cret",
};

const ENV_TARGET = {
  AMI_TARGET_NAME: "prod",
  AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot",
  AMI_TARGET_REGIONS: "eu-west-1, us-east-1",
  AMI_TARGET_ALLOW_USERS: "U0ALICE,U0BOB",
  AMI_TARGET_ALLOW_USERGROUPS: "S0OPS",
  AMI_TARGET_ALLOW_CHANNELS: "C0OPS",
};

/** The problems a ConfigError lists, or a failure when loadConfig does not throw one. */
function problemsOf(env: Record<string, string | undefined>): readonly string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error("loadConfig accepted the settings");
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ami-bot-config-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("loadConfig from the environment only", () => {
  it("builds one target from AMI_TARGET_* when no file is given", () => {
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_INSTANCE_TAGS: "ami-bot=yes, env=prod" });
    expect(config.targets).toEqual([
      {
        name: "prod",
        roleArn: "arn:aws:iam::123456789012:role/ami-bot",
        accountId: "123456789012",
        partition: "aws",
        externalId: undefined,
        regions: ["eu-west-1", "us-east-1"],
        allow: { users: ["U0ALICE", "U0BOB"], usergroups: ["S0OPS"], channels: ["C0OPS"] },
        instanceScope: { requiredTags: { "ami-bot": "yes", env: "prod" } },
      },
    ]);
  });

  it("uses the defaults when optional settings are absent", () => {
    const config = loadConfig({
      ...BASE,
      AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot",
      AWS_REGION: "eu-west-1",
    });
    expect(config).toMatchObject({
      slack: { botToken: "xoxb-1-2-3", signingSecret: "s3cret", appToken: undefined, apiUrl: undefined },
      port: 3000,
      databasePath: "./data/ami-bot.db",
      logLevel: "info",
      usergroupCacheMs: 60_000,
      watcher: {
        pollIntervalMs: 15_000,
        slowAfterMs: 4 * 3_600_000,
        slowPollIntervalMs: 5 * 60_000,
        giveUpAfterMs: 24 * 3_600_000,
      },
    });
    expect(config.targets[0]).toMatchObject({ name: "default", regions: ["eu-west-1"] });
    expect(config.targets[0]?.allow).toEqual({ users: [], usergroups: [], channels: [] });
  });

  it("falls back to AWS_REGION when AMI_TARGET_REGIONS is set but empty", () => {
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_REGIONS: "", AWS_REGION: "eu-north-1" });
    expect(config.targets[0]?.regions).toEqual(["eu-north-1"]);
  });

  it("reads durations when they carry a unit", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_POLL_INTERVAL: "30s",
      AMI_SLOW_AFTER: "4h",
      AMI_SLOW_POLL_INTERVAL: "2.5m",
      AMI_GIVE_UP_AFTER: "1500ms",
    });
    expect(config.watcher).toEqual({
      pollIntervalMs: 30_000,
      slowAfterMs: 14_400_000,
      slowPollIntervalMs: 150_000,
      giveUpAfterMs: 1_500,
    });
  });

  it("refuses a duration when it has no unit", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_POLL_INTERVAL: "30" })).toEqual([
      expect.stringMatching(/^AMI_POLL_INTERVAL: use a number with ms, s, m or h/),
    ]);
  });

  it("does not need the signing secret when socket mode has an app token", () => {
    const config = loadConfig({ SLACK_BOT_TOKEN: "xoxb-1", SLACK_APP_TOKEN: "xapp-1", ...ENV_TARGET });
    expect(config.slack).toMatchObject({ appToken: "xapp-1", signingSecret: undefined });
  });

  it("needs the signing secret when there is no app token", () => {
    expect(problemsOf({ SLACK_BOT_TOKEN: "xoxb-1", ...ENV_TARGET })).toEqual([
      expect.stringMatching(/^SLACK_SIGNING_SECRET is not set/),
    ]);
  });

  it("lists every problem in one ConfigError when several settings are wrong", () => {
    const problems = problemsOf({ ...ENV_TARGET, AMI_TARGET_ROLE_ARN: "arn:aws:iam::12345:user/me" });
    expect(problems).toHaveLength(3);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^SLACK_BOT_TOKEN is not set/),
        expect.stringMatching(/^SLACK_SIGNING_SECRET is not set/),
        expect.stringMatching(/^AMI_TARGET_ROLE_ARN: must look like arn:aws:iam::123456789012:role\/name/),
      ]),
    );
  });

  it("puts every problem in the error message when it throws", () => {
    expect(() => loadConfig({ ...ENV_TARGET, SLACK_BOT_TOKEN: "xoxp-user" })).toThrow(
      /SLACK_BOT_TOKEN does not look right[\s\S]*SLACK_SIGNING_SECRET is not set/,
    );
  });

  it("refuses to start when no target is configured", () => {
    expect(problemsOf(BASE)).toEqual([expect.stringMatching(/^no targets/)]);
  });

  it("refuses bad ports, app tokens, regions and allow entries when they do not look right", () => {
    const problems = problemsOf({
      ...BASE,
      ...ENV_TARGET,
      PORT: "http",
      SLACK_APP_TOKEN: "xoxb-wrong",
      AMI_TARGET_REGIONS: "Ireland",
      AMI_TARGET_ALLOW_USERS: "alice",
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        "PORT must be a port number",
        "SLACK_APP_TOKEN does not look right (xapp-…)",
        expect.stringMatching(/^AMI_TARGET_REGIONS: must be an AWS region/),
        expect.stringMatching(/^AMI_TARGET_ALLOW_USERS: must be a Slack user id/),
      ]),
    );
  });

  it("returns a frozen configuration when the settings are right", () => {
    expect(Object.isFrozen(loadConfig({ ...BASE, ...ENV_TARGET }))).toBe(true);
  });
});

describe("loadConfig with a file", () => {
  it("reads targets and watcher settings from YAML when AMI_BOT_CONFIG names a .yaml file", () => {
    const path = writeConfig(
      "ami-bot.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    externalId: ext-123",
        "    regions: [eu-west-1, eu-west-1, us-east-1]",
        "    allow:",
        "      usergroups: [S0OPS]",
        "    instanceTags:",
        "      ami-bot: enabled",
        "  - name: gov",
        "    roleArn: arn:aws-us-gov:iam::444455556666:role/ami-bot",
        "    regions: [us-gov-west-1]",
        "    allow:",
        '      users: ["*"]',
        "watcher:",
        "  pollInterval: 20s",
        "  slowAfter: 2h",
        "  giveUpAfter: 90",
      ].join("\n"),
    );
    const config = loadConfig({ ...BASE, AMI_BOT_CONFIG: path });
    expect(config.targets.map((t) => [t.name, t.accountId, t.partition, t.regions])).toEqual([
      ["prod", "111122223333", "aws", ["eu-west-1", "us-east-1"]],
      ["gov", "444455556666", "aws-us-gov", ["us-gov-west-1"]],
    ]);
    expect(config.targets[0]).toMatchObject({
      externalId: "ext-123",
      allow: { users: [], usergroups: ["S0OPS"], channels: [] },
      instanceScope: { requiredTags: { "ami-bot": "enabled" } },
    });
    expect(config.watcher).toEqual({
      pollIntervalMs: 20_000,
      slowAfterMs: 7_200_000,
      slowPollIntervalMs: 300_000,
      giveUpAfterMs: 90_000,
    });
  });

  it("reads JSON when AMI_BOT_CONFIG names a .json file", () => {
    const path = writeConfig(
      "ami-bot.json",
      JSON.stringify({
        targets: [
          {
            name: "dev",
            roleArn: "arn:aws:iam::123456789012:role/path/ami-bot",
            regions: ["eu-central-1"],
            allow: { channels: ["C0DEV"] },
          },
        ],
      }),
    );
    const config = loadConfig({ ...BASE, AMI_BOT_CONFIG: path });
    expect(config.targets).toHaveLength(1);
    expect(config.targets[0]).toMatchObject({
      name: "dev",
      accountId: "123456789012",
      regions: ["eu-central-1"],
      allow: { channels: ["C0DEV"] },
    });
  });

  it("prefers the file when both a file and AMI_TARGET_* are set", () => {
    const path = writeConfig(
      "t.json",
      JSON.stringify({
        targets: [{ name: "from-file", roleArn: "arn:aws:iam::123456789012:role/x", regions: ["eu-west-1"] }],
      }),
    );
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_BOT_CONFIG: path });
    expect(config.targets.map((t) => t.name)).toEqual(["from-file"]);
  });

  it("lists the file's problems with their paths when the file is wrong", () => {
    const path = writeConfig(
      "bad.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    regions: []",
        "  - name: prod",
        "    roleArn: not-an-arn",
        "    regions: [eu-west-1]",
      ].join("\n"),
    );
    const problems = problemsOf({ ...BASE, AMI_BOT_CONFIG: path });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^config targets\.0\.regions: /),
        expect.stringMatching(/^config targets\.1\.roleArn: must look like/),
      ]),
    );
  });

  it("refuses a file when two targets share a name", () => {
    const path = writeConfig(
      "dup.json",
      JSON.stringify({
        targets: [
          { name: "prod", roleArn: "arn:aws:iam::123456789012:role/a", regions: ["eu-west-1"] },
          { name: "prod", roleArn: "arn:aws:iam::123456789012:role/b", regions: ["us-east-1"] },
        ],
      }),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual(["target prod is listed twice"]);
  });

  it("reports the missing file together with the other problems when the path is wrong", () => {
    const problems = problemsOf({ SLACK_SIGNING_SECRET: "s", AMI_BOT_CONFIG: join(dir, "missing.yaml") });
    expect(problems).toEqual([
      expect.stringMatching(/^SLACK_BOT_TOKEN is not set/),
      expect.stringMatching(/^AMI_BOT_CONFIG: cannot read .*missing\.yaml/),
    ]);
  });

  it("refuses a file when it lists no targets", () => {
    const path = writeConfig("empty.yaml", "targets: []\n");
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      expect.stringMatching(/list at least one target/),
    ]);
  });
});
