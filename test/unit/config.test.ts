import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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
      aws: { connectTimeoutMs: 3_000, requestTimeoutMs: 20_000 },
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

  it("names both Slack modes when neither the app token nor the signing secret is set", () => {
    expect(problemsOf({ SLACK_BOT_TOKEN: "xoxb-1", ...ENV_TARGET })).toEqual([
      "SLACK_APP_TOKEN (Socket Mode, the manifest's default) or SLACK_SIGNING_SECRET (HTTP mode) must be set",
    ]);
  });

  it("refuses the placeholder tokens of .env.example before calling Slack", () => {
    expect(
      problemsOf({
        ...ENV_TARGET,
        SLACK_BOT_TOKEN: "xoxb-your-bot-token",
        SLACK_APP_TOKEN: "xapp-your-app-token",
      }),
    ).toEqual([
      "SLACK_BOT_TOKEN is still the placeholder from .env.example; paste the bot token (xoxb-…) from the app's OAuth & Permissions page",
      "SLACK_APP_TOKEN is still the placeholder from .env.example; paste the app-level token (xapp-…) from the app's Basic Information page, under App-Level Tokens",
    ]);
  });

  it("refuses an obvious placeholder token when it is only dots or x's after the prefix", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, SLACK_BOT_TOKEN: "xoxb-..." })).toEqual([
      expect.stringMatching(/^SLACK_BOT_TOKEN is still the placeholder from \.env\.example; /),
    ]);
    expect(problemsOf({ ...ENV_TARGET, SLACK_BOT_TOKEN: "xoxb-1", SLACK_APP_TOKEN: "xapp-xxxx" })).toEqual([
      expect.stringMatching(/^SLACK_APP_TOKEN is still the placeholder from \.env\.example; /),
    ]);
  });

  it("lists every problem in one ConfigError when several settings are wrong", () => {
    const problems = problemsOf({ ...ENV_TARGET, AMI_TARGET_ROLE_ARN: "arn:aws:iam::12345:user/me" });
    expect(problems).toHaveLength(3);
    expect(problems).toEqual(
      expect.arrayContaining([
        "SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)",
        "SLACK_APP_TOKEN (Socket Mode, the manifest's default) or SLACK_SIGNING_SECRET (HTTP mode) must be set",
        expect.stringMatching(/^AMI_TARGET_ROLE_ARN: must look like arn:aws:iam::123456789012:role\/name/),
      ]),
    );
  });

  it("puts every problem in the error message when it throws", () => {
    expect(() => loadConfig({ ...ENV_TARGET, SLACK_BOT_TOKEN: "xoxp-user" })).toThrow(
      /SLACK_BOT_TOKEN does not look right[\s\S]*SLACK_APP_TOKEN \(Socket Mode, the manifest's default\) or SLACK_SIGNING_SECRET/,
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

  it("refuses PORT when it is set but empty", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, PORT: "" })).toEqual([
      "PORT is empty; set a port number such as 3000, or remove the line",
    ]);
  });

  it("accepts PORT=0 when a test asks for any free port", () => {
    expect(loadConfig({ ...BASE, ...ENV_TARGET, PORT: "0" }).port).toBe(0);
  });

  it("reads the AWS call timeouts when they carry a unit", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_AWS_CONNECT_TIMEOUT: "500ms",
      AMI_AWS_REQUEST_TIMEOUT: "1m",
    });
    expect(config.aws).toEqual({ connectTimeoutMs: 500, requestTimeoutMs: 60_000 });
  });

  it("names the timeout variable when its value is wrong", () => {
    expect(
      problemsOf({ ...BASE, ...ENV_TARGET, AMI_AWS_CONNECT_TIMEOUT: "3", AMI_AWS_REQUEST_TIMEOUT: "0s" }),
    ).toEqual([
      "AMI_AWS_CONNECT_TIMEOUT: use a number with ms, s, m or h",
      "AMI_AWS_REQUEST_TIMEOUT: must be more than zero",
    ]);
  });

  it("refuses a zero watcher duration by its variable", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_SLOW_AFTER: "0h" })).toEqual([
      "AMI_SLOW_AFTER: must be more than zero",
    ]);
  });

  it("refuses a region that AWS does not have, naming it", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_REGIONS: "eu-west-1,eu-fake-1" })).toEqual([
      'AMI_TARGET_REGIONS: "eu-fake-1" is not an AWS region',
    ]);
  });

  it("names AWS_REGION when the region came from it", () => {
    expect(
      problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_REGIONS: undefined, AWS_REGION: "eu-fake-1" }),
    ).toEqual(['AWS_REGION: "eu-fake-1" is not an AWS region']);
  });

  it("names the partition when the region belongs to another one", () => {
    const cn = { AMI_TARGET_ROLE_ARN: "arn:aws-cn:iam::123456789012:role/ami-bot" };
    expect(problemsOf({ ...BASE, ...ENV_TARGET, ...cn, AMI_TARGET_REGIONS: "eu-west-1" })).toEqual([
      'AMI_TARGET_REGIONS: "eu-west-1" is not an AWS region in partition aws-cn',
    ]);
    expect(
      loadConfig({ ...BASE, ...ENV_TARGET, ...cn, AMI_TARGET_REGIONS: "cn-north-1" }).targets[0],
    ).toMatchObject({ partition: "aws-cn", regions: ["cn-north-1"] });
  });

  it("says where regions come from when neither AMI_TARGET_REGIONS nor AWS_REGION is set", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_REGIONS: "" })).toEqual([
      "AMI_TARGET_REGIONS is not set (nor AWS_REGION): list the regions to image in, e.g. eu-west-1",
    ]);
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

  it("refuses unknown keys at every level and names the key meant", () => {
    const path = writeConfig(
      "typos.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    regions: [eu-west-1]",
        "    instanceTag:",
        "      ami-bot: enabled",
        "    allow:",
        "      user: [U0ALICE]",
        "watcher:",
        "  pollIntervall: 20s",
        "target: []",
      ].join("\n"),
    );
    const problems = problemsOf({ ...BASE, AMI_BOT_CONFIG: path });
    expect(problems).toHaveLength(4);
    expect(problems).toEqual(
      expect.arrayContaining([
        'config target: unknown key; did you mean "targets"?',
        'config targets.0.instanceTag: unknown key; did you mean "instanceTags"?',
        'config targets.0.allow.user: unknown key; did you mean "users"?',
        'config watcher.pollIntervall: unknown key; did you mean "pollInterval"?',
      ]),
    );
  });

  it("lists the keys allowed when an unknown key is like none of them", () => {
    const path = writeConfig(
      "odd.json",
      JSON.stringify({
        targets: [
          { name: "p", roleArn: "arn:aws:iam::123456789012:role/x", regions: ["eu-west-1"], owner: "me" },
        ],
      }),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.owner: unknown key; the keys here are name, roleArn, externalId, regions, allow, instanceTags",
    ]);
  });

  it("suggests a key when it differs only in case or by a short part", () => {
    const path = writeConfig(
      "case.json",
      JSON.stringify({
        targets: [
          { name: "p", RoleARN: "arn:aws:iam::123456789012:role/x", regions: ["eu-west-1"], tags: {} },
        ],
      }),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual(
      expect.arrayContaining([
        'config targets.0.RoleARN: unknown key; did you mean "roleArn"?',
        'config targets.0.tags: unknown key; did you mean "instanceTags"?',
      ]),
    );
  });

  it("refuses a region that AWS does not have, with its place in the file and the partition", () => {
    const path = writeConfig(
      "fake-region.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    regions: [eu-west-1, eu-fake-1]",
      ].join("\n"),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      'config targets.0.regions.1: "eu-fake-1" is not an AWS region in partition aws',
    ]);
  });

  it("checks regions against the role's partition when the role is in aws-cn", () => {
    const cnTarget = (regions: string[]) =>
      writeConfig(
        "cn.json",
        JSON.stringify({
          targets: [{ name: "cn", roleArn: "arn:aws-cn:iam::123456789012:role/x", regions }],
        }),
      );
    expect(loadConfig({ ...BASE, AMI_BOT_CONFIG: cnTarget(["cn-north-1"]) }).targets[0]?.regions).toEqual([
      "cn-north-1",
    ]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: cnTarget(["cn-north-1", "eu-west-1"]) })).toEqual([
      'config targets.0.regions.1: "eu-west-1" is not an AWS region in partition aws-cn',
    ]);
  });

  it("reports a bad region together with an unknown key of the same target", () => {
    const path = writeConfig(
      "both.json",
      JSON.stringify({
        targets: [
          { name: "p", roleArn: "arn:aws:iam::123456789012:role/x", regions: ["eu-fake-1"], region: "x" },
        ],
      }),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual(
      expect.arrayContaining([
        'config targets.0.region: unknown key; did you mean "regions"?',
        'config targets.0.regions.0: "eu-fake-1" is not an AWS region in partition aws',
      ]),
    );
  });

  it("refuses a zero duration in the file", () => {
    const path = writeConfig(
      "zero.yaml",
      [
        "targets:",
        "  - name: p",
        "    roleArn: arn:aws:iam::123456789012:role/x",
        "    regions: [eu-west-1]",
        "watcher:",
        "  pollInterval: 0",
      ].join("\n"),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config watcher.pollInterval: must be more than zero",
    ]);
  });

  it("accepts config.example.yml as shipped", () => {
    const config = loadConfig({
      ...BASE,
      AMI_BOT_CONFIG: resolve(import.meta.dirname, "../../config.example.yml"),
    });
    expect(config.targets.map((t) => t.name)).toEqual(["prod", "staging"]);
  });

  it("refuses a file when it lists no targets", () => {
    const path = writeConfig("empty.yaml", "targets: []\n");
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      expect.stringMatching(/list at least one target/),
    ]);
  });
});
