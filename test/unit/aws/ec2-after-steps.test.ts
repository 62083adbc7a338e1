/**
 * The steps after the image on the AWS side, over the SDK wire against fake-aws, which enforces each
 * session's policy: CopyImage in the destination region with the job's tags and a ClientToken that makes a
 * repeat return the same copy; sharing with launch permission on the image and create-volume permission on
 * each snapshot, one call each, only for the chosen accounts, never public.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Ec2Images } from "../../../src/aws/ec2-images.js";
import type { CopyImageParams, CreateImageParams, Place } from "../../../src/domain/ports.js";
import { PartialShareError } from "../../../src/errors.js";
import type { FakeAws } from "../../fakes/fake-aws.js";
import {
  adapterTarget,
  INSTANCE,
  REGION,
  refusal,
  requester,
  SCOPE_TAG,
  startAdapterFake,
} from "../../support/ec2-adapter.js";

const DESTINATION = "us-east-1";
const SHARE_WITH = ["210987654321", "345678901234"];
const target = adapterTarget({
  after: {
    copyTo: [{ region: DESTINATION, kmsKeyId: undefined }],
    shareWith: SHARE_WITH,
    keep: undefined,
  },
});
const source: Place = { target, region: REGION };
const destination: Place = { target, region: DESTINATION };

describe("copies and sharing over the SDK wire against fake-aws", () => {
  let fake: FakeAws;
  let images: Ec2Images;
  let counter = 0;

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

  /** A job's image, made by the bot and available. */
  async function sourceImage(): Promise<{ jobId: string; imageId: string }> {
    counter++;
    const jobId = `job-after-${counter}`;
    const params: CreateImageParams = {
      jobId,
      instanceId: INSTANCE,
      imageName: `web-1 after ${counter}`,
      description: "nightly",
      noReboot: true,
      tags: [{ key: "team", value: "web" }],
      excludedDevices: [],
    };
    const imageId = await images.createImage(source, requester, params);
    fake.setImageState(imageId, "available");
    return { jobId, imageId };
  }

  const copyParams = (jobId: string, imageId: string): CopyImageParams => ({
    jobId,
    sourceRegion: REGION,
    sourceImageId: imageId,
    instanceId: INSTANCE,
    imageName: `copy of ${imageId}`,
    description: "nightly",
    tags: [{ key: "team", value: "web" }],
    kmsKeyId: undefined,
  });

  it("copies into the destination with the job's tags, and a repeat returns the same copy", async () => {
    const { jobId, imageId } = await sourceImage();
    const copyId = await images.copyImage(destination, requester, copyParams(jobId, imageId));
    const again = await images.copyImage(destination, requester, copyParams(jobId, imageId));
    expect(again).toBe(copyId);
    const copies = [...fake.images.values()].filter((i) => i.region === DESTINATION);
    expect(copies.map((i) => i.imageId)).toEqual([copyId]);
    expect(copies[0]?.tags).toMatchObject({
      Name: `copy of ${imageId}`,
      "ami-bot:job-id": jobId,
      "ami-bot:source-image": imageId,
      "ami-bot:instance-id": INSTANCE,
      team: "web",
    });
    const calls = fake.calls("CopyImage");
    expect(calls).toHaveLength(2);
    expect(calls[0]?.region).toBe(DESTINATION);
    expect(calls[0]?.params).toMatchObject({
      SourceRegion: REGION,
      SourceImageId: imageId,
      ClientToken: `${jobId}:${DESTINATION}`,
    });
    expect(await images.findCopy(destination, jobId, imageId)).toBe(copyId);
    expect(await images.findCopy(destination, "another-job", imageId)).toBeUndefined();
  });

  it("refuses, under the session's policy, to copy an image that is not the job's", async () => {
    const { imageId } = await sourceImage();
    const error = await refusal(
      images.copyImage(destination, requester, copyParams("someone-elses-job", imageId)),
    );
    expect(error.code).toBe("access_denied");
    expect(error.userMessage).toContain(`AWS denied the copy into ${DESTINATION}`);
    expect([...fake.images.values()].some((i) => i.sourceImageId === imageId)).toBe(false);
  });

  it("shares the image and each of its snapshots with exactly the chosen accounts, one call each", async () => {
    const { jobId, imageId } = await sourceImage();
    const snapshotIds = fake.images.get(imageId)?.snapshots.map((s) => s.snapshotId) ?? [];
    expect(snapshotIds).toHaveLength(2);
    await images.shareImage(source, requester, { jobId, imageId, snapshotIds, accounts: SHARE_WITH });
    expect(fake.calls("ModifyImageAttribute")).toHaveLength(1);
    expect(fake.calls("ModifySnapshotAttribute")).toHaveLength(2);
    const image = fake.images.get(imageId);
    expect([...(image?.launchPermissions ?? [])].sort()).toEqual(SHARE_WITH);
    expect(image?.public).toBeFalsy();
    for (const s of image?.snapshots ?? []) {
      expect([...(s.createVolumePermissions ?? [])].sort()).toEqual(SHARE_WITH);
      expect(s.public).toBeFalsy();
    }
    for (const call of [...fake.calls("ModifyImageAttribute"), ...fake.calls("ModifySnapshotAttribute")])
      expect(JSON.stringify(call.params)).not.toMatch(/Group|all/);
  });

  it("names the snapshot when sharing stops after the launch permission went through", async () => {
    const { jobId, imageId } = await sourceImage();
    const snapshotIds = fake.images.get(imageId)?.snapshots.map((s) => s.snapshotId) ?? [];
    fake.failNext("ModifySnapshotAttribute", {
      code: "UnauthorizedOperation",
      status: 403,
      when: (r) => JSON.stringify(r.params).includes(snapshotIds[1] as string),
    });
    const error = await refusal(
      images.shareImage(source, requester, { jobId, imageId, snapshotIds, accounts: SHARE_WITH }),
    );
    expect(error).toBeInstanceOf(PartialShareError);
    expect(error).toMatchObject({ snapshotId: snapshotIds[1], code: "access_denied", retryable: false });
    expect(error.userMessage).toContain(`AWS denied sharing image ${imageId}`);
    expect([...(fake.images.get(imageId)?.launchPermissions ?? [])].sort()).toEqual(SHARE_WITH);
    expect(fake.calls("ModifySnapshotAttribute")).toHaveLength(2);
  });

  it("is not a partial share when the launch permission itself is refused", async () => {
    const { jobId, imageId } = await sourceImage();
    fake.failNext("ModifyImageAttribute", { code: "UnauthorizedOperation", status: 403 });
    const error = await refusal(
      images.shareImage(source, requester, { jobId, imageId, snapshotIds: [], accounts: SHARE_WITH }),
    );
    expect(error).not.toBeInstanceOf(PartialShareError);
    expect(error.code).toBe("access_denied");
  });

  it("ends sharing with a plain reason when AWS does not know an account", async () => {
    const { jobId, imageId } = await sourceImage();
    fake.addUnknownAccount("999999999999");
    const error = await refusal(
      images.shareImage(source, requester, {
        jobId,
        imageId,
        snapshotIds: [],
        accounts: ["999999999999"],
      }),
    );
    expect(error.code).toBe("account_unknown");
    expect(error.retryable).toBe(false);
    expect(error.userMessage).toContain("AWS does not know one of the accounts to share with");
  });

  it("never sends anything but 12-digit account ids", async () => {
    const { jobId, imageId } = await sourceImage();
    await refusal(
      images.shareImage(source, requester, { jobId, imageId, snapshotIds: [], accounts: ["all"] }),
    );
    expect(fake.calls("ModifyImageAttribute")).toHaveLength(0);
  });
});
