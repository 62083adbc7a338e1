/**
 * The sessions of the steps after an image, judged statement by statement by fake-aws's policy evaluator:
 * a copy may read only the job's own source image and make new images in its destination region (and use a
 * KMS key only through EC2 there); sharing adds only the chosen accounts, never a group, to only the job's
 * image and snapshots; the keep rule's sweep reads one region and removes only images and snapshots that
 * carry ami-bot's job-id tag. Malformed ids throw rather than widen a policy, and the longest realistic
 * policies fit AWS's limit (or throw saying so).
 */
import { describe, expect, it } from "vitest";
import {
  cleanupImagePolicy,
  cleanupReadPolicy,
  copyImagePolicy,
  MAX_SESSION_POLICY_CHARS,
  type PolicyScope,
  shareImagePolicy,
} from "../../../src/aws/session-policy.js";
import { type PolicyContext, sessionPolicyPermits } from "../../fakes/fake-aws.js";

const ACCOUNT = "123456789012";
const SOURCE = "eu-west-1";
const DEST = "us-east-1";
const ELSEWHERE = "ap-southeast-2";
const IMAGE = "ami-0123456789abcdef0";
const OTHER_IMAGE = "ami-0fedcba9876543210";
const SNAP = "snap-0123456789abcdef0";
const SNAP_2 = "snap-0123456789abcdef1";
const OTHER_SNAP = "snap-0fedcba9876543210";
const JOB = "0b6f7c1e-5d2a-4c39-9a57-2f1e8d4b6a10";
const KEY = `arn:aws:kms:${DEST}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const OTHER_KEY = `arn:aws:kms:${DEST}:${ACCOUNT}:key/0000abcd-12ab-34cd-56ef-1234567890ab`;
const FRIEND = "111111111111";
const FRIEND_2 = "222222222222";
const STRANGER = "999999999999";

const at = (region: string): PolicyScope => ({ partition: "aws", accountId: ACCOUNT, region });
const arn = {
  image: (region: string, id = IMAGE) => `arn:aws:ec2:${region}::image/${id}`,
  snapshot: (region: string, id = SNAP) => `arn:aws:ec2:${region}::snapshot/${id}`,
  newImage: (region: string) => `arn:aws:ec2:${region}::image/*`,
  instance: (region: string) => `arn:aws:ec2:${region}:${ACCOUNT}:instance/i-0123456789abcdef0`,
  volume: (region: string) => `arn:aws:ec2:${region}:${ACCOUNT}:volume/vol-0123456789abcdef0`,
};
/** A call made in `region` on resources carrying `job` as their ami-bot:job-id tag (none when undefined). */
const call = (region: string, job: string | undefined, extra: PolicyContext = {}): PolicyContext => ({
  "aws:RequestedRegion": region,
  ...(job !== undefined && { "aws:ResourceTag/ami-bot:job-id": job, "ec2:ResourceTag/ami-bot:job-id": job }),
  ...extra,
});
const permits = (policy: unknown, action: string, resources: string[], context: PolicyContext) =>
  sessionPolicyPermits(JSON.stringify(policy), action, resources, context);
const sids = (policy: { Statement: readonly { Sid: string }[] }) => policy.Statement.map((s) => s.Sid);

describe("copyImagePolicy: the destination region's CopyImage session", () => {
  const policy = copyImagePolicy(at(DEST), { region: SOURCE, imageId: IMAGE }, JOB, undefined);
  const copying = { "ec2:CreateAction": "CopyImage" };

  it("has exactly the source, destination and tagging statements without a key", () => {
    expect(sids(policy)).toEqual([
      "CopyThisJobsImageOnly",
      "IntoNewImageInDestinationRegion",
      "TagOnlyWhatCopyImageMakes",
    ]);
  });

  it("allows copying the named source image and its snapshots while they carry the job's tag", () => {
    const source = [arn.image(SOURCE), arn.snapshot(SOURCE), arn.snapshot(SOURCE, SNAP_2)];
    expect(permits(policy, "ec2:CopyImage", source, call(DEST, JOB))).toBe(true);
  });

  it("allows the new image and snapshots in the destination region, and tagging them as part of CopyImage", () => {
    const created = [arn.newImage(DEST), arn.snapshot(DEST, "*")];
    expect(permits(policy, "ec2:CopyImage", created, call(DEST, undefined))).toBe(true);
    expect(permits(policy, "ec2:CreateTags", created, call(DEST, undefined, copying))).toBe(true);
  });

  // biome-ignore format: a table
  const refused: [string, string, string[], PolicyContext][] = [
    ["copying another image, though it carries the job's tag", "ec2:CopyImage", [arn.image(SOURCE, OTHER_IMAGE)], call(DEST, JOB)],
    ["copying the source image without a job-id tag", "ec2:CopyImage", [arn.image(SOURCE)], call(DEST, undefined)],
    ["copying the source image once it carries another job's tag", "ec2:CopyImage", [arn.image(SOURCE)], call(DEST, "another-job")],
    ["copying the same image id from a third region", "ec2:CopyImage", [arn.image(ELSEWHERE)], call(DEST, JOB)],
    ["copying snapshots without the job's tag", "ec2:CopyImage", [arn.snapshot(SOURCE)], call(DEST, "another-job")],
    ["a new image in another destination region", "ec2:CopyImage", [arn.newImage(ELSEWHERE)], call(ELSEWHERE, undefined)],
    ["new snapshots in another destination region", "ec2:CopyImage", [arn.snapshot(ELSEWHERE, "*")], call(ELSEWHERE, undefined)],
    ["a new image in the destination region, asked from another region", "ec2:CopyImage", [arn.newImage(DEST)], call(ELSEWHERE, undefined)],
    ["CreateTags on an existing image (no CopyImage)", "ec2:CreateTags", [arn.image(DEST, OTHER_IMAGE)], call(DEST, JOB)],
    ["CreateTags as part of CreateImage", "ec2:CreateTags", [arn.newImage(DEST)], call(DEST, undefined, { "ec2:CreateAction": "CreateImage" })],
    ["CreateTags on the source image, during CopyImage", "ec2:CreateTags", [arn.image(SOURCE)], call(DEST, JOB, copying)],
    ["CreateTags on an instance, during CopyImage", "ec2:CreateTags", [arn.instance(DEST)], call(DEST, undefined, copying)],
    ["CreateTags on a volume, during CopyImage", "ec2:CreateTags", [arn.volume(DEST)], call(DEST, undefined, copying)],
    ["sharing the copy", "ec2:ModifyImageAttribute", [arn.image(DEST)], call(DEST, JOB)],
    ["deregistering the source", "ec2:DeregisterImage", [arn.image(SOURCE)], call(DEST, JOB)],
    ["deleting a snapshot", "ec2:DeleteSnapshot", [arn.snapshot(DEST)], call(DEST, JOB)],
    ["CreateImage", "ec2:CreateImage", [arn.instance(DEST), arn.newImage(DEST)], call(DEST, JOB)],
    ["CopySnapshot", "ec2:CopySnapshot", [arn.snapshot(SOURCE)], call(DEST, JOB)],
    ["DescribeImages", "ec2:DescribeImages", ["*"], call(DEST, undefined)],
    ["any KMS use without a key", "kms:Decrypt", [KEY], call(DEST, undefined, { "kms:ViaService": `ec2.${DEST}.amazonaws.com` })],
  ];
  for (const [what, action, resources, context] of refused)
    it(`refuses ${what}`, () => {
      expect(permits(policy, action, resources, context)).toBe(false);
    });

  it("refuses a copy into the source's own region, where image/* would name any image", () => {
    expect(() => copyImagePolicy(at(SOURCE), { region: SOURCE, imageId: IMAGE }, JOB, undefined)).toThrow(
      /another region/,
    );
  });

  it("names the partition in every ARN", () => {
    const gov = copyImagePolicy(
      { partition: "aws-us-gov", accountId: ACCOUNT, region: "us-gov-east-1" },
      { region: "us-gov-west-1", imageId: IMAGE },
      JOB,
      undefined,
    );
    const resources = gov.Statement.flatMap((s) => s.Resource);
    expect(resources).toContain(`arn:aws-us-gov:ec2:us-gov-west-1::image/${IMAGE}`);
    for (const r of resources) expect(r).toMatch(/^arn:aws-us-gov:ec2:us-gov-(west|east)-1::/);
  });
});

describe("copyImagePolicy with a KMS key", () => {
  const viaEc2 = (region = DEST, suffix = "amazonaws.com") => ({
    "kms:ViaService": `ec2.${region}.${suffix}`,
  });
  const forEbs = { "kms:GrantIsForAWSResource": "true" };
  const keyActions = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
  ];
  const policy = copyImagePolicy(at(DEST), { region: SOURCE, imageId: IMAGE }, JOB, KEY);

  it("adds the key's two statements", () => {
    expect(sids(policy)).toEqual([
      "CopyThisJobsImageOnly",
      "IntoNewImageInDestinationRegion",
      "TagOnlyWhatCopyImageMakes",
      "UseThisKeyOnlyThroughEc2",
      "GrantOnThisKeyOnlyToEbs",
    ]);
  });

  it("lets EC2 in the destination region use exactly that key to encrypt the copy", () => {
    for (const action of keyActions)
      expect(permits(policy, action, [KEY], call(DEST, undefined, viaEc2())), action).toBe(true);
    expect(permits(policy, "kms:CreateGrant", [KEY], call(DEST, undefined, { ...viaEc2(), ...forEbs }))).toBe(
      true,
    );
  });

  // biome-ignore format: a table
  const refused: [string, string, string, PolicyContext][] = [
    ["another key", "kms:Decrypt", OTHER_KEY, viaEc2()],
    ["the key called directly, not through EC2", "kms:Decrypt", KEY, {}],
    ["the key through EC2 in another region", "kms:Decrypt", KEY, viaEc2(ELSEWHERE)],
    ["the key through another service", "kms:Decrypt", KEY, { "kms:ViaService": `rds.${DEST}.amazonaws.com` }],
    ["a grant that is not for an AWS resource", "kms:CreateGrant", KEY, { ...viaEc2(), "kms:GrantIsForAWSResource": "false" }],
    ["a grant without the GrantIsForAWSResource key", "kms:CreateGrant", KEY, viaEc2()],
    ["a grant made directly", "kms:CreateGrant", KEY, forEbs],
    ["GenerateDataKey (with plaintext)", "kms:GenerateDataKey", KEY, viaEc2()],
    ["changing the key policy", "kms:PutKeyPolicy", KEY, viaEc2()],
    ["deleting the key", "kms:ScheduleKeyDeletion", KEY, viaEc2()],
    ["revoking grants", "kms:RevokeGrant", KEY, viaEc2()],
  ];
  for (const [what, action, key, extra] of refused)
    it(`refuses ${what}`, () => {
      expect(permits(policy, action, [key], call(DEST, undefined, extra))).toBe(false);
    });

  it("for an alias ARN, names the account's keys but allows only the key whose alias it is", () => {
    const alias = copyImagePolicy(
      at(DEST),
      { region: SOURCE, imageId: IMAGE },
      JOB,
      `arn:aws:kms:${DEST}:${ACCOUNT}:alias/ami-copies`,
    );
    const aliased = (aliases: string[] | undefined) =>
      call(DEST, undefined, { ...viaEc2(), ...(aliases && { "kms:ResourceAliases": aliases }) });
    expect(permits(alias, "kms:Decrypt", [KEY], aliased(["alias/ami-copies"]))).toBe(true);
    expect(permits(alias, "kms:CreateGrant", [KEY], { ...aliased(["alias/ami-copies"]), ...forEbs })).toBe(
      true,
    );
    // A key with no alias, another alias, or more aliases than that one; and a key in another account.
    expect(permits(alias, "kms:Decrypt", [KEY], aliased(undefined))).toBe(false);
    expect(permits(alias, "kms:Decrypt", [KEY], aliased(["alias/other"]))).toBe(false);
    expect(permits(alias, "kms:Decrypt", [KEY], aliased(["alias/ami-copies", "alias/other"]))).toBe(false);
    const foreign = `arn:aws:kms:${DEST}:${STRANGER}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    expect(permits(alias, "kms:Decrypt", [foreign], aliased(["alias/ami-copies"]))).toBe(false);
    // Never through another region's EC2.
    expect(
      permits(alias, "kms:Decrypt", [KEY], { ...aliased(["alias/ami-copies"]), ...viaEc2(ELSEWHERE) }),
    ).toBe(false);
  });

  it("names EC2's endpoint in the China partition with its own suffix", () => {
    const cn = copyImagePolicy(
      { partition: "aws-cn", accountId: ACCOUNT, region: "cn-northwest-1" },
      { region: "cn-north-1", imageId: IMAGE },
      JOB,
      `arn:aws-cn:kms:cn-northwest-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    );
    const key = `arn:aws-cn:kms:cn-northwest-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
    expect(permits(cn, "kms:Decrypt", [key], viaEc2("cn-northwest-1", "amazonaws.com.cn"))).toBe(true);
    expect(permits(cn, "kms:Decrypt", [key], viaEc2("cn-northwest-1"))).toBe(false);
  });

  it("refuses a key ARN that is malformed, a wildcard, or not of the destination's partition and region", () => {
    const keys = [
      "*",
      "",
      "1234abcd-12ab-34cd-56ef-1234567890ab",
      "alias/ami-copies",
      `arn:aws:kms:${DEST}:${ACCOUNT}:key/*`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:key/1234?`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:alias/*`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:alias/ami-*`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:alias/\${aws:username}`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:key/`,
      `arn:aws:kms:${DEST}:*:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws:kms:${DEST}:12345678901:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws:kms:${SOURCE}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws:kms:*:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws-cn:kms:${DEST}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws:ec2:${DEST}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      `arn:aws:kms:${DEST}:${ACCOUNT}:grant/1234abcd`,
      `${KEY}\n`,
      ` ${KEY}`,
    ];
    for (const key of keys)
      expect(() => copyImagePolicy(at(DEST), { region: SOURCE, imageId: IMAGE }, JOB, key), key).toThrow(
        /KMS/,
      );
  });
});

describe("copyImagePolicy's inputs", () => {
  const copy = (destination: PolicyScope, region: string, imageId: string, jobId: string) =>
    copyImagePolicy(destination, { region, imageId }, jobId, undefined);

  it("throws on a malformed image id, job id, region or partition", () => {
    // biome-ignore format: a list
    const images = ["*", "ami-*", "ami-?", "", "ami-0123456789abcdef", "ami-0123456789ABCDEF0", "snap-0123456789abcdef0", " ami-0123456789abcdef0", "ami-0123456789abcdef0/*"];
    for (const id of images) expect(() => copy(at(DEST), SOURCE, id, JOB), id).toThrow(/image id/);
    const jobs = ["*", "job-?", "", "job 1", "job/1", `j${"x".repeat(64)}`, 'job"1'];
    for (const id of jobs) expect(() => copy(at(DEST), SOURCE, IMAGE, id), id).toThrow(/job id/);
    for (const region of ["*", "", "eu-*", "EU-WEST-1", "eu-west-1 "]) {
      expect(() => copy(at(region), SOURCE, IMAGE, JOB), region).toThrow(/region/);
      expect(() => copy(at(DEST), region, IMAGE, JOB), region).toThrow(/region/);
    }
    for (const partition of ["*", "", "aws*", "arn"])
      expect(() => copy({ ...at(DEST), partition }, SOURCE, IMAGE, JOB), partition).toThrow(/partition/);
  });

  it("stays within AWS's limit with a realistic key or alias, and throws on an absurd alias", () => {
    const longest = { partition: "aws-us-gov", accountId: ACCOUNT, region: "ap-southeast-4" };
    const source = { region: "ap-northeast-3", imageId: IMAGE };
    const kms = (name: string) => `arn:aws-us-gov:kms:ap-southeast-4:${ACCOUNT}:${name}`;
    for (const name of [`key/mrk-${"f".repeat(32)}`, `alias/${"a".repeat(100)}`])
      expect(
        JSON.stringify(copyImagePolicy(longest, source, "x".repeat(64), kms(name))).length,
      ).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);
    expect(() => copyImagePolicy(longest, source, "x".repeat(64), kms(`alias/${"a".repeat(250)}`))).toThrow(
      /2048/,
    );
  });
});

describe("shareImagePolicy: launch and create-volume permission for the chosen accounts", () => {
  const policy = shareImagePolicy(at(SOURCE), IMAGE, [SNAP, SNAP_2], JOB, [FRIEND, FRIEND_2]);
  const adding = (users: string[] | undefined, groups?: string[]): PolicyContext => ({
    ...(users && { "ec2:Add/userId": users }),
    ...(groups && { "ec2:Add/group": groups }),
  });
  const snapshots = [arn.snapshot(SOURCE), arn.snapshot(SOURCE, SNAP_2)];

  it("has an image statement and a snapshot statement", () => {
    expect(sids(policy)).toEqual(["ShareThisJobsImageOnly", "ShareSnapshotsWithTheseAccountsOnly"]);
  });

  it("allows the job's image, and its snapshots for those accounts only", () => {
    expect(permits(policy, "ec2:ModifyImageAttribute", [arn.image(SOURCE)], call(SOURCE, JOB))).toBe(true);
    for (const users of [[FRIEND], [FRIEND_2], [FRIEND, FRIEND_2]])
      expect(
        permits(policy, "ec2:ModifySnapshotAttribute", snapshots, call(SOURCE, JOB, adding(users))),
        users.join(),
      ).toBe(true);
  });

  // biome-ignore format: a table
  const refused: [string, string, string[], PolicyContext][] = [
    ["a snapshot shared with a stranger", "ec2:ModifySnapshotAttribute", snapshots, call(SOURCE, JOB, adding([STRANGER]))],
    ["a snapshot shared with a friend and a stranger", "ec2:ModifySnapshotAttribute", snapshots, call(SOURCE, JOB, adding([FRIEND, STRANGER]))],
    ["a public snapshot (group all)", "ec2:ModifySnapshotAttribute", snapshots, call(SOURCE, JOB, adding(undefined, ["all"]))],
    ["a public snapshot alongside the friends", "ec2:ModifySnapshotAttribute", snapshots, call(SOURCE, JOB, adding([FRIEND], ["all"]))],
    ["another snapshot, though it carries the job's tag", "ec2:ModifySnapshotAttribute", [arn.snapshot(SOURCE, OTHER_SNAP)], call(SOURCE, JOB, adding([FRIEND]))],
    ["the snapshot without a job-id tag", "ec2:ModifySnapshotAttribute", [arn.snapshot(SOURCE)], call(SOURCE, undefined, adding([FRIEND]))],
    ["the snapshot with another job's tag", "ec2:ModifySnapshotAttribute", [arn.snapshot(SOURCE)], call(SOURCE, "another-job", adding([FRIEND]))],
    ["the same snapshot id in another region", "ec2:ModifySnapshotAttribute", [arn.snapshot(ELSEWHERE)], call(ELSEWHERE, JOB, adding([FRIEND]))],
    ["another image, though it carries the job's tag", "ec2:ModifyImageAttribute", [arn.image(SOURCE, OTHER_IMAGE)], call(SOURCE, JOB)],
    ["the image without a job-id tag", "ec2:ModifyImageAttribute", [arn.image(SOURCE)], call(SOURCE, undefined)],
    ["the image with another job's tag", "ec2:ModifyImageAttribute", [arn.image(SOURCE)], call(SOURCE, "another-job")],
    ["the same image id in another region", "ec2:ModifyImageAttribute", [arn.image(ELSEWHERE)], call(ELSEWHERE, JOB)],
    ["ModifySnapshotAttribute on the image", "ec2:ModifySnapshotAttribute", [arn.image(SOURCE)], call(SOURCE, JOB, adding([FRIEND]))],
    ["ModifyImageAttribute on a snapshot", "ec2:ModifyImageAttribute", [arn.snapshot(SOURCE)], call(SOURCE, JOB)],
    ["re-tagging the image", "ec2:CreateTags", [arn.image(SOURCE)], call(SOURCE, JOB)],
    ["deregistering the image", "ec2:DeregisterImage", [arn.image(SOURCE)], call(SOURCE, JOB)],
    ["copying the image", "ec2:CopyImage", [arn.image(SOURCE)], call(SOURCE, JOB)],
    ["changing an instance", "ec2:ModifyInstanceAttribute", [arn.instance(SOURCE)], call(SOURCE, JOB)],
    ["sharing a volume's snapshot by ModifyVolume", "ec2:ModifyVolume", [arn.volume(SOURCE)], call(SOURCE, JOB)],
  ];
  for (const [what, action, resources, context] of refused)
    it(`refuses ${what}`, () => {
      expect(permits(policy, action, resources, context)).toBe(false);
    });

  it("lists each account and snapshot once, and leaves the snapshot statement out when there is none", () => {
    const twice = shareImagePolicy(at(SOURCE), IMAGE, [SNAP, SNAP], JOB, [FRIEND, FRIEND]);
    expect(twice.Statement[1]?.Resource).toEqual([arn.snapshot(SOURCE)]);
    expect(twice.Statement[1]?.Condition?.["ForAllValues:StringEquals"]).toEqual({
      "ec2:Add/userId": [FRIEND],
    });
    expect(sids(shareImagePolicy(at(SOURCE), IMAGE, [], JOB, [FRIEND]))).toEqual(["ShareThisJobsImageOnly"]);
  });

  it("throws on no account, a malformed account, snapshot, image or job id, or region", () => {
    const share = (accounts: string[], snapshotIds = [SNAP], imageId = IMAGE, jobId = JOB, region = SOURCE) =>
      shareImagePolicy(at(region), imageId, snapshotIds, jobId, accounts);
    expect(() => share([])).toThrow(/at least one account/);
    for (const account of ["all", "*", "", "12345678901", "1234567890123", "12345678901a", " 123456789012"])
      expect(() => share([FRIEND, account]), account).toThrow(/account id/);
    for (const id of ["*", "snap-*", "", "snap-0123456789ABCDEF0", "vol-0123456789abcdef0", `${SNAP}/*`])
      expect(() => share([FRIEND], [SNAP, id]), id).toThrow(/snapshot id/);
    for (const id of ["*", "ami-*", ""]) expect(() => share([FRIEND], [SNAP], id), id).toThrow(/image id/);
    for (const id of ["*", "", "job 1"])
      expect(() => share([FRIEND], [SNAP], IMAGE, id), id).toThrow(/job id/);
    expect(() => share([FRIEND], [SNAP], IMAGE, JOB, "*")).toThrow(/region/);
  });

  it("fits AWS's limit with 20 accounts and 16 snapshots, and throws clearly beyond", () => {
    const accounts = (n: number) => Array.from({ length: n }, (_, i) => String(100_000_000_000 + i));
    const snapshotIds = (n: number) =>
      Array.from({ length: n }, (_, i) => `snap-${i.toString(16).padStart(17, "f")}`);
    // The longest region in the commercial partition, and GovCloud's longest partition and region.
    for (const scope of [at("ap-southeast-4"), { ...at("us-gov-west-1"), partition: "aws-us-gov" }])
      expect(
        JSON.stringify(shareImagePolicy(scope, IMAGE, snapshotIds(16), JOB, accounts(20))).length,
        scope.region,
      ).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);
    expect(() => shareImagePolicy(at(SOURCE), IMAGE, snapshotIds(32), JOB, accounts(40))).toThrow(/2048/);
  });
});

describe("cleanupReadPolicy and cleanupImagePolicy: the keep rule's sweep", () => {
  const read = cleanupReadPolicy(at(SOURCE));
  const remove = cleanupImagePolicy(at(SOURCE), IMAGE, [SNAP, SNAP_2]);

  it("reads images and launch template versions in its region only", () => {
    for (const action of ["ec2:DescribeImages", "ec2:DescribeLaunchTemplateVersions"]) {
      expect(permits(read, action, ["*"], call(SOURCE, undefined)), action).toBe(true);
      expect(permits(read, action, ["*"], call(ELSEWHERE, undefined)), action).toBe(false);
    }
    for (const action of ["ec2:DescribeInstances", "ec2:DescribeSnapshots", "ec2:DeregisterImage"])
      expect(permits(read, action, ["*"], call(SOURCE, undefined)), action).toBe(false);
    expect(permits(read, "ec2:DeregisterImage", [arn.image(SOURCE)], call(SOURCE, JOB))).toBe(false);
  });

  it("removes the image and its own snapshots ami-bot made, whatever the job", () => {
    for (const job of [JOB, "another-job"]) {
      expect(permits(remove, "ec2:DeregisterImage", [arn.image(SOURCE)], call(SOURCE, job))).toBe(true);
      const snapshots = [arn.snapshot(SOURCE), arn.snapshot(SOURCE, SNAP_2)];
      expect(permits(remove, "ec2:DeleteSnapshot", snapshots, call(SOURCE, job))).toBe(true);
    }
  });

  // biome-ignore format: a table
  const refused: [string, string, string[], PolicyContext][] = [
    ["an untagged image (made by hand or another tool)", "ec2:DeregisterImage", [arn.image(SOURCE)], call(SOURCE, undefined)],
    ["an untagged snapshot of the image", "ec2:DeleteSnapshot", [arn.snapshot(SOURCE)], call(SOURCE, undefined)],
    ["another image, though it carries a job-id tag", "ec2:DeregisterImage", [arn.image(SOURCE, OTHER_IMAGE)], call(SOURCE, JOB)],
    ["another image's snapshot, though it carries a job-id tag", "ec2:DeleteSnapshot", [arn.snapshot(SOURCE, OTHER_SNAP)], call(SOURCE, JOB)],
    ["the same image id in another region", "ec2:DeregisterImage", [arn.image(ELSEWHERE)], call(ELSEWHERE, JOB)],
    ["the same snapshot id in another region", "ec2:DeleteSnapshot", [arn.snapshot(ELSEWHERE)], call(ELSEWHERE, JOB)],
    ["DeleteSnapshot on the image", "ec2:DeleteSnapshot", [arn.image(SOURCE)], call(SOURCE, JOB)],
    ["DeregisterImage of a snapshot ARN", "ec2:DeregisterImage", [arn.snapshot(SOURCE)], call(SOURCE, JOB)],
    ["tagging an image to make it removable", "ec2:CreateTags", [arn.image(SOURCE)], call(SOURCE, undefined)],
    ["removing tags", "ec2:DeleteTags", [arn.image(SOURCE), arn.snapshot(SOURCE)], call(SOURCE, JOB)],
    ["deleting a volume", "ec2:DeleteVolume", [arn.volume(SOURCE)], call(SOURCE, JOB)],
    ["terminating an instance", "ec2:TerminateInstances", [arn.instance(SOURCE)], call(SOURCE, JOB)],
    ["deleting a launch template", "ec2:DeleteLaunchTemplate", ["*"], call(SOURCE, JOB)],
    ["DescribeImages under the removal session", "ec2:DescribeImages", ["*"], call(SOURCE, undefined)],
  ];
  for (const [what, action, resources, context] of refused)
    it(`refuses ${what}`, () => {
      expect(permits(remove, action, resources, context)).toBe(false);
    });

  it("builds the removal policy from exactly the image, its snapshots and the region", () => {
    const tagged = { Null: { "aws:ResourceTag/ami-bot:job-id": "false" } };
    const gov = { ...at(SOURCE), partition: "aws-us-gov" };
    expect(cleanupImagePolicy(gov, IMAGE, [SNAP, SNAP_2, SNAP])).toEqual({
      Version: "2012-10-17",
      Statement: [
        {
          Sid: "DeregisterThisAmiBotImageOnly",
          Effect: "Allow",
          Action: "ec2:DeregisterImage",
          Resource: `arn:aws-us-gov:ec2:${SOURCE}::image/${IMAGE}`,
          Condition: tagged,
        },
        {
          Sid: "DeleteThisImagesAmiBotSnapshotsOnly",
          Effect: "Allow",
          Action: "ec2:DeleteSnapshot",
          Resource: [
            `arn:aws-us-gov:ec2:${SOURCE}::snapshot/${SNAP}`,
            `arn:aws-us-gov:ec2:${SOURCE}::snapshot/${SNAP_2}`,
          ],
          Condition: tagged,
        },
      ],
    });
  });

  it("leaves DeleteSnapshot out for an image without snapshots", () => {
    const bare = cleanupImagePolicy(at(SOURCE), IMAGE, []);
    expect(sids(bare)).toEqual(["DeregisterThisAmiBotImageOnly"]);
    expect(permits(bare, "ec2:DeregisterImage", [arn.image(SOURCE)], call(SOURCE, JOB))).toBe(true);
    expect(permits(bare, "ec2:DeleteSnapshot", [arn.snapshot(SOURCE)], call(SOURCE, JOB))).toBe(false);
  });

  it("fits AWS's limit with an image's realistic snapshots, and throws rather than send a longer one", () => {
    const snapshotIds = (count: number) =>
      Array.from({ length: count }, (_, i) => `snap-${i.toString(16).padStart(17, "0")}`);
    const gov = { ...at("us-gov-west-1"), partition: "aws-us-gov" };
    expect(JSON.stringify(cleanupImagePolicy(gov, IMAGE, snapshotIds(20))).length).toBeLessThanOrEqual(
      MAX_SESSION_POLICY_CHARS,
    );
    expect(() => cleanupImagePolicy(gov, IMAGE, snapshotIds(40))).toThrow(/2048/);
  });

  it("throws on a malformed image id, snapshot id, region or partition", () => {
    for (const id of ["*", "ami-*", "", "ami-0123456789abcdef0*", "snap-0123456789abcdef0"])
      expect(() => cleanupImagePolicy(at(SOURCE), id, [SNAP]), id).toThrow(/image id/);
    for (const id of ["*", "snap-*", "", "snap-1", `${SNAP}*`, "ami-0123456789abcdef0", `${SNAP}/x`])
      expect(() => cleanupImagePolicy(at(SOURCE), IMAGE, [SNAP, id]), id).toThrow(/snapshot id/);
    for (const region of ["*", "", "eu-*"]) {
      expect(() => cleanupImagePolicy(at(region), IMAGE, [SNAP]), region).toThrow(/region/);
      expect(() => cleanupReadPolicy(at(region)), region).toThrow(/region/);
    }
    expect(() => cleanupImagePolicy({ ...at(SOURCE), partition: "*" }, IMAGE, [SNAP])).toThrow(/partition/);
  });
});
