/**
 * The keep rule's EC2 adapter: the exact requests against aws-sdk-client-mock (paging, filters, sessions),
 * then over the SDK wire against fake-aws, which enforces each session policy as EC2 would.
 */
import {
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { Ec2Cleanup } from "../../../src/aws/ec2-cleanup.js";
import type { SessionRequest } from "../../../src/aws/scoped-credentials.js";
import { cleanupImagePolicy, cleanupReadPolicy } from "../../../src/aws/session-policy.js";
import type { Place } from "../../../src/domain/ports.js";
import type { FakeAws } from "../../fakes/fake-aws.js";
import {
  ACCOUNT,
  adapterTarget,
  awsError,
  REGION,
  recordingSessions,
  refusal,
  requester,
  startAdapterFake,
} from "../../support/ec2-adapter.js";

const IMAGE = "ami-0123456789abcdef0";
const SNAPSHOTS = ["snap-0123456789abcdef0", "snap-0123456789abcdef1"];
const target = adapterTarget();
const place: Place = { target, region: REGION };
const scope = { partition: "aws", accountId: ACCOUNT, region: REGION };

describe("Ec2Cleanup with a mocked EC2 client", () => {
  const ec2 = mockClient(EC2Client);
  let sessionRequests: SessionRequest[];
  let cleanup: Ec2Cleanup;

  beforeEach(() => {
    ec2.reset();
    const { sessions, requests } = recordingSessions();
    sessionRequests = requests;
    cleanup = new Ec2Cleanup({ sessions });
  });
  afterAll(() => ec2.restore());

  it("lists ours by the job-id tag, page after page, under one read-only session", async () => {
    ec2
      .on(DescribeImagesCommand)
      .resolvesOnce({
        Images: [
          {
            ImageId: IMAGE,
            Name: "web-1 nightly",
            CreationDate: "2026-01-02T03:04:05.000Z",
            State: "available",
            SourceInstanceId: "i-0source00000000000",
            DeregistrationProtection: "disabled",
            Tags: [{ Key: "ami-bot:job-id", Value: "job-1" }],
            BlockDeviceMappings: [
              { DeviceName: "/dev/xvda", Ebs: { SnapshotId: "snap-1" } },
              { DeviceName: "/dev/sdb" },
            ],
          },
        ],
        NextToken: "page-2",
      })
      .resolvesOnce({
        Images: [
          {
            ImageId: "ami-0fedcba9876543210",
            CreationDate: "not a date",
            State: "available",
            SourceInstanceId: "i-0source00000000000",
            DeregistrationProtection: "enabled-with-cooldown",
            Tags: [
              { Key: "ami-bot:job-id", Value: "job-2" },
              { Key: "ami-bot:instance-id", Value: "i-0tagged00000000000" },
            ],
          },
        ],
      });
    const images = await cleanup.listBotImages(place);
    expect(images).toEqual([
      {
        imageId: IMAGE,
        region: REGION,
        name: "web-1 nightly",
        createdAt: Date.parse("2026-01-02T03:04:05.000Z"),
        instanceId: "i-0source00000000000",
        jobId: "job-1",
        state: "available",
        protected: false,
        snapshotIds: ["snap-1"],
      },
      {
        imageId: "ami-0fedcba9876543210",
        region: REGION,
        name: undefined,
        createdAt: undefined,
        instanceId: "i-0tagged00000000000",
        jobId: "job-2",
        state: "available",
        protected: true,
        snapshotIds: [],
      },
    ]);
    const filters = { Owners: ["self"], Filters: [{ Name: "tag-key", Values: ["ami-bot:job-id"] }] };
    expect(ec2).toHaveReceivedCommandTimes(DescribeImagesCommand, 2);
    expect(ec2).toHaveReceivedNthCommandWith(DescribeImagesCommand, 1, { ...filters, MaxResults: 1000 });
    expect(ec2).toHaveReceivedNthCommandWith(DescribeImagesCommand, 2, {
      ...filters,
      MaxResults: 1000,
      NextToken: "page-2",
    });
    ec2.on(DescribeLaunchTemplateVersionsCommand).resolves({ LaunchTemplateVersions: [] });
    await cleanup.inLaunchTemplates(place, [IMAGE]);
    expect(sessionRequests.map((r) => r.policy)).toEqual([cleanupReadPolicy(scope)]);
    expect(sessionRequests[0]?.userId).toBe("ami-bot-cleanup");
  });

  it("asks about $Latest and $Default of every template, 200 image ids a call, and names those in use", async () => {
    const ids = Array.from({ length: 250 }, (_, i) => `ami-${i.toString(16).padStart(17, "0")}`);
    ec2
      .on(DescribeLaunchTemplateVersionsCommand)
      .resolvesOnce({
        LaunchTemplateVersions: [{ LaunchTemplateData: { ImageId: ids[3] } }],
        NextToken: "more",
      })
      .resolvesOnce({ LaunchTemplateVersions: [{ LaunchTemplateData: { ImageId: "ami-0notasked0000000" } }] })
      .resolvesOnce({ LaunchTemplateVersions: [{ LaunchTemplateData: { ImageId: ids[240] } }] });
    expect(await cleanup.inLaunchTemplates(place, ids)).toEqual(new Set([ids[3], ids[240]]));
    const base = { Versions: ["$Latest", "$Default"], MaxResults: 200 };
    expect(ec2).toHaveReceivedNthCommandWith(DescribeLaunchTemplateVersionsCommand, 1, {
      ...base,
      Filters: [{ Name: "image-id", Values: ids.slice(0, 200) }],
    });
    expect(ec2).toHaveReceivedNthCommandWith(DescribeLaunchTemplateVersionsCommand, 2, {
      ...base,
      Filters: [{ Name: "image-id", Values: ids.slice(0, 200) }],
      NextToken: "more",
    });
    expect(ec2).toHaveReceivedNthCommandWith(DescribeLaunchTemplateVersionsCommand, 3, {
      ...base,
      Filters: [{ Name: "image-id", Values: ids.slice(200) }],
    });
  });

  it("asks nothing when there is nothing to ask about", async () => {
    expect(await cleanup.inLaunchTemplates(place, [])).toEqual(new Set());
    expect(ec2.calls()).toHaveLength(0);
  });

  it("deregisters with DeleteAssociatedSnapshots under a fresh session per image, naming it and its snapshots", async () => {
    ec2.on(DeregisterImageCommand).resolves({
      Return: true,
      DeleteSnapshotResults: [
        { SnapshotId: "snap-ok", ReturnCode: "success" },
        { SnapshotId: "snap-shared", ReturnCode: "skipped" },
        { SnapshotId: "snap-denied", ReturnCode: "missing-permissions" },
      ],
    });
    const out = await cleanup.deregister(place, requester, IMAGE, SNAPSHOTS);
    await cleanup.deregister(place, requester, IMAGE, SNAPSHOTS);
    expect(out).toEqual({
      notFound: false,
      snapshotsLeft: [{ snapshotId: "snap-denied", code: "missing-permissions" }],
    });
    expect(ec2).toHaveReceivedCommandWith(DeregisterImageCommand, {
      ImageId: IMAGE,
      DeleteAssociatedSnapshots: true,
    });
    const policy = cleanupImagePolicy(scope, IMAGE, SNAPSHOTS);
    expect(JSON.stringify(policy)).not.toContain("snapshot/*");
    const session = { target, region: REGION, policy, ...requester };
    expect(sessionRequests).toEqual([session, session]);
  });

  it("takes an image AWS no longer has as done, and says why AWS refused one", async () => {
    ec2
      .on(DeregisterImageCommand)
      .rejectsOnce(awsError("InvalidAMIID.NotFound", 400))
      .rejectsOnce(awsError("UnauthorizedOperation", 403))
      .rejectsOnce(awsError("InvalidParameterValue", 400));
    expect(await cleanup.deregister(place, requester, IMAGE, SNAPSHOTS)).toEqual({
      notFound: true,
      snapshotsLeft: [],
    });
    expect((await refusal(cleanup.deregister(place, requester, IMAGE, SNAPSHOTS))).code).toBe(
      "access_denied",
    );
    const other = await refusal(cleanup.deregister(place, requester, IMAGE, SNAPSHOTS));
    expect(other.userMessage).toContain("InvalidParameterValue");
  });

  it("translates a failed listing and opens a new read session after a denial", async () => {
    ec2
      .on(DescribeImagesCommand)
      .rejectsOnce(awsError("UnauthorizedOperation", 403))
      .resolves({ Images: [] });
    const error = await refusal(cleanup.listBotImages(place));
    expect(error.code).toBe("access_denied");
    expect(error.userMessage).toContain("ec2:DescribeImages");
    await cleanup.listBotImages(place);
    expect(sessionRequests).toHaveLength(2);
  });

  it("refuses to build a removal session for a malformed image or snapshot id, before asking AWS", async () => {
    await expect(cleanup.deregister(place, requester, "ami-*", SNAPSHOTS)).rejects.toThrow(/image id/);
    await expect(cleanup.deregister(place, requester, IMAGE, ["snap-*"])).rejects.toThrow(/snapshot id/);
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
    expect(sessionRequests).toEqual([]);
  });
});

describe("Ec2Cleanup over the SDK wire against fake-aws", () => {
  let fake: FakeAws;
  let cleanup: Ec2Cleanup;

  beforeAll(async () => {
    const { fake: started, sessions, clientFactory } = await startAdapterFake();
    fake = started;
    cleanup = new Ec2Cleanup({ sessions, clientFactory });
  });
  afterEach(() => {
    fake.requests.length = 0;
  });
  afterAll(async () => {
    await fake.close();
  });

  const ours = (jobId: string, extra: Partial<Parameters<FakeAws["addImage"]>[0]> = {}) =>
    fake.addImage({
      name: `web-1 ${jobId}`,
      region: REGION,
      tags: { "ami-bot:job-id": jobId, "ami-bot:instance-id": "i-0aaaaaaaaaaaaaaaa" },
      snapshots: 2,
      ...extra,
    });

  it("lists only our images, with protection, and finds those in launch templates", async () => {
    const plain = ours("job-a");
    const guarded = ours("job-b", { deregistrationProtection: true });
    fake.addImage({ name: "foreign", region: REGION });
    fake.addLaunchTemplate({ region: REGION, name: "web", imageId: guarded.imageId });
    const listed = await cleanup.listBotImages(place);
    expect(listed.map((i) => [i.imageId, i.protected, i.snapshotIds.length]).sort()).toEqual(
      [
        [plain.imageId, false, 2],
        [guarded.imageId, true, 2],
      ].sort(),
    );
    expect(await cleanup.inLaunchTemplates(place, [plain.imageId, guarded.imageId])).toEqual(
      new Set([guarded.imageId]),
    );
  });

  it("deregisters ours with its snapshots, and the session policy refuses an untagged image", async () => {
    const mine = ours("job-c");
    const snapshots = mine.snapshots.map((s) => s.snapshotId);
    expect(await cleanup.deregister(place, requester, mine.imageId, snapshots)).toEqual({
      notFound: false,
      snapshotsLeft: [],
    });
    expect(fake.images.has(mine.imageId)).toBe(false);
    for (const s of snapshots) expect(fake.snapshots.has(s)).toBe(false);

    const foreign = fake.addImage({ name: "not ours", region: REGION, snapshots: 1 });
    const foreignSnapshots = foreign.snapshots.map((s) => s.snapshotId);
    expect(
      (await refusal(cleanup.deregister(place, requester, foreign.imageId, foreignSnapshots))).code,
    ).toBe("access_denied");
    expect(fake.images.has(foreign.imageId)).toBe(true);
  });

  it("deletes only the snapshots it was given: another, though tagged, is kept and reported", async () => {
    const mine = ours("job-e");
    const [listed, unlisted] = mine.snapshots.map((s) => s.snapshotId);
    expect(await cleanup.deregister(place, requester, mine.imageId, [listed ?? ""])).toEqual({
      notFound: false,
      snapshotsLeft: [{ snapshotId: unlisted, code: "missing-permissions" }],
    });
    expect(fake.images.has(mine.imageId)).toBe(false);
    expect(fake.snapshots.has(listed ?? "")).toBe(false);
    expect(fake.snapshots.has(unlisted ?? "")).toBe(true);
  });

  it("is refused a protected image, which stays", async () => {
    const guarded = ours("job-d", { deregistrationProtection: true });
    const snapshots = guarded.snapshots.map((s) => s.snapshotId);
    const error = await refusal(cleanup.deregister(place, requester, guarded.imageId, snapshots));
    expect(error.code).toBe("unknown");
    expect(fake.images.has(guarded.imageId)).toBe(true);
  });
});
