/**
 * A target's steps after the image (copies, sharing, the keep rule) and its admins: read from a targets
 * file or from AMI_TARGET_* variables, and every problem named by its place or variable and its value.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { NO_AFTER_STEPS } from "../../src/domain/target.js";
import { problemsOf } from "../support/config-problems.js";

const BASE = { SLACK_BOT_TOKEN: "xoxb-1-2-3", SLACK_SIGNING_SECRET: "s3cret" };
const ENV_TARGET = {
  AMI_TARGET_ROLE_ARN: "arn:aws:iam::123456789012:role/ami-bot",
  AMI_TARGET_REGIONS: "eu-west-1",
  AMI_TARGET_ALLOW_USERS: "U0ALICE",
};
const FILE_TARGET = {
  name: "prod",
  roleArn: "arn:aws:iam::123456789012:role/ami-bot",
  externalId: "ext-123",
  regions: ["eu-west-1"],
};
const KEY = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ALIAS = "arn:aws:kms:us-east-1:999988887777:alias/ami-copies";
const DAY = 86_400_000;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "ami-bot-config-after-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): Record<string, string> {
  const path = join(dir, name);
  writeFileSync(path, text);
  return { ...BASE, AMI_BOT_CONFIG: path };
}

/** A targets file with one otherwise valid target carrying `fields`. */
function targetWith(fields: Record<string, unknown>): Record<string, string> {
  return file("targets.json", JSON.stringify({ targets: [{ ...FILE_TARGET, ...fields }] }));
}

const afterOf = (after: unknown) => targetWith({ after });

describe("loadConfig: steps after the image in a file", () => {
  it("reads copies with and without a key, accounts, the keep rule and the admins", () => {
    const env = file(
      "after.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::123456789012:role/ami-bot",
        "    externalId: ext-1",
        "    regions: [eu-west-1, eu-central-1]",
        "    admins: [U0ADMIN, W0OTHER]",
        "    after:",
        "      copyTo:",
        "        - eu-central-1",
        `        - { region: us-east-1, kmsKeyId: "${ALIAS}" }`,
        `        - region: eu-north-1`,
        '      shareWith: ["210987654321", 111122223333]',
        "      keep: { lastPerInstance: 5, maxAge: 90d, channel: C0123ABC }",
      ].join("\n"),
    );
    const target = loadConfig(env).targets[0];
    expect(target?.after).toEqual({
      copyTo: [
        { region: "eu-central-1", kmsKeyId: undefined },
        { region: "us-east-1", kmsKeyId: ALIAS },
        { region: "eu-north-1", kmsKeyId: undefined },
      ],
      shareWith: ["210987654321", "111122223333"],
      keep: { lastPerInstance: 5, maxAgeMs: 90 * DAY, channel: "C0123ABC" },
    });
    expect(target?.admins).toEqual(["U0ADMIN", "W0OTHER"]);
  });

  it("has no steps and no admins for a target that leaves them out", () => {
    const target = loadConfig(targetWith({})).targets[0];
    expect(target?.after).toEqual(NO_AFTER_STEPS);
    expect(target?.admins).toEqual([]);
  });

  it("keeps by count alone or by age alone, and reads an age in seconds, hours or days", () => {
    const keep = (rule: object) => loadConfig(afterOf({ keep: rule })).targets[0]?.after.keep;
    expect(keep({ lastPerInstance: 1, channel: "G0PRIVATE" })).toEqual({
      lastPerInstance: 1,
      maxAgeMs: undefined,
      channel: "G0PRIVATE",
    });
    expect(keep({ maxAge: "24h", channel: "C0123" })?.maxAgeMs).toBe(DAY);
    expect(keep({ maxAge: 86_400, channel: "C0123" })?.maxAgeMs).toBe(DAY);
    expect(keep({ maxAge: "1d", lastPerInstance: 1000, channel: "C0123" })).toMatchObject({
      lastPerInstance: 1000,
      maxAgeMs: DAY,
    });
  });

  it("allows a keep rule on a target without admins (the daily sweep still runs)", () => {
    const target = loadConfig(afterOf({ keep: { lastPerInstance: 3, channel: "C0123" } })).targets[0];
    expect(target?.admins).toEqual([]);
    expect(target?.after.keep?.lastPerInstance).toBe(3);
  });

  it("refuses a copy region that does not exist, or exists only in another partition, naming it", () => {
    expect(problemsOf(afterOf({ copyTo: ["eu-westt-1", "cn-north-1", { region: "mars-1" }] }))).toEqual([
      'config targets.0.after.copyTo.0.region: "eu-westt-1" is not an AWS region in partition aws',
      'config targets.0.after.copyTo.1.region: "cn-north-1" is not an AWS region in partition aws',
      'config targets.0.after.copyTo.2.region: "mars-1" is not an AWS region in partition aws',
    ]);
  });

  it("checks copy regions against the role's partition when the role is in aws-cn", () => {
    const env = targetWith({
      roleArn: "arn:aws-cn:iam::123456789012:role/ami-bot",
      regions: ["cn-north-1"],
      after: { copyTo: ["cn-northwest-1", "eu-west-1"] },
    });
    expect(problemsOf(env)).toEqual([
      'config targets.0.after.copyTo.1.region: "eu-west-1" is not an AWS region in partition aws-cn',
    ]);
  });

  it("refuses a region listed twice, with or without a key", () => {
    expect(
      problemsOf(afterOf({ copyTo: ["eu-central-1", { region: "eu-central-1", kmsKeyId: KEY }] })),
    ).toEqual(['config targets.0.after.copyTo.1.region: "eu-central-1" is listed twice']);
  });

  it("accepts 10 copy regions and refuses 11", () => {
    const eleven = [
      "eu-central-1",
      "eu-north-1",
      "eu-south-1",
      "eu-west-2",
      "eu-west-3",
      "us-east-1",
      "us-east-2",
      "us-west-1",
      "us-west-2",
      "ap-south-1",
      "ca-central-1",
    ];
    expect(loadConfig(afterOf({ copyTo: eleven.slice(0, 10) })).targets[0]?.after.copyTo).toHaveLength(10);
    expect(problemsOf(afterOf({ copyTo: eleven }))).toEqual([
      "config targets.0.after.copyTo: at most 10 regions",
    ]);
  });

  it("refuses a KMS key that is not a key or alias ARN of the copy's region and partition", () => {
    const env = afterOf({
      copyTo: [
        { region: "eu-central-1", kmsKeyId: "1234abcd-12ab-34cd-56ef-1234567890ab" },
        { region: "us-east-1", kmsKeyId: KEY },
        { region: "us-west-2", kmsKeyId: "arn:aws-us-gov:kms:us-west-2:123456789012:key/abc" },
        { region: "eu-north-1", kmsKeyId: "arn:aws:kms:eu-north-1:123456789012:grant/abc" },
      ],
    });
    expect(problemsOf(env)).toEqual([
      'config targets.0.after.copyTo.0.kmsKeyId: "1234abcd-12ab-34cd-56ef-1234567890ab" is not a KMS key or alias ARN (arn:aws:kms:eu-central-1:123456789012:key/… or …:alias/…)',
      `config targets.0.after.copyTo.1.kmsKeyId: "${KEY}" is a key in eu-central-1, not us-east-1: a copy is encrypted with a key of the region it is made in`,
      `config targets.0.after.copyTo.2.kmsKeyId: "arn:aws-us-gov:kms:us-west-2:123456789012:key/abc" is in partition aws-us-gov, not aws, the role's`,
      'config targets.0.after.copyTo.3.kmsKeyId: "arn:aws:kms:eu-north-1:123456789012:grant/abc" is not a KMS key or alias ARN (arn:aws:kms:eu-north-1:123456789012:key/… or …:alias/…)',
    ]);
  });

  it("refuses copy entries that are neither a region nor { region, kmsKeyId }, naming a misspelt key", () => {
    expect(problemsOf(afterOf({ copyTo: [5, { region: "eu-central-1", kmsKey: KEY }] }))).toEqual([
      "config targets.0.after.copyTo.0: must be a region (eu-central-1) or { region, kmsKeyId }",
      'config targets.0.after.copyTo.1.kmsKey: unknown key; did you mean "kmsKeyId"?',
    ]);
  });

  it("refuses an account id that is not 12 digits, naming it", () => {
    expect(problemsOf(afterOf({ shareWith: ["12345", "21098765432a", true] }))).toEqual([
      "config targets.0.after.shareWith.2: must be a 12-digit AWS account id",
      'config targets.0.after.shareWith.0: "12345" is not an AWS account id (12 digits)',
      'config targets.0.after.shareWith.1: "21098765432a" is not an AWS account id (12 digits)',
    ]);
  });

  it("says to quote an account id that YAML read as a number and lost its leading zero", () => {
    const env = file(
      "zero.yaml",
      [
        "targets:",
        "  - name: prod",
        "    roleArn: arn:aws:iam::123456789012:role/ami-bot",
        "    externalId: ext-1",
        "    regions: [eu-west-1]",
        "    after: { shareWith: [012345678901] }",
      ].join("\n"),
    );
    expect(problemsOf(env)).toEqual([
      'config targets.0.after.shareWith.0: 12345678901 is not an AWS account id (12 digits); quote account ids in YAML ("012345678901") so a leading 0 is kept',
    ]);
  });

  it("refuses the target's own account, because its images are already there", () => {
    expect(problemsOf(afterOf({ shareWith: ["123456789012"] }))).toEqual([
      `config targets.0.after.shareWith.0: "123456789012" is this target's own account: its images are already there`,
    ]);
  });

  it.each(["all", "*", "public", "ALL"])("refuses %j by name: ami-bot never shares publicly", (word) => {
    expect(problemsOf(afterOf({ shareWith: ["210987654321", word] }))).toEqual([
      `config targets.0.after.shareWith.1: "${word}" would make the images public; ami-bot never shares publicly`,
    ]);
  });

  it("refuses an account listed twice", () => {
    expect(problemsOf(afterOf({ shareWith: ["210987654321", "210987654321"] }))).toEqual([
      'config targets.0.after.shareWith.1: "210987654321" is listed twice',
    ]);
  });

  it("accepts 20 accounts and refuses 21", () => {
    const accounts = Array.from({ length: 21 }, (_, i) => String(200000000000 + i));
    expect(
      loadConfig(afterOf({ shareWith: accounts.slice(0, 20) })).targets[0]?.after.shareWith,
    ).toHaveLength(20);
    expect(problemsOf(afterOf({ shareWith: accounts }))).toEqual([
      "config targets.0.after.shareWith: at most 20 accounts",
    ]);
  });

  it("refuses a keep rule that keeps nothing in particular, or has no channel for its summary", () => {
    expect(problemsOf(afterOf({ keep: {} }))).toEqual([
      "config targets.0.after.keep: list lastPerInstance (1–1000) and/or maxAge (at least 1d, e.g. 90d): without either, the rule says nothing about what to clean up",
      "config targets.0.after.keep.channel: required: the channel (C…/G…) each cleanup's summary is posted in",
    ]);
  });

  it.each([
    [{ lastPerInstance: 0 }, "lastPerInstance: must be at least 1"],
    [{ lastPerInstance: 1001 }, "lastPerInstance: must be at most 1000"],
    [{ lastPerInstance: 2.5 }, "lastPerInstance: must be a whole number"],
    [{ maxAge: "23h" }, "maxAge: must be at least 1d (a day)"],
    [{ maxAge: 3600 }, "maxAge: must be at least 1d (a day)"],
    [{ maxAge: "90" }, "maxAge: use a number with d or h, e.g. 90d"],
    [{ maxAge: "3 months" }, "maxAge: use a number with d or h, e.g. 90d"],
  ])("refuses the keep rule %j", (rule, problem) => {
    expect(problemsOf(afterOf({ keep: { channel: "C0123", ...rule } }))).toEqual([
      `config targets.0.after.keep.${problem}`,
    ]);
  });

  it("refuses a summary channel that is not a channel id, naming it", () => {
    expect(problemsOf(afterOf({ keep: { lastPerInstance: 5, channel: "D0DIRECT" } }))).toEqual([
      'config targets.0.after.keep.channel: "D0DIRECT" is not a Slack channel id (C…/G…)',
    ]);
  });

  it("refuses unknown keys in after and keep, naming the key meant", () => {
    expect(
      problemsOf(afterOf({ copy: ["eu-central-1"], share: [], keep: { last: 5, chanel: "C0123", x: 1 } })),
    ).toEqual([
      'config targets.0.after.keep.last: unknown key; did you mean "lastPerInstance"?',
      'config targets.0.after.keep.chanel: unknown key; did you mean "channel"?',
      "config targets.0.after.keep.x: unknown key; the keys here are lastPerInstance, maxAge, channel",
      'config targets.0.after.copy: unknown key; did you mean "copyTo"?',
      'config targets.0.after.share: unknown key; did you mean "shareWith"?',
    ]);
  });

  it("refuses after when it is not an object, and admins that are not user ids", () => {
    expect(problemsOf(targetWith({ after: ["eu-central-1"], admins: ["U0ADMIN", "*", "S0GROUP"] }))).toEqual([
      "config targets.0.after: must hold copyTo, shareWith and/or keep",
      "config targets.0.admins.1: * is not allowed among admins: list user ids (U…/W…)",
      'config targets.0.admins.2: "S0GROUP" is not a Slack user id (U…/W…)',
    ]);
    expect(problemsOf(targetWith({ admins: "U0ADMIN" }))).toEqual([
      "config targets.0.admins: must be a list of Slack user ids (U…/W…)",
    ]);
  });

  it("names a misspelt admins key", () => {
    expect(problemsOf(targetWith({ admin: ["U0ADMIN"] }))).toEqual([
      'config targets.0.admin: unknown key; did you mean "admins"?',
    ]);
  });
});

describe("loadConfig: steps after the image from the environment", () => {
  it("reads AMI_TARGET_COPY_TO (with region=key items), SHARE_WITH, KEEP_* and ADMINS", () => {
    const target = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_COPY_TO: ` eu-central-1=${KEY} , us-east-1`,
      AMI_TARGET_SHARE_WITH: "210987654321, 111122223333",
      AMI_TARGET_KEEP_LAST: "5",
      AMI_TARGET_KEEP_MAX_AGE: "90d",
      AMI_TARGET_KEEP_CHANNEL: "C0123ABC",
      AMI_TARGET_ADMINS: "U0ADMIN,W0OTHER",
    }).targets[0];
    expect(target?.after).toEqual({
      copyTo: [
        { region: "eu-central-1", kmsKeyId: KEY },
        { region: "us-east-1", kmsKeyId: undefined },
      ],
      shareWith: ["210987654321", "111122223333"],
      keep: { lastPerInstance: 5, maxAgeMs: 90 * DAY, channel: "C0123ABC" },
    });
    expect(target?.admins).toEqual(["U0ADMIN", "W0OTHER"]);
  });

  it("has no steps when the variables are unset or empty", () => {
    const target = loadConfig({
      ...BASE,
      ...ENV_TARGET,
      AMI_TARGET_COPY_TO: " ",
      AMI_TARGET_SHARE_WITH: "",
      AMI_TARGET_KEEP_LAST: " ",
      AMI_TARGET_ADMINS: "",
    }).targets[0];
    expect(target?.after).toEqual(NO_AFTER_STEPS);
    expect(target?.admins).toEqual([]);
  });

  it("names the variable and the value of each wrong copy region and key", () => {
    expect(
      problemsOf({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_COPY_TO: `eu-westt-1, cn-north-1, us-east-1, us-east-1, eu-central-1=arn:aws:kms:eu-west-1:123456789012:key/x`,
      }),
    ).toEqual([
      'AMI_TARGET_COPY_TO: "eu-westt-1" is not an AWS region',
      'AMI_TARGET_COPY_TO: "cn-north-1" is not an AWS region in partition aws',
      'AMI_TARGET_COPY_TO: "us-east-1" is listed twice',
      'AMI_TARGET_COPY_TO: "arn:aws:kms:eu-west-1:123456789012:key/x" is a key in eu-west-1, not eu-central-1: a copy is encrypted with a key of the region it is made in',
    ]);
  });

  it("names the variable and the value of each wrong account", () => {
    expect(
      problemsOf({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_SHARE_WITH: "all, 12345, 123456789012, 210987654321, 210987654321",
      }),
    ).toEqual([
      'AMI_TARGET_SHARE_WITH: "all" would make the images public; ami-bot never shares publicly',
      'AMI_TARGET_SHARE_WITH: "12345" is not an AWS account id (12 digits)',
      `AMI_TARGET_SHARE_WITH: "123456789012" is this target's own account: its images are already there`,
      'AMI_TARGET_SHARE_WITH: "210987654321" is listed twice',
    ]);
  });

  it("refuses a keep channel without a count or an age, and a count or an age without a channel", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_KEEP_CHANNEL: "C0123" })).toEqual([
      "AMI_TARGET_KEEP_LAST / AMI_TARGET_KEEP_MAX_AGE: set at least one: how many images to keep per instance (1–1000), or the oldest to keep (at least 1d, e.g. 90d)",
    ]);
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_KEEP_LAST: "5" })).toEqual([
      "AMI_TARGET_KEEP_CHANNEL: required when AMI_TARGET_KEEP_LAST or AMI_TARGET_KEEP_MAX_AGE is set: the channel (C…/G…) each cleanup's summary is posted in",
    ]);
  });

  it("names each wrong keep variable", () => {
    expect(
      problemsOf({
        ...BASE,
        ...ENV_TARGET,
        AMI_TARGET_KEEP_LAST: "five",
        AMI_TARGET_KEEP_MAX_AGE: "12h",
        AMI_TARGET_KEEP_CHANNEL: "general",
      }),
    ).toEqual([
      "AMI_TARGET_KEEP_LAST: must be a whole number",
      "AMI_TARGET_KEEP_MAX_AGE: must be at least 1d (a day)",
      'AMI_TARGET_KEEP_CHANNEL: "general" is not a Slack channel id (C…/G…)',
    ]);
  });

  it("names AMI_TARGET_ADMINS and the value when an admin is not a user id", () => {
    expect(problemsOf({ ...BASE, ...ENV_TARGET, AMI_TARGET_ADMINS: "U0ADMIN, S0OPS, *" })).toEqual([
      'AMI_TARGET_ADMINS: "S0OPS" is not a Slack user id (U…/W…)',
      "AMI_TARGET_ADMINS: * is not allowed among admins: list user ids (U…/W…)",
    ]);
  });
});
