/**
 * The target role's own permissions (deploy/target-role.yaml), resolved with chosen parameters and judged by
 * fake-aws's policy evaluator: what the account allows whatever ami-bot's session policy says. The
 * template's structure is checked in manifest.test.ts; this proves what its conditions mean.
 */
import { readFileSync } from "node:fs";
import { CreateImageCommand, DeregisterImageCommand, EC2Client, type Tag } from "@aws-sdk/client-ec2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { translateEc2Error } from "../../../src/aws/aws-errors.js";
import { createSessionFactory } from "../../../src/aws/scoped-credentials.js";
import {
  cleanupImagePolicy,
  cleanupReadPolicy,
  copyImagePolicy,
  type PolicyDocument,
  shareImagePolicy,
} from "../../../src/aws/session-policy.js";
import type { Target } from "../../../src/domain/target.js";
import { KEEP_RULE_IDENTITY } from "../../../src/watcher/keep-sweep.js";
import {
  type FakeAws,
  type PolicyContext,
  sessionPolicyPermits,
  startFakeAws,
} from "../../fakes/fake-aws.js";
import { testTarget } from "../../fakes/job-fixtures.js";

const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const INSTANCE = "i-0123456789abcdef0";
const template: unknown = parse(
  readFileSync(new URL("../../../deploy/target-role.yaml", import.meta.url), "utf8"),
);

type Parameters = Record<string, string | readonly string[]>;

/** What `Ref: AWS::NoValue` resolves to: the property or list item is left out, as CloudFormation does. */
const NO_VALUE = Symbol("AWS::NoValue");

/** Resolves the intrinsics the template uses (Ref, Fn::Sub, Fn::Join, Fn::Split, Fn::If) as CloudFormation would. */
function resolve(node: unknown, parameters: Parameters, conditions: Record<string, boolean>): unknown {
  const again = (n: unknown) => resolve(n, parameters, conditions);
  if (Array.isArray(node)) return node.map(again).filter((n) => n !== NO_VALUE);
  if (typeof node !== "object" || node === null) return node;
  const fn = node as Record<string, unknown>;
  const value = (name: string) => {
    const v = parameters[name];
    if (v === undefined) throw new Error(`no parameter ${name}`);
    return v;
  };
  if ("Ref" in fn) return fn.Ref === "AWS::NoValue" ? NO_VALUE : value(String(fn.Ref));
  if ("Fn::Sub" in fn)
    return String(fn["Fn::Sub"]).replace(/\$\{([^}!]+)\}/g, (_m, name: string) => String(value(name)));
  if ("Fn::Join" in fn) {
    const [delimiter, items] = fn["Fn::Join"] as [string, unknown];
    return (again(items) as string[]).join(delimiter);
  }
  if ("Fn::Split" in fn) {
    const [delimiter, source] = fn["Fn::Split"] as [string, unknown];
    return String(again(source)).split(delimiter);
  }
  if ("Fn::If" in fn) {
    const [condition, whenTrue, whenFalse] = fn["Fn::If"] as [string, unknown, unknown];
    if (!(condition in conditions)) throw new Error(`no condition ${condition}`);
    const chosen = again(conditions[condition] ? whenTrue : whenFalse);
    // A policy written as a Fn::Sub JSON string.
    return typeof chosen === "string" ? JSON.parse(chosen) : chosen;
  }
  return Object.fromEntries(
    Object.entries(fn)
      .map(([k, v]) => [k, again(v)])
      .filter(([, v]) => v !== NO_VALUE),
  );
}

const root = template as {
  Parameters: Record<string, { Type: string; Default?: string }>;
  Conditions: Record<string, unknown>;
  Resources: { TargetRole: { Properties: { Policies: unknown } } };
};

/** The template's Conditions, evaluated as CloudFormation would for these parameter values. */
function conditionsFor(parameters: Parameters): Record<string, boolean> {
  const evaluate = (node: unknown): boolean => {
    const fn = node as Record<string, unknown>;
    if ("Condition" in fn) return evaluate(root.Conditions[String(fn.Condition)]);
    if ("Fn::Equals" in fn) {
      const [a, b] = (fn["Fn::Equals"] as unknown[]).map((x) => resolve(x, parameters, {}));
      return String(a) === String(b);
    }
    if ("Fn::And" in fn) return (fn["Fn::And"] as unknown[]).every(evaluate);
    if ("Fn::Or" in fn) return (fn["Fn::Or"] as unknown[]).some(evaluate);
    if ("Fn::Not" in fn) return !evaluate((fn["Fn::Not"] as unknown[])[0]);
    throw new Error(`cannot evaluate ${JSON.stringify(node)}`);
  };
  return Object.fromEntries(Object.entries(root.Conditions).map(([name, c]) => [name, evaluate(c)]));
}

/** Every statement of the role's permission policies, as one document, for these parameter values. */
function rolePolicy(overrides: Parameters = {}): string {
  // The template's defaults (a CommaDelimitedList's split as CloudFormation splits it), then the test's.
  const defaults = Object.fromEntries(
    Object.entries(root.Parameters)
      .filter(([, p]) => p.Default !== undefined)
      .map(([name, p]) => [
        name,
        p.Type === "CommaDelimitedList" ? String(p.Default).split(",") : String(p.Default),
      ]),
  );
  const parameters: Parameters = {
    ...defaults,
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::URLSuffix": "amazonaws.com",
    OptInTagKey: "ami-bot:allowed",
    OptInTagValue: "true",
    AllowedTagKeys: ["*"],
    ...overrides,
  };
  const policies = resolve(
    root.Resources.TargetRole.Properties.Policies,
    parameters,
    conditionsFor(parameters),
  );
  const statements = (policies as { PolicyDocument: { Statement: unknown[] } }[]).flatMap(
    (p) => p.PolicyDocument.Statement,
  );
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

const arn = {
  instance: `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${INSTANCE}`,
  image: `arn:aws:ec2:${REGION}::image/ami-0123456789abcdef0`,
  snapshot: `arn:aws:ec2:${REGION}::snapshot/snap-0123456789abcdef0`,
};
/** CreateImage as ami-bot sends it: an opted-in instance, the job-id tag, and `keys` as the tag keys. */
const request = (sourceIdentity: string, keys: string[] = []): PolicyContext => ({
  "aws:RequestedRegion": REGION,
  "aws:SourceIdentity": sourceIdentity,
  "aws:ResourceTag/ami-bot:allowed": "true",
  "ec2:ResourceTag/ami-bot:allowed": "true",
  "aws:RequestTag/ami-bot:job-id": "job-1",
  "aws:TagKeys": ["Name", "ami-bot:job-id", "ami-bot:requested-by", ...keys],
});
const everything = [arn.instance, arn.image, arn.snapshot];

describe("the target role's permissions, evaluated", () => {
  it("let a person and the doctor create an image, and never the watcher", () => {
    const policy = rolePolicy();
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", everything, request("U0REQUEST1"))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", everything, request("ami-bot-doctor"))).toBe(true);
    for (const resources of [everything, [arn.instance], [arn.image], [arn.snapshot]])
      expect(sessionPolicyPermits(policy, "ec2:CreateImage", resources, request("ami-bot-watcher"))).toBe(
        false,
      );
    // The watcher still reads.
    for (const action of ["ec2:DescribeImages", "ec2:DescribeSnapshots"])
      expect(sessionPolicyPermits(policy, action, ["*"], request("ami-bot-watcher"))).toBe(true);
    // And the picker lists instances and their volumes for the form.
    for (const action of ["ec2:DescribeInstances", "ec2:DescribeVolumes"])
      expect(sessionPolicyPermits(policy, action, ["*"], request("U0REQUEST1"))).toBe(true);
  });

  it("allow any tag key by default, and only Name, ami-bot:* and AllowedTagKeys when it is set", () => {
    const open = rolePolicy();
    const limited = rolePolicy({ AllowedTagKeys: ["team", "app:*"] });
    const creating = (keys: string[]) => ({
      ...request("U0REQUEST1", keys),
      "ec2:CreateAction": "CreateImage",
    });
    const created = [arn.image, arn.snapshot];
    for (const action of ["ec2:CreateImage", "ec2:CreateTags"]) {
      expect(sessionPolicyPermits(open, action, created, creating(["owner"]))).toBe(true);
      expect(sessionPolicyPermits(limited, action, created, creating(["team", "app:tier"]))).toBe(true);
      expect(sessionPolicyPermits(limited, action, created, creating(["owner"]))).toBe(false);
      expect(sessionPolicyPermits(limited, action, created, creating(["team", "appx"]))).toBe(false);
    }
  });

  it("let a cancel deregister images and delete snapshots only while they carry a job-id tag", () => {
    const policy = rolePolicy();
    const tagged = (job: string | undefined): PolicyContext => ({
      "aws:RequestedRegion": REGION,
      "aws:SourceIdentity": "U0REQUEST1",
      ...(job !== undefined && { "aws:ResourceTag/ami-bot:job-id": job }),
    });
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], tagged("job-1"))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], tagged("job-1"))).toBe(true);
    // Images and snapshots ami-bot did not make.
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], tagged(undefined))).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], tagged(undefined))).toBe(false);
    // Each action on its own resource type only, and nothing else is deleted.
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.snapshot], tagged("job-1"))).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.image], tagged("job-1"))).toBe(false);
    const volume = `arn:aws:ec2:${REGION}:${ACCOUNT}:volume/vol-0123456789abcdef0`;
    for (const action of ["ec2:DeleteVolume", "ec2:TerminateInstances", "ec2:DeleteTags"])
      expect(
        sessionPolicyPermits(
          policy,
          action,
          [arn.instance, arn.image, arn.snapshot, volume],
          tagged("job-1"),
        ),
      ).toBe(false);
  });

  it("refuse every removal to the bot's own identities, and to the keep rule's unless AllowCleanup is on", () => {
    const removing = (identity: string, job: string | undefined): PolicyContext => ({
      "aws:RequestedRegion": REGION,
      "aws:SourceIdentity": identity,
      ...(job !== undefined && { "aws:ResourceTag/ami-bot:job-id": job }),
    });
    const removes = (policy: string, identity: string, job: string | undefined) => ({
      image: sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], removing(identity, job)),
      snapshot: sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], removing(identity, job)),
    });
    const none = { image: false, snapshot: false };
    const off = rolePolicy();
    const on = rolePolicy({ AllowCleanup: "true" });
    expect(KEEP_RULE_IDENTITY).toBe("ami-bot-keep-rule");
    // Off (the default): the daily sweep is refused like any other ami-bot-* session.
    expect(removes(off, KEEP_RULE_IDENTITY, "job-1")).toEqual(none);
    // On: it removes what ami-bot made, and only that.
    expect(removes(on, KEEP_RULE_IDENTITY, "job-1")).toEqual({ image: true, snapshot: true });
    expect(removes(on, KEEP_RULE_IDENTITY, undefined)).toEqual(none);
    expect(
      sessionPolicyPermits(on, "ec2:DeregisterImage", [arn.snapshot], removing(KEEP_RULE_IDENTITY, "job-1")),
    ).toBe(false);
    // Only that exact name: the watcher, picker-like, doctor and the sweep's reads stay refused either way.
    for (const policy of [off, on])
      for (const identity of [
        "ami-bot-watcher",
        "ami-bot-doctor",
        "ami-bot-cleanup",
        `${KEEP_RULE_IDENTITY}-2`,
        "ami-bot-keep-rulE",
      ])
        expect(removes(policy, identity, "job-1"), identity).toEqual(none);
    // People (Cancel, `/ami cleanup run` as the admin) are unaffected by the switch.
    for (const policy of [off, on])
      expect(removes(policy, "U0REQUEST1", "job-1")).toEqual({ image: true, snapshot: true });
  });

  it("keep requiring the job-id tag and the opt-in tag", () => {
    const policy = rolePolicy();
    const { "aws:RequestTag/ami-bot:job-id": _, ...untraced } = request("U0REQUEST1");
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn.image], untraced)).toBe(false);
    const { "ec2:ResourceTag/ami-bot:allowed": __, ...notOptedIn } = request("U0REQUEST1");
    expect(sessionPolicyPermits(policy, "ec2:CreateImage", [arn.instance], notOptedIn)).toBe(false);
  });
});

describe("the after-image steps in the target role, each only when its parameter is on", () => {
  const KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
  const as = (extra: PolicyContext = {}): PolicyContext => ({
    "aws:RequestedRegion": REGION,
    "aws:SourceIdentity": "U0REQUEST1",
    ...extra,
  });
  const tagged = { "aws:ResourceTag/ami-bot:job-id": "job-1", "ec2:ResourceTag/ami-bot:job-id": "job-1" };
  /** A CopyImage request that tags the copy with its job id (and `keys` as further tag keys). */
  const taggingCopy = (keys: string[] = []) => ({
    "aws:RequestTag/ami-bot:job-id": "job-1",
    "aws:TagKeys": ["Name", "ami-bot:job-id", ...keys],
  });
  const viaEc2 = { "kms:ViaService": `ec2.${REGION}.amazonaws.com` };
  const sidsOf = (policy: string) => (JSON.parse(policy) as PolicyDocument).Statement.map((s) => s.Sid);
  const afterSids = [
    "CopyOnlyImagesWithJobIdTag",
    "CopyOnlyIntoCopiesWithJobIdTag",
    "TagOnlyWhileCopyingImage",
    "CopyUsesListedKeysThroughEc2Only",
    "CopyGrantsOnListedKeysToAwsResourcesOnly",
    "ShareOnlyImagesWithJobIdTag",
    "ShareOnlySnapshotsWithJobIdTag",
    "NeverShareSnapshotsPublicly",
    "ListLaunchTemplatesForCleanup",
  ];
  const on = { AllowCopy: "true", AllowShare: "true", AllowCleanup: "true", CopyKmsKeyArns: [KEY] };

  it("grants none of them at the parameters' defaults", () => {
    const policy = rolePolicy();
    expect(sidsOf(policy).filter((sid) => afterSids.includes(sid))).toEqual([]);
    // biome-ignore format: a table
    const calls: [string, string[], PolicyContext][] = [
      ["ec2:CopyImage", [arn.image, arn.snapshot], as({ ...tagged, ...taggingCopy() })],
      ["ec2:CreateTags", [arn.image, arn.snapshot], as({ ...taggingCopy(), "ec2:CreateAction": "CopyImage" })],
      ["ec2:ModifyImageAttribute", [arn.image], as(tagged)],
      ["ec2:ModifySnapshotAttribute", [arn.snapshot], as({ ...tagged, "ec2:Add/userId": ["111111111111"] })],
      ["ec2:DescribeLaunchTemplateVersions", ["*"], as()],
      ["kms:Decrypt", [KEY], as(viaEc2)],
      ["kms:CreateGrant", [KEY], as({ ...viaEc2, "kms:GrantIsForAWSResource": "true" })],
    ];
    for (const [action, resources, context] of calls)
      expect(sessionPolicyPermits(policy, action, resources, context), action).toBe(false);
  });

  it("adds each step's statements with its own parameter only", () => {
    const only = (parameters: Parameters) =>
      sidsOf(rolePolicy(parameters)).filter((s) => afterSids.includes(s));
    expect(only({ AllowCopy: "true" })).toEqual(afterSids.slice(0, 3));
    expect(only({ AllowCopy: "true", CopyKmsKeyArns: [KEY] })).toEqual(afterSids.slice(0, 5));
    // Keys listed without AllowCopy grant nothing.
    expect(only({ CopyKmsKeyArns: [KEY] })).toEqual([]);
    expect(only({ AllowShare: "true" })).toEqual(afterSids.slice(5, 8));
    expect(only({ AllowCleanup: "true" })).toEqual(afterSids.slice(8));
    expect(only(on)).toEqual(afterSids);
  });

  it("copies only images ami-bot made, into copies tagged with a job id and allowed tag keys", () => {
    const policy = rolePolicy({ AllowCopy: "true", AllowedTagKeys: ["team"] });
    // The source image and its snapshots carry the job-id tag.
    expect(sessionPolicyPermits(policy, "ec2:CopyImage", [arn.image, arn.snapshot], as(tagged))).toBe(true);
    // The new image and snapshots, when the request tags them with a job id.
    const created = [arn.image, arn.snapshot];
    expect(sessionPolicyPermits(policy, "ec2:CopyImage", created, as(taggingCopy(["team"])))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:CopyImage", created, as())).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:CopyImage", created, as(taggingCopy(["owner"])))).toBe(false);
    const copying = (keys: string[]) => as({ ...taggingCopy(keys), "ec2:CreateAction": "CopyImage" });
    expect(sessionPolicyPermits(policy, "ec2:CreateTags", created, copying(["team"]))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:CreateTags", created, copying(["owner"]))).toBe(false);
    // Re-tagging existing images stays refused.
    expect(sessionPolicyPermits(policy, "ec2:CreateTags", created, as({ ...tagged, ...taggingCopy() }))).toBe(
      false,
    );
  });

  it("uses the listed KMS keys only through EC2, and grants only for AWS resources", () => {
    const policy = rolePolicy({ AllowCopy: "true", CopyKmsKeyArns: [KEY] });
    for (const action of [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:DescribeKey",
    ])
      expect(sessionPolicyPermits(policy, action, [KEY], as(viaEc2)), action).toBe(true);
    const grant = (extra: PolicyContext) => sessionPolicyPermits(policy, "kms:CreateGrant", [KEY], as(extra));
    expect(grant({ ...viaEc2, "kms:GrantIsForAWSResource": "true" })).toBe(true);
    expect(grant({ ...viaEc2, "kms:GrantIsForAWSResource": "false" })).toBe(false);
    expect(grant(viaEc2)).toBe(false);
    expect(sessionPolicyPermits(policy, "kms:Decrypt", [KEY], as())).toBe(false);
    expect(
      sessionPolicyPermits(
        policy,
        "kms:Decrypt",
        [KEY],
        as({ "kms:ViaService": `rds.${REGION}.amazonaws.com` }),
      ),
    ).toBe(false);
    const otherKey = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0000abcd-12ab-34cd-56ef-1234567890ab`;
    expect(sessionPolicyPermits(policy, "kms:Decrypt", [otherKey], as(viaEc2))).toBe(false);
    for (const action of ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:GenerateDataKey"])
      expect(sessionPolicyPermits(policy, action, [KEY], as(viaEc2)), action).toBe(false);
  });

  it("shares only images and snapshots ami-bot made, and never makes a snapshot public", () => {
    const policy = rolePolicy({ AllowShare: "true" });
    const adding = (extra: PolicyContext) => as({ ...tagged, ...extra });
    expect(sessionPolicyPermits(policy, "ec2:ModifyImageAttribute", [arn.image], as(tagged))).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:ModifyImageAttribute", [arn.image], as())).toBe(false);
    const snapshot = (extra: PolicyContext) =>
      sessionPolicyPermits(policy, "ec2:ModifySnapshotAttribute", [arn.snapshot], extra);
    expect(snapshot(adding({ "ec2:Add/userId": ["111111111111"] }))).toBe(true);
    expect(snapshot(as({ "ec2:Add/userId": ["111111111111"] }))).toBe(false);
    expect(snapshot(adding({ "ec2:Add/group": ["all"] }))).toBe(false);
    expect(snapshot(adding({ "ec2:Add/userId": ["111111111111"], "ec2:Add/group": ["all"] }))).toBe(false);
  });

  it("lets the keep rule list launch template versions, and removes nothing the Cancel statements do not", () => {
    const policy = rolePolicy({ AllowCleanup: "true" });
    expect(sessionPolicyPermits(policy, "ec2:DescribeLaunchTemplateVersions", ["*"], as())).toBe(true);
    expect(sessionPolicyPermits(policy, "ec2:DeregisterImage", [arn.image], as())).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteSnapshot", [arn.snapshot], as())).toBe(false);
    expect(sessionPolicyPermits(policy, "ec2:DeleteLaunchTemplate", ["*"], as())).toBe(false);
  });

  it("allows, once turned on, every call each after-step session policy allows", () => {
    const role = rolePolicy(on);
    const region = (r: string) => ({ partition: "aws", accountId: ACCOUNT, region: r });
    const SOURCE_IMAGE = "ami-0123456789abcdef0";
    const copy = JSON.stringify(
      copyImagePolicy(region(REGION), { region: "us-east-1", imageId: SOURCE_IMAGE }, "job-1", KEY),
    );
    const share = JSON.stringify(
      shareImagePolicy(region(REGION), SOURCE_IMAGE, ["snap-0123456789abcdef0"], "job-1", ["111111111111"]),
    );
    const sweepRead = JSON.stringify(cleanupReadPolicy(region(REGION)));
    const sweep = JSON.stringify(
      cleanupImagePolicy(region(REGION), SOURCE_IMAGE, ["snap-0123456789abcdef0"]),
    );
    const keepRule = (extra: PolicyContext) => ({ ...as(extra), "aws:SourceIdentity": KEEP_RULE_IDENTITY });
    const source = [
      `arn:aws:ec2:us-east-1::image/${SOURCE_IMAGE}`,
      "arn:aws:ec2:us-east-1::snapshot/snap-0123456789abcdef0",
    ];
    // biome-ignore format: a table
    const calls: [string, string, string[], PolicyContext][] = [
      [copy, "ec2:CopyImage", source, as({ ...tagged, ...taggingCopy() })],
      [copy, "ec2:CopyImage", [`arn:aws:ec2:${REGION}::image/*`, `arn:aws:ec2:${REGION}::snapshot/*`], as(taggingCopy())],
      [copy, "ec2:CreateTags", [arn.image, arn.snapshot], as({ ...taggingCopy(), "ec2:CreateAction": "CopyImage" })],
      [copy, "kms:GenerateDataKeyWithoutPlaintext", [KEY], as(viaEc2)],
      [copy, "kms:CreateGrant", [KEY], as({ ...viaEc2, "kms:GrantIsForAWSResource": "true" })],
      [share, "ec2:ModifyImageAttribute", [arn.image], as(tagged)],
      [share, "ec2:ModifySnapshotAttribute", [arn.snapshot], as({ ...tagged, "ec2:Add/userId": ["111111111111"] })],
      [sweepRead, "ec2:DescribeImages", ["*"], as()],
      [sweepRead, "ec2:DescribeLaunchTemplateVersions", ["*"], as()],
      [sweep, "ec2:DeregisterImage", [arn.image], as(tagged)],
      [sweep, "ec2:DeleteSnapshot", [arn.snapshot], as(tagged)],
      [sweep, "ec2:DeregisterImage", [arn.image], keepRule(tagged)],
      [sweep, "ec2:DeleteSnapshot", [arn.snapshot], keepRule(tagged)],
      [sweepRead, "ec2:DescribeImages", ["*"], keepRule({})],
    ];
    for (const [session, action, resources, context] of calls) {
      expect(sessionPolicyPermits(session, action, resources, context), `session: ${action}`).toBe(true);
      expect(sessionPolicyPermits(role, action, resources, context), `role: ${action}`).toBe(true);
    }
  });
});

// Over the SDK wire, the role's permissions stand in as the session policy, so fake-aws enforces them.
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/ami-bot-target`;
const roleAsSession: Target = testTarget({
  name: "role-as-session",
  roleArn: ROLE_ARN,
  accountId: ACCOUNT,
  externalId: undefined,
  regions: [REGION],
  allow: { users: ["*"], usergroups: [], channels: [] },
  instanceScope: { requiredTags: {} },
});

/** An EC2 client on a session with the role's own permissions, as `userId` (the SourceIdentity). */
function clientAs(fake: FakeAws, userId: string, parameters: Parameters = {}): EC2Client {
  const credentials = createSessionFactory({
    endpoint: fake.url,
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  })({
    target: roleAsSession,
    region: REGION,
    policy: JSON.parse(rolePolicy(parameters)) as PolicyDocument,
    userId,
    channelId: "none",
  });
  return new EC2Client({ region: REGION, credentials, endpoint: fake.url, maxAttempts: 1 });
}

describe("the watcher's Deny over the SDK wire", () => {
  let fake: FakeAws;

  beforeAll(async () => {
    fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
    fake.addInstance({ instanceId: INSTANCE, tags: { "ami-bot:allowed": "true" } });
  });
  afterAll(async () => {
    await fake.close();
  });

  const createAs = (userId: string) => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: `job-${userId}` }];
    return clientAs(fake, userId)
      .send(
        new CreateImageCommand({
          InstanceId: INSTANCE,
          Name: `as-${userId}`,
          TagSpecifications: [
            { ResourceType: "image", Tags: tags },
            { ResourceType: "snapshot", Tags: tags },
          ],
        }),
      )
      .then(
        (out) => out.ImageId ?? "none",
        (e: unknown) => translateEc2Error(e).code,
      );
  };

  it("refuses CreateImage to a session whose SourceIdentity is ami-bot-watcher, and not to others", async () => {
    expect(await createAs("ami-bot-watcher")).toBe("access_denied");
    expect(await createAs("U0REQUEST1")).toMatch(/^ami-/);
    expect(await createAs("ami-bot-doctor")).toMatch(/^ami-/);
    expect([...fake.sessions.values()].map((s) => s.sourceIdentity)).toEqual([
      "ami-bot-watcher",
      "U0REQUEST1",
      "ami-bot-doctor",
    ]);
  });
});

describe("a cancel under the role's permissions, over the SDK wire", () => {
  let fake: FakeAws;
  let client: EC2Client;

  beforeAll(async () => {
    fake = await startFakeAws({ accountId: ACCOUNT, roles: { [ROLE_ARN]: {} } });
    fake.addInstance({ instanceId: INSTANCE, tags: { "ami-bot:allowed": "true" }, volumes: 2 });
    client = clientAs(fake, "U0REQUEST1");
  });
  afterAll(async () => {
    await fake.close();
  });

  const deregister = (imageId: string) =>
    client.send(new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true })).then(
      (out) => out.DeleteSnapshotResults?.map((r) => r.ReturnCode) ?? [],
      (e: unknown) => translateEc2Error(e).code,
    );

  it("deregisters an image ami-bot made and deletes its snapshots, and not an image made by hand", async () => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-1" }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: "to-cancel",
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    const made = out.ImageId ?? "";
    const snapshots = fake.images.get(made)?.snapshots.map((s) => s.snapshotId) ?? [];
    expect(snapshots).toHaveLength(2);
    expect(await deregister(made)).toEqual(["success", "success"]);
    expect(fake.images.has(made)).toBe(false);
    for (const id of snapshots) expect(fake.snapshots.has(id)).toBe(false);

    const byHand = fake.addImage({ name: "golden", region: REGION });
    expect(await deregister(byHand.imageId)).toBe("access_denied");
    expect(fake.images.has(byHand.imageId)).toBe(true);
  });

  it("refuses the bot's own reader sessions (SourceIdentity ami-bot-watcher) any deregistration", async () => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-2" }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: "not-for-the-watcher",
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    const refused = await clientAs(fake, "ami-bot-watcher")
      .send(new DeregisterImageCommand({ ImageId: out.ImageId, DeleteAssociatedSnapshots: true }))
      .then(
        () => "deregistered",
        (e: unknown) => translateEc2Error(e).code,
      );
    expect(refused).toBe("access_denied");
    expect(fake.images.has(out.ImageId ?? "")).toBe(true);
  });

  it("lets the keep rule's daily sweep remove an image and its snapshots only with AllowCleanup", async () => {
    const tags: Tag[] = [{ Key: "ami-bot:job-id", Value: "job-3" }];
    const out = await client.send(
      new CreateImageCommand({
        InstanceId: INSTANCE,
        Name: "old-enough-to-go",
        TagSpecifications: [
          { ResourceType: "image", Tags: tags },
          { ResourceType: "snapshot", Tags: tags },
        ],
      }),
    );
    const made = out.ImageId ?? "";
    const snapshots = fake.images.get(made)?.snapshots.map((s) => s.snapshotId) ?? [];
    const sweepAs = (userId: string, parameters: Parameters) =>
      clientAs(fake, userId, parameters)
        .send(new DeregisterImageCommand({ ImageId: made, DeleteAssociatedSnapshots: true }))
        .then(
          (o) => o.DeleteSnapshotResults?.map((r) => r.ReturnCode) ?? [],
          (e: unknown) => translateEc2Error(e).code,
        );
    expect(await sweepAs(KEEP_RULE_IDENTITY, {})).toBe("access_denied");
    expect(await sweepAs("ami-bot-watcher", { AllowCleanup: "true" })).toBe("access_denied");
    expect(fake.images.has(made)).toBe(true);
    expect(await sweepAs(KEEP_RULE_IDENTITY, { AllowCleanup: "true" })).toEqual(["success", "success"]);
    expect(fake.images.has(made)).toBe(false);
    for (const id of snapshots) expect(fake.snapshots.has(id)).toBe(false);

    const byHand = fake.addImage({ name: "golden-2", region: REGION });
    const refused = await clientAs(fake, KEEP_RULE_IDENTITY, { AllowCleanup: "true" })
      .send(new DeregisterImageCommand({ ImageId: byHand.imageId, DeleteAssociatedSnapshots: true }))
      .then(
        () => "deregistered",
        (e: unknown) => translateEc2Error(e).code,
      );
    expect(refused).toBe("access_denied");
    expect(fake.images.has(byHand.imageId)).toBe(true);
  });
});
