import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { problemsOf } from "../support/config-problems.js";

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

/** A file target with every required field, for tests about one other field. */
const FILE_TARGET = {
  name: "prod",
  roleArn: "arn:aws:iam::123456789012:role/ami-bot",
  externalId: "ext-123",
  regions: ["eu-west-1"],
};

function writeTargets(targets: readonly object[]): string {
  return writeConfig("targets.json", JSON.stringify({ targets }));
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
        reboot: "never",
        tagKeys: undefined,
        jobsPerHour: 10,
        allowGuests: false,
        allowPublicChannels: false,
        approval: undefined,
        after: { copyTo: [], shareWith: [], keep: undefined },
        admins: [],
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
    expect(config.crashAt).toBeUndefined();
    expect(config.targets[0]).toMatchObject({
      name: "default",
      regions: ["eu-west-1"],
      externalId: undefined,
      reboot: "never",
      tagKeys: undefined,
      jobsPerHour: 10,
      allowGuests: false,
      allowPublicChannels: false,
    });
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
        "    externalId: ext-456",
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
            externalId: "ext-dev",
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
      externalId: "ext-dev",
      regions: ["eu-central-1"],
      allow: { channels: ["C0DEV"] },
    });
  });

  it("prefers the file when both a file and AMI_TARGET_* are set", () => {
    const path = writeConfig(
      "t.json",
      JSON.stringify({
        targets: [
          {
            name: "from-file",
            roleArn: "arn:aws:iam::123456789012:role/x",
            externalId: "ext-1",
            regions: ["eu-west-1"],
          },
        ],
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
        "    externalId: ext-1",
        "    regions: []",
        "  - name: prod",
        "    roleArn: not-an-arn",
        "    externalId: ext-2",
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
          {
            name: "prod",
            roleArn: "arn:aws:iam::123456789012:role/a",
            externalId: "e-a",
            regions: ["eu-west-1"],
          },
          {
            name: "prod",
            roleArn: "arn:aws:iam::123456789012:role/b",
            externalId: "e-b",
            regions: ["us-east-1"],
          },
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
        "    externalId: ext-1",
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
          {
            name: "p",
            roleArn: "arn:aws:iam::123456789012:role/x",
            externalId: "ext-1",
            regions: ["eu-west-1"],
            owner: "me",
          },
        ],
      }),
    );
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.owner: unknown key; the keys here are name, roleArn, externalId, regions, allow, instanceTags, reboot, tagKeys, jobsPerHour, allowGuests, allowPublicChannels, approval, after, admins",
    ]);
  });

  it("suggests a key when it differs only in case or by a short part", () => {
    const path = writeConfig(
      "case.json",
      JSON.stringify({
        targets: [
          {
            name: "p",
            RoleARN: "arn:aws:iam::123456789012:role/x",
            externalId: "ext-1",
            regions: ["eu-west-1"],
            tags: {},
          },
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
        "    externalId: ext-1",
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
          targets: [
            { name: "cn", roleArn: "arn:aws-cn:iam::123456789012:role/x", externalId: "ext-1", regions },
          ],
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
          {
            name: "p",
            roleArn: "arn:aws:iam::123456789012:role/x",
            externalId: "ext-1",
            regions: ["eu-fake-1"],
            region: "x",
          },
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
        "    externalId: ext-1",
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

describe("loadConfig: a target's reboot, tag key, rate and audience settings from the environment", () => {
  it("reads each setting when its AMI_TARGET_* variable is set", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_REBOOT: "ask",
      AMI_TARGET_TAG_KEYS: "team, app:*",
      AMI_TARGET_JOBS_PER_HOUR: "25",
      AMI_TARGET_ALLOW_GUESTS: "true",
      AMI_TARGET_ALLOW_PUBLIC_CHANNELS: "true",
    });
    expect(config.targets[0]).toMatchObject({
      reboot: "ask",
      tagKeys: ["team", "app:*"],
      jobsPerHour: 25,
      allowGuests: true,
      allowPublicChannels: true,
    });
  });

  it("keeps the defaults when the variables are set but empty", () => {
    // An empty line in .env (AMI_TARGET_REBOOT=) means "not set", not an invalid value.
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_REBOOT: "",
      AMI_TARGET_TAG_KEYS: " ",
      AMI_TARGET_JOBS_PER_HOUR: "",
      AMI_TARGET_ALLOW_GUESTS: "",
      AMI_TARGET_ALLOW_PUBLIC_CHANNELS: "",
    });
    expect(config.targets[0]).toMatchObject({
      reboot: "never",
      tagKeys: undefined,
      jobsPerHour: 10,
      allowGuests: false,
      allowPublicChannels: false,
    });
  });

  it("reads false as false when the flags say so", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_ALLOW_GUESTS: "false",
      AMI_TARGET_ALLOW_PUBLIC_CHANNELS: "false",
    });
    expect(config.targets[0]).toMatchObject({ allowGuests: false, allowPublicChannels: false });
  });

  it("refuses a reboot policy other than never or ask", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_REBOOT: "always" })).toEqual([
      "AMI_TARGET_REBOOT: must be never or ask",
    ]);
  });

  it("refuses flags other than true and false, naming each variable", () => {
    // Zod's generic message for a failed union; what matters here is that each variable is named.
    expect(
      problemsOf({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_ALLOW_GUESTS: "yes",
        AMI_TARGET_ALLOW_PUBLIC_CHANNELS: "TRUE",
      }),
    ).toEqual([
      "AMI_TARGET_ALLOW_GUESTS: must be true or false",
      "AMI_TARGET_ALLOW_PUBLIC_CHANNELS: must be true or false",
    ]);
  });

  it.each([
    ["1", 1],
    ["1000", 1000],
  ])("accepts AMI_TARGET_JOBS_PER_HOUR=%s at the edge of the range", (value, expected) => {
    expect(
      loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_JOBS_PER_HOUR: value }).targets[0]?.jobsPerHour,
    ).toBe(expected);
  });

  it.each([
    ["0", "must be at least 1"],
    ["1001", "must be at most 1000"],
    ["1.5", "must be a whole number"],
  ])("refuses AMI_TARGET_JOBS_PER_HOUR=%s", (value, message) => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_JOBS_PER_HOUR: value })).toEqual([
      `AMI_TARGET_JOBS_PER_HOUR: ${message}`,
    ]);
  });

  it("accepts 15 tag keys and refuses 16", () => {
    const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);
    expect(
      loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: keys(15).join(",") }).targets[0]?.tagKeys,
    ).toEqual(keys(15));
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: keys(16).join(",") })).toEqual([
      "AMI_TARGET_TAG_KEYS: at most 15 keys",
    ]);
  });

  it("refuses tags and keys that would make the session policy longer than AWS's 2,048 characters", () => {
    const longTags = Array.from({ length: 5 }, (_, i) => `${"k".repeat(120)}${i}=${"v".repeat(250)}`).join(
      ",",
    );
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_INSTANCE_TAGS: longTags })).toEqual([
      expect.stringMatching(
        /^AMI_TARGET_INSTANCE_TAGS \/ AMI_TARGET_TAG_KEYS: instanceTags and tagKeys make the session policy \d{4} characters; AWS allows 2048\. Use fewer or shorter tags or keys\.$/,
      ),
    ]);
  });

  it("refuses a tag key list when it holds only commas", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: " , " })).toEqual([
      "AMI_TARGET_TAG_KEYS: list at least one key, or leave tagKeys out to allow any key",
    ]);
  });

  it.each(["aws:*", "AWS:cost", "ami-bot:job-id", "Ami-Bot:*", "Name"])(
    "refuses to grant the reserved tag key %j",
    (key) => {
      expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: `team,${key}` })).toEqual([
        "AMI_TARGET_TAG_KEYS: aws:*, ami-bot:*, Name and * cannot be granted (reserved, or everything)",
      ]);
    },
  );

  it("refuses a bare * because it would grant every key", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: "*" })).toEqual([
      "AMI_TARGET_TAG_KEYS: aws:*, ami-bot:*, Name and * cannot be granted (reserved, or everything)",
    ]);
  });

  it.each(["a*", "ami*", "N*", "aws*"])("refuses the prefix %j, which would cover reserved keys", (key) => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: key })).toEqual([
      "AMI_TARGET_TAG_KEYS: aws:*, ami-bot:*, Name and * cannot be granted (reserved, or everything)",
    ]);
  });

  it("accepts an exact key of EC2's full 128 characters, and a 128-character prefix", () => {
    const key = "k".repeat(128);
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: `${key},${"p".repeat(127)}*` });
    expect(config.targets[0]?.tagKeys).toEqual([key, `${"p".repeat(127)}*`]);
  });

  it.each(['te"am', "x*y", "team!"])(
    "refuses the tag key %j because it is not an EC2 key or prefix",
    (key) => {
      expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: key })).toEqual([
        "AMI_TARGET_TAG_KEYS: a tag key (team) or a prefix ending in * (app:*)",
      ]);
    },
  );

  it("accepts a lower-case name key when only Name is reserved", () => {
    expect(loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_TAG_KEYS: "name" }).targets[0]?.tagKeys).toEqual([
      "name",
    ]);
  });
});

describe("loadConfig: instance tags and the ExternalId", () => {
  const tags = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v${i}`).join(",");

  it("accepts 5 instance tags and refuses 6", () => {
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_INSTANCE_TAGS: tags(5) });
    expect(Object.keys(config.targets[0]?.instanceScope.requiredTags ?? {})).toHaveLength(5);
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_INSTANCE_TAGS: tags(6) })).toEqual([
      "AMI_TARGET_INSTANCE_TAGS: at most 5 tags",
    ]);
  });

  it("accepts every EC2 tag character in instance tags", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_INSTANCE_TAGS: "a_b .:/+@-k=v_ .:/=+@-1",
    });
    expect(config.targets[0]?.instanceScope.requiredTags).toEqual({ "a_b .:/+@-k": "v_ .:/=+@-1" });
  });

  it("refuses a quote in an instance tag value", () => {
    // Values go into the session policy; a quote there could change its meaning.
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_INSTANCE_TAGS: "owner=it's" })).toEqual([
      "AMI_TARGET_INSTANCE_TAGS: tag values use letters, digits, spaces and _ . : / = + @ -",
    ]);
  });

  it("refuses a quote in an instance tag key, naming the key in the file", () => {
    const path = writeTargets([{ ...FILE_TARGET, instanceTags: { 'own"er': "me" } }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      'config targets.0.instanceTags: tag key "own"er": 1–128 letters, digits, spaces and _ . : / = + @ -',
    ]);
  });

  it("refuses 6 instance tags in a file", () => {
    const instanceTags = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`k${i}`, "v"]));
    const path = writeTargets([{ ...FILE_TARGET, instanceTags }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.instanceTags: at most 5 tags",
    ]);
  });

  it.each(["ab", "a".repeat(1224), "Az09_+=,.@:/-"])("accepts the ExternalId %j", (externalId) => {
    const config = loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_EXTERNAL_ID: externalId });
    expect(config.targets[0]?.externalId).toBe(externalId);
  });

  it.each(["a", "a".repeat(1225), "has space", 'quo"te', "semi;colon"])(
    "refuses the ExternalId %j because AWS's pattern does not match it",
    (externalId) => {
      expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_EXTERNAL_ID: externalId })).toEqual([
        "AMI_TARGET_EXTERNAL_ID: must be 2–1,224 characters of letters, digits and + = , . @ : / - _",
      ]);
    },
  );

  it("requires an ExternalId for each target in a file, naming the target's place", () => {
    const path = writeTargets([FILE_TARGET, { ...FILE_TARGET, name: "staging", externalId: undefined }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.1.externalId: required; set the ExternalId the target role's trust policy expects",
    ]);
  });

  it("reports a missing ExternalId in the same round as the file's other problems", () => {
    const path = writeTargets([{ ...FILE_TARGET, externalId: undefined, regions: ["eu-nowhere-9"] }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.externalId: required; set the ExternalId the target role's trust policy expects",
      expect.stringMatching(/^config targets\.0\.regions\.0: "eu-nowhere-9" is not an AWS region/),
    ]);
  });

  it("refuses an ExternalId in a file when it does not match AWS's pattern", () => {
    const path = writeTargets([{ ...FILE_TARGET, externalId: "x" }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.externalId: must be 2–1,224 characters of letters, digits and + = , . @ : / - _",
    ]);
  });
});

describe("loadConfig: a target's reboot, tag key, rate and audience settings in a file", () => {
  it("reads each setting and fills in the defaults for a target that leaves them out", () => {
    const path = writeTargets([
      {
        ...FILE_TARGET,
        reboot: "ask",
        tagKeys: ["team", "app:*"],
        jobsPerHour: 3,
        allowGuests: true,
        // The string form of the environment is accepted in a file too.
        allowPublicChannels: "true",
      },
      { ...FILE_TARGET, name: "staging" },
    ]);
    const config = loadConfig({ ...BASE, AMI_BOT_CONFIG: path });
    const policies = config.targets.map((t) => ({
      name: t.name,
      reboot: t.reboot,
      tagKeys: t.tagKeys,
      jobsPerHour: t.jobsPerHour,
      allowGuests: t.allowGuests,
      allowPublicChannels: t.allowPublicChannels,
    }));
    expect(policies).toEqual([
      {
        name: "prod",
        reboot: "ask",
        tagKeys: ["team", "app:*"],
        jobsPerHour: 3,
        allowGuests: true,
        allowPublicChannels: true,
      },
      {
        name: "staging",
        reboot: "never",
        tagKeys: undefined,
        jobsPerHour: 10,
        allowGuests: false,
        allowPublicChannels: false,
      },
    ]);
  });

  it("lists every wrong setting with its place in the file", () => {
    const path = writeTargets([
      {
        ...FILE_TARGET,
        reboot: "sometimes",
        tagKeys: [],
        jobsPerHour: 2.5,
        allowGuests: "yes",
        allowPublicChannels: 1,
      },
    ]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.reboot: must be never or ask",
      "config targets.0.tagKeys: list at least one key, or leave tagKeys out to allow any key",
      "config targets.0.jobsPerHour: must be a whole number",
      "config targets.0.allowGuests: must be true or false",
      "config targets.0.allowPublicChannels: must be true or false",
    ]);
  });

  it("names the entry of tagKeys that cannot be granted", () => {
    const path = writeTargets([{ ...FILE_TARGET, tagKeys: ["team", "aws:*"] }]);
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.tagKeys.1: aws:*, ami-bot:*, Name and * cannot be granted (reserved, or everything)",
    ]);
  });
});

describe("loadConfig: SLACK_API_URL", () => {
  it.each(["http://127.0.0.1:1234/api/", "http://localhost", "http://[::1]:80", "https://slack.example"])(
    "accepts %s because it is https or stays on this machine",
    (url) => {
      expect(loadConfig({ ...BASE, ...ENV_TARGET, SLACK_API_URL: url }).slack.apiUrl).toBe(url);
    },
  );

  it.each(["http://slack.example", "http://127.0.0.1.evil.example", "ftp://127.0.0.1/api/"])(
    "refuses %s because the bot token would leave the machine in clear text",
    (url) => {
      expect(problemsOf({ ...BASE, ...ENV_TARGET, SLACK_API_URL: url })).toEqual([
        "SLACK_API_URL: must be https:// (plain http only to a loopback address such as 127.0.0.1), so the bot token is never sent in clear text",
      ]);
    },
  );

  it("refuses a value when it is not a URL", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, SLACK_API_URL: "not a url" })).toEqual([
      "SLACK_API_URL: not a URL (Slack's is https://slack.com/api/)",
    ]);
  });
});

describe("loadConfig: AMI_BOT_CRASH_AT", () => {
  it("arms the crash hook when NODE_ENV is test", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      NODE_ENV: "test",
      AMI_BOT_CRASH_AT: " after-create ",
    });
    expect(config.crashAt).toBe("after-create");
  });

  it.each([
    ["production", "production"],
    ["unset", undefined],
  ])("ignores it when NODE_ENV is %s, so it cannot kill a real bot", (_label, nodeEnv) => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      NODE_ENV: nodeEnv,
      AMI_BOT_CRASH_AT: "after-create",
    });
    expect(config.crashAt).toBeUndefined();
  });
});

describe("loadConfig: a target's approval rule in a file", () => {
  const HOURS = 3_600_000;
  const approvalOf = (approval: unknown) => writeTargets([{ ...FILE_TARGET, approval }]);

  it("reads approvers and expiresAfter, and leaves approval undefined for a target without it", () => {
    const path = writeConfig(
      "approval.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    externalId: ext-1",
        "    regions: [eu-west-1]",
        "    approval:",
        "      approvers:",
        "        users: [U0ALICE, W0BOB]",
        "        usergroups: [S0LEADS]",
        "      expiresAfter: 30m",
        "  - name: staging",
        "    roleArn: arn:aws:iam::111122223333:role/ami-bot",
        "    externalId: ext-2",
        "    regions: [eu-west-1]",
      ].join("\n"),
    );
    const config = loadConfig({ ...BASE, AMI_BOT_CONFIG: path });
    expect(config.targets.map((t) => t.approval)).toEqual([
      {
        approvers: { users: ["U0ALICE", "W0BOB"], usergroups: ["S0LEADS"] },
        expiresAfterMs: 30 * 60_000,
      },
      undefined,
    ]);
  });

  it("waits 4h for a decision when expiresAfter is left out", () => {
    const path = approvalOf({ approvers: { usergroups: ["S0LEADS"] } });
    expect(loadConfig({ ...BASE, AMI_BOT_CONFIG: path }).targets[0]?.approval).toEqual({
      approvers: { users: [], usergroups: ["S0LEADS"] },
      expiresAfterMs: 4 * HOURS,
    });
  });

  it.each([
    ["5m", 5 * 60_000],
    ["168h", 168 * HOURS],
    [300, 5 * 60_000],
  ])("accepts expiresAfter %j at the edge of the range", (expiresAfter, ms) => {
    const path = approvalOf({ approvers: { users: ["U0ALICE"] }, expiresAfter });
    expect(loadConfig({ ...BASE, AMI_BOT_CONFIG: path }).targets[0]?.approval?.expiresAfterMs).toBe(ms);
  });

  it.each(["4.9m", "299s", "168.5h", 299])("refuses expiresAfter %j, naming the limits", (expiresAfter) => {
    const path = approvalOf({ approvers: { users: ["U0ALICE"] }, expiresAfter });
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.approval.expiresAfter: must be at least 5m and at most 168h (7 days)",
    ]);
  });

  it.each([{}, { approvers: {} }, { approvers: { users: [], usergroups: [] } }])(
    "refuses %j because nobody could approve",
    (approval) => {
      expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: approvalOf(approval) })).toEqual([
        "config targets.0.approval.approvers: list at least one approver in users (U…/W…) or usergroups (S…); without one, every job would wait until it expires",
      ]);
    },
  );

  it("refuses * among the approving users because everyone approving defeats the rule", () => {
    const path = approvalOf({ approvers: { users: ["U0ALICE", "*"] } });
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.approval.approvers.users.1: * is not allowed among approvers: if everyone may approve, the two-person rule guards nothing; list user ids (U…/W…)",
    ]);
  });

  it("caps the approvers named in every job's thread, pointing to user groups for more", () => {
    const users = Array.from({ length: 21 }, (_, i) => `U0APPROVER${String(i).padStart(2, "0")}`);
    const groups = Array.from({ length: 6 }, (_, i) => `S0GROUP${i}`);
    const path = approvalOf({ approvers: { users, usergroups: groups } });
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.approval.approvers.users: at most 20 people; put more in a user group",
      "config targets.0.approval.approvers.usergroups: at most 5 user groups",
    ]);
  });

  it("names each approver entry when it is not a Slack id of its kind", () => {
    const path = approvalOf({ approvers: { users: ["S0LEADS"], usergroups: ["U0ALICE", "C0OPS"] } });
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.approval.approvers.users.0: must be a Slack user id (U…/W…)",
      "config targets.0.approval.approvers.usergroups.0: must be a Slack user group id (S…)",
      "config targets.0.approval.approvers.usergroups.1: must be a Slack user group id (S…)",
    ]);
  });

  it("refuses unknown keys inside approval and approvers and names the key meant", () => {
    const path = writeTargets([
      { ...FILE_TARGET, approval: { approver: { users: ["U0ALICE"] }, expires: "1h" } },
      { ...FILE_TARGET, name: "staging", approval: { approvers: { user: ["U0ALICE"] } } },
    ]);
    // The typo is the whole story: no second message about a missing approver.
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      'config targets.0.approval.approver: unknown key; did you mean "approvers"?',
      'config targets.0.approval.expires: unknown key; did you mean "expiresAfter"?',
      'config targets.1.approval.approvers.user: unknown key; did you mean "users"?',
    ]);
  });

  it("reports a wrong expiresAfter and a missing approver in the same round", () => {
    const path = approvalOf({ approvers: { users: [] }, expiresAfter: "8d" });
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: path })).toEqual([
      "config targets.0.approval.expiresAfter: use a number with ms, s, m or h",
      expect.stringMatching(/^config targets\.0\.approval\.approvers: list at least one approver/),
    ]);
  });

  it.each([true, "U0ALICE", null])("refuses approval %j when it is not an object", (approval) => {
    expect(problemsOf({ ...BASE, AMI_BOT_CONFIG: approvalOf(approval) })).toEqual([
      "config targets.0.approval: must hold approvers and, optionally, expiresAfter",
    ]);
  });
});

describe("loadConfig: a target's approval rule from the environment", () => {
  it("splits AMI_TARGET_APPROVERS into users and user groups by prefix and reads the expiry", () => {
    const config = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_APPROVERS: "U0ALICE, S0LEADS,W0BOB",
      AMI_TARGET_APPROVAL_EXPIRES: "90m",
    });
    expect(config.targets[0]?.approval).toEqual({
      approvers: { users: ["U0ALICE", "W0BOB"], usergroups: ["S0LEADS"] },
      expiresAfterMs: 90 * 60_000,
    });
  });

  it("waits 4h for a decision when AMI_TARGET_APPROVAL_EXPIRES is unset or empty", () => {
    for (const expires of [undefined, " "]) {
      const config = loadConfig({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_APPROVERS: "S0LEADS",
        AMI_TARGET_APPROVAL_EXPIRES: expires,
      });
      expect(config.targets[0]?.approval?.expiresAfterMs).toBe(4 * 3_600_000);
    }
  });

  it("has no approval rule when AMI_TARGET_APPROVERS is unset or empty", () => {
    expect(loadConfig({ ...BASE, ...ENV_TARGET }).targets[0]?.approval).toBeUndefined();
    expect(
      loadConfig({ ...BASE, ...ENV_TARGET, AMI_TARGET_APPROVERS: " " }).targets[0]?.approval,
    ).toBeUndefined();
  });

  it("refuses an entry that is neither a user nor a user group id, naming the value and the variable", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_APPROVERS: "U0ALICE, C0OPS, u0bob, Sx" })).toEqual(
      [
        'AMI_TARGET_APPROVERS: "C0OPS" is neither a Slack user id (U…/W…) nor a user group id (S…)',
        'AMI_TARGET_APPROVERS: "u0bob" is neither a Slack user id (U…/W…) nor a user group id (S…)',
        'AMI_TARGET_APPROVERS: "Sx" is neither a Slack user id (U…/W…) nor a user group id (S…)',
      ],
    );
  });

  it("refuses * in AMI_TARGET_APPROVERS because everyone approving defeats the rule", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_APPROVERS: "*" })).toEqual([
      "AMI_TARGET_APPROVERS: * is not allowed among approvers: if everyone may approve, the two-person rule guards nothing; list user ids (U…/W…)",
    ]);
  });

  it("refuses AMI_TARGET_APPROVERS when it holds only commas", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_APPROVERS: " , " })).toEqual([
      "AMI_TARGET_APPROVERS: list at least one approver, a user id (U…/W…) or user group id (S…); without one, every job would wait until it expires",
    ]);
  });

  it("refuses AMI_TARGET_APPROVAL_EXPIRES when AMI_TARGET_APPROVERS is not set", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_APPROVAL_EXPIRES: "1h" })).toEqual([
      "AMI_TARGET_APPROVAL_EXPIRES is set but AMI_TARGET_APPROVERS is not: list the approvers (U…/W…/S…), or remove AMI_TARGET_APPROVAL_EXPIRES",
    ]);
  });

  it.each([
    ["4m", "must be at least 5m and at most 168h (7 days)"],
    ["169h", "must be at least 5m and at most 168h (7 days)"],
    ["4", "use a number with ms, s, m or h"],
  ])("refuses AMI_TARGET_APPROVAL_EXPIRES=%s, naming the variable", (expires, message) => {
    expect(
      problemsOf({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_APPROVERS: "U0ALICE",
        AMI_TARGET_APPROVAL_EXPIRES: expires,
      }),
    ).toEqual([`AMI_TARGET_APPROVAL_EXPIRES: ${message}`]);
  });
});
