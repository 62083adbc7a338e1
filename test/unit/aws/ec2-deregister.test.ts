/**
 * Cancel on the AWS side: Ec2Images.deregisterImage sends DeregisterImage with DeleteAssociatedSnapshots
 * under a fresh session allowed only that image and that job's snapshots. First the exact request against
 * aws-sdk-client-mock, then over the SDK wire against fake-aws, which enforces the session policy on the
 * image and on each snapshot, as EC2 does.
 */
import { DeregisterImageCommand, DescribeImagesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import "aws-sdk-client-mock-vitest/extend";
import { Ec2Images } from "../../../src/aws/ec2-images.js";
import type { SessionRequest } from "../../../src/aws/scoped-credentials.js";
import { cancelImagePolicy, watcherPolicy } from "../../../src/aws/session-policy.js";
import type { CreateImageParams, Place } from "../../../src/domain/ports.js";
import type { Target } from "../../../src/domain/target.js";
import type { FakeAws } from "../../fakes/fake-aws.js";
import {
  ACCOUNT,
  adapterTarget,
  awsError,
  INSTANCE,
  placeOf,
  REGION,
  recordingSessions,
  refusal,
  requester,
  SCOPE_TAG,
  startAdapterFake,
} from "../../support/ec2-adapter.js";

const IMAGE = "ami-0123456789abcdef0";

const target: Target = adapterTarget();
const place: Place = placeOf(target);
const scope = { partition: "aws", accountId: ACCOUNT, region: REGION };

describe("deregisterImage with a mocked EC2 client", () => {
  const ec2 = mockClient(EC2Client);
  let sessionRequests: SessionRequest[];
  let images: Ec2Images;

  beforeEach(() => {
    ec2.reset();
    const { sessions, requests } = recordingSessions();
    sessionRequests = requests;
    images = new Ec2Images({ sessions });
  });
  afterAll(() => ec2.restore());

  it("sends one DeregisterImage with DeleteAssociatedSnapshots under the job's cancel policy", async () => {
    ec2.on(DeregisterImageCommand).resolves({
      Return: true,
      DeleteSnapshotResults: [{ SnapshotId: "snap-1", ReturnCode: "success" }],
    });
    await images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE });
    expect(ec2).toHaveReceivedCommandExactlyOnceWith(DeregisterImageCommand, {
      ImageId: IMAGE,
      DeleteAssociatedSnapshots: true,
    });
    expect(sessionRequests).toEqual([
      {
        target,
        region: REGION,
        policy: cancelImagePolicy(scope, IMAGE, "job-1"),
        userId: "U0REQUEST1",
        channelId: "C0CHANNEL1",
      },
    ]);
  });

  it("makes a new session for every cancel, never reusing one", async () => {
    ec2.on(DescribeImagesCommand).resolves({ Images: [] });
    ec2.on(DeregisterImageCommand).resolves({ Return: true });
    await images.describeImages(place, [IMAGE]);
    await images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE });
    await images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE });
    expect(sessionRequests.map((r) => r.policy)).toEqual([
      watcherPolicy(scope),
      cancelImagePolicy(scope, IMAGE, "job-1"),
      cancelImagePolicy(scope, IMAGE, "job-1"),
    ]);
  });

  it.each(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"])(
    "resolves, saying AWS has no such image, when it answers %s",
    async (name) => {
      ec2.on(DeregisterImageCommand).rejects(awsError(name, 400));
      await expect(
        images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE }),
      ).resolves.toEqual({ leftBehind: undefined, notFound: true });
    },
  );

  it("translates a denial as access_denied, and does not take a malformed id for a gone image", async () => {
    ec2
      .on(DeregisterImageCommand)
      .rejectsOnce(awsError("UnauthorizedOperation", 403))
      .rejectsOnce(awsError("InvalidAMIID.Malformed", 400));
    const cancel = () => images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE });
    expect((await refusal(cancel())).code).toBe("access_denied");
    expect((await refusal(cancel())).code).toBe("unknown");
  });

  it("succeeds when AWS deregistered the image but could not delete a snapshot, naming it", async () => {
    ec2.on(DeregisterImageCommand).resolves({
      Return: true,
      DeleteSnapshotResults: [
        { SnapshotId: "snap-0aaaaaaaaaaaaaaaa", ReturnCode: "success" },
        { SnapshotId: "snap-0bbbbbbbbbbbbbbbb", ReturnCode: "skipped" },
        { SnapshotId: "snap-0cccccccccccccccc", ReturnCode: "missing-permissions" },
      ],
    });
    const { leftBehind } = await images.deregisterImage(place, requester, { jobId: "job-1", imageId: IMAGE });
    expect(leftBehind).toContain("snap-0cccccccccccccccc");
    expect(leftBehind).toContain("does not allow ami-bot to delete them");
    expect(leftBehind).not.toContain("snap-0bbbbbbbbbbbbbbbb");
  });

  it("refuses to build a session for a malformed image or job id, before asking AWS", async () => {
    for (const params of [
      { jobId: "job-1", imageId: "ami-*" },
      { jobId: "*", imageId: IMAGE },
    ])
      await expect(images.deregisterImage(place, requester, params)).rejects.toThrow();
    expect(sessionRequests).toEqual([]);
    expect(ec2.commandCalls(DeregisterImageCommand)).toHaveLength(0);
  });
});

describe("deregisterImage over the SDK wire against fake-aws", () => {
  let fake: FakeAws;
  let images: Ec2Images;

  const create = (jobId: string, imageName: string): CreateImageParams => ({
    jobId,
    instanceId: INSTANCE,
    imageName,
    description: undefined,
    noReboot: true,
    tags: [],
    excludedDevices: [],
  });

  beforeAll(async () => {
    const { fake: started, sessions, clientFactory } = await startAdapterFake();
    fake = started;
    images = new Ec2Images({ sessions, clientFactory });
    fake.addInstance({ instanceId: INSTANCE, name: "web-1", tags: SCOPE_TAG, volumes: 2 });
  });
  afterEach(() => {
    fake.requests.length = 0;
  });
  afterAll(async () => {
    await fake.close();
  });

  it("deregisters the job's pending image and deletes its snapshots in one DeregisterImage", async () => {
    const imageId = await images.createImage(place, requester, create("job-1", "cancel-1"));
    const snapshots = fake.images.get(imageId)?.snapshots.map((s) => s.snapshotId) ?? [];
    expect(snapshots).toHaveLength(2);

    await images.deregisterImage(place, requester, { jobId: "job-1", imageId });

    const calls = fake.calls("DeregisterImage");
    expect(calls).toHaveLength(1);
    expect(calls[0]?.params).toMatchObject({ ImageId: imageId, DeleteAssociatedSnapshots: "true" });
    expect(fake.images.has(imageId)).toBe(false);
    for (const id of snapshots) expect(fake.snapshots.has(id)).toBe(false);
    // The watcher no longer sees it.
    expect((await images.describeImages(place, [imageId])).has(imageId)).toBe(false);
    // Under a session allowed just that: the policy AssumeRole carried names the image and the job.
    const assume = fake.calls("AssumeRole").find((r) => JSON.stringify(r.policy).includes("DeregisterImage"));
    expect(assume?.policy?.Statement.flatMap((s) => s.Action).sort()).toEqual([
      "ec2:DeleteSnapshot",
      "ec2:DeregisterImage",
    ]);
  });

  it("is refused another job's image by the session policy, leaving it and its snapshots", async () => {
    const imageId = await images.createImage(place, requester, create("job-2", "cancel-2"));
    const snapshots = fake.images.get(imageId)?.snapshots.map((s) => s.snapshotId) ?? [];

    const error = await refusal(images.deregisterImage(place, requester, { jobId: "job-1", imageId }));

    expect(error.code).toBe("access_denied");
    expect(fake.calls("DeregisterImage")).toHaveLength(1);
    expect(fake.images.get(imageId)?.state).toBe("pending");
    for (const id of snapshots) expect(fake.snapshots.has(id)).toBe(true);
  });

  it("resolves, saying AWS has no such image, for an image that is already gone", async () => {
    const imageId = await images.createImage(place, requester, create("job-3", "cancel-3"));
    await images.deregisterImage(place, requester, { jobId: "job-3", imageId });
    await expect(images.deregisterImage(place, requester, { jobId: "job-3", imageId })).resolves.toEqual({
      leftBehind: undefined,
      notFound: true,
    });
    // A job whose image was never made, or that someone deregistered by hand.
    await expect(
      images.deregisterImage(place, requester, { jobId: "job-4", imageId: IMAGE }),
    ).resolves.toEqual({ leftBehind: undefined, notFound: true });
    expect(fake.calls("DeregisterImage")).toHaveLength(3);
  });

  it("deregisters but keeps a snapshot not tagged with the job, and says which", async () => {
    const imageId = await images.createImage(place, requester, create("job-5", "cancel-5"));
    const [mine, retagged] = fake.images.get(imageId)?.snapshots ?? [];
    if (!mine || !retagged) throw new Error("expected two snapshots");
    retagged.tags["ami-bot:job-id"] = "someone-else";

    const { leftBehind } = await images.deregisterImage(place, requester, { jobId: "job-5", imageId });

    expect(leftBehind).toContain(retagged.snapshotId);
    expect(fake.images.has(imageId)).toBe(false);
    expect(fake.snapshots.has(mine.snapshotId)).toBe(false);
    expect(fake.snapshots.has(retagged.snapshotId)).toBe(true);
    // What is left is still there for the watcher to see, and the deleted one is not.
    const progress = await images.snapshotProgress(place, [mine.snapshotId, retagged.snapshotId]);
    expect([...progress.keys()]).toEqual([retagged.snapshotId]);
  });
});
