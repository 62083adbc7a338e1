/**
 * The steps after the image, through the bot's real HTTP endpoint against the fakes: copies into two regions
 * (one failing, which fails neither the other nor the source image), sharing with only the ticked accounts
 * (one ModifyImageAttribute per image, one ModifySnapshotAttribute per snapshot, never public), each step
 * under its own session policy, and nothing at all when nothing is ticked.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type FakeRequest, type PolicyContext, sessionPolicyPermits } from "../fakes/fake-aws.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { CHANNEL, eventually, type Harness, startHarness } from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";
const CHOSEN = ["210987654321", "345678901234"];
const NOT_CHOSEN = "456789012345";
const KMS_KEY = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const AFTER_ENV = {
  AMI_TARGET_COPY_TO: `us-east-1,eu-central-1=${KMS_KEY}`,
  AMI_TARGET_SHARE_WITH: [...CHOSEN, NOT_CHOSEN].join(","),
};

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

describe("after the image", () => {
  let h: Harness;

  afterEach(async () => {
    await h?.close();
  });

  async function ask(answers: { copyTo?: string[]; shareWith?: string[] }): Promise<StoredMessage> {
    await h.command({});
    await h.slack.waitFor("views.open");
    const res = await h.interaction(
      h.submission({ instanceId: INSTANCE, imageName: "web-1 copied", ...answers }),
    );
    expect(res.body).toBe("");
    return eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "the root message",
    );
  }

  const thread = (root: StoredMessage) => h.slack.messages.filter((m) => m.threadTs === root.ts);
  const reply = (root: StoredMessage, key: string) => thread(root).find((m) => keyOf(m) === key);
  /** The session policy a call was made under, as AssumeRole was given it. */
  const policyOf = (call: FakeRequest | undefined) =>
    JSON.stringify(h.aws.sessions.get(call?.accessKeyId ?? "")?.policy);
  /** Would that policy allow `action` on `resource`, in this context (the fake's evaluator)? */
  const allows = (policy: string, action: string, resource: string, context: PolicyContext) =>
    sessionPolicyPermits(policy, action, [resource], context);

  /** The source image, made available once AWS has it. */
  async function sourceAvailable(): Promise<string> {
    const imageId = await eventually(
      () => [...h.aws.images.values()].find((i) => i.region === "eu-west-1")?.imageId,
      10_000,
      "the image",
    );
    h.aws.setImageState(imageId, "available");
    return imageId;
  }

  it("copies into two regions, one failing, shares only with the ticked accounts, and sums it up", async () => {
    h = await startHarness({ env: AFTER_ENV });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1", volumes: 2 });
    h.aws.failCopiesTo("eu-central-1", "Snapshot copy failed: the volume is too large for this account");
    const root = await ask({ copyTo: ["us-east-1", "eu-central-1"], shareWith: CHOSEN });
    expect(JSON.stringify(root.blocks)).toContain("Copy to us-east-1, eu-central-1");
    expect(JSON.stringify(root.blocks)).toContain(`Share with ${CHOSEN.join(", ")}`);
    const source = await sourceAvailable();

    // The thread hears the image is ready before the copies are.
    const available = await eventually(() => reply(root, "available"), 10_000, "available");
    expect(available.text).toContain(source);
    expect(available.text).toContain("Next: copying it to us-east-1, eu-central-1 and sharing it with");

    await eventually(() => h.aws.calls("CopyImage").length === 2, 10_000, "two CopyImage calls");
    const copies = await eventually(
      () => {
        const made = [...h.aws.images.values()].filter((i) => i.sourceImageId === source);
        return made.length === 2 ? made : undefined;
      },
      10_000,
      "two copies",
    );
    for (const c of copies) h.aws.completeImage(c.imageId);
    const done = await eventually(() => reply(root, "after_done"), 15_000, "the summary");

    // Copies: one call per region, each in its region, the KMS key where the target sets one.
    const copyCalls = h.aws.calls("CopyImage");
    expect(copyCalls.map((c) => c.region).sort()).toEqual(["eu-central-1", "us-east-1"]);
    for (const c of copyCalls)
      expect(c.params).toMatchObject({ SourceRegion: "eu-west-1", SourceImageId: source });
    expect(copyCalls.find((c) => c.region === "eu-central-1")?.params).toMatchObject({
      Encrypted: "true",
      KmsKeyId: KMS_KEY,
    });
    const usCopy = copies.find((c) => c.region === "us-east-1");
    expect(usCopy?.tags).toMatchObject({ "ami-bot:source-image": source, Name: "web-1 copied" });
    expect(reply(root, "copy_available:us-east-1")?.text).toContain(
      `https://us-east-1.console.aws.amazon.com/ec2/home?region=us-east-1#ImageDetails:imageId=${usCopy?.imageId}`,
    );
    const failed = reply(root, "copy_failed:eu-central-1")?.text ?? "";
    expect(failed).toContain("Snapshot copy failed: the volume is too large for this account");
    expect(failed).toContain("not affected");

    // Sharing: the source and the copy that became available, each once; never the failed copy.
    const imageShares = h.aws.calls("ModifyImageAttribute");
    expect(imageShares.map((c) => c.params.ImageId).sort()).toEqual([source, usCopy?.imageId].sort());
    for (const call of imageShares)
      expect(
        Object.entries(call.params)
          .filter(([k]) => k.startsWith("LaunchPermission"))
          .map(([, v]) => v),
      ).toEqual(CHOSEN);
    expect(h.aws.calls("ModifySnapshotAttribute")).toHaveLength(4); // two snapshots per image
    for (const image of [h.aws.images.get(source), usCopy]) {
      expect([...(image?.launchPermissions ?? [])].sort()).toEqual(CHOSEN);
      expect(image?.public).toBeFalsy();
      for (const s of image?.snapshots ?? []) {
        expect([...(s.createVolumePermissions ?? [])].sort()).toEqual(CHOSEN);
        expect(s.public).toBeFalsy();
      }
    }
    expect(JSON.stringify(h.aws.requests.map((r) => r.params))).not.toContain(NOT_CHOSEN);
    expect(thread(root).map(keyOf)).not.toContain("shared:eu-central-1");

    // The summary and the root say what came of each image.
    expect(done.text).toContain("All steps after the image are done");
    expect(done.text).toMatch(/eu-central-1: copy failed/);
    const rootNow = await eventually(
      () =>
        h.slack.messages.find(
          (m) => m.ts === root.ts && JSON.stringify(m.blocks).includes(String(usCopy?.imageId)),
        ),
      10_000,
      "the final root",
    );
    expect(rootNow.text).toContain("is available");
    expect(JSON.stringify(rootNow.blocks)).toMatch(/eu-central-1: copy failed/);
    const job = h.store.get(String(h.aws.images.get(source)?.tags["ami-bot:job-id"]));
    expect(job).toMatchObject({ state: "available", imageId: source });
    expect(job?.after?.copies.map((c) => [c.region, c.state, c.imageId])).toEqual([
      ["us-east-1", "available", usCopy?.imageId],
      ["eu-central-1", "failed", expect.stringMatching(/^ami-/)],
    ]);
    expect(await h.bot.store.unfinishedCount()).toBe(0);
  });

  it("runs each step under its own session, allowed only that step's images, accounts and region", async () => {
    h = await startHarness({ env: AFTER_ENV });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const root = await ask({ copyTo: ["us-east-1"], shareWith: [CHOSEN[0] as string] });
    const source = await sourceAvailable();
    await eventually(() => h.aws.calls("CopyImage").length === 1, 10_000, "CopyImage");
    const copy = await eventually(
      () => [...h.aws.images.values()].find((i) => i.sourceImageId === source),
      10_000,
      "the copy",
    );
    h.aws.completeImage(copy.imageId);
    await eventually(() => reply(root, "after_done"), 15_000, "the summary");

    const jobId = String(h.aws.images.get(source)?.tags["ami-bot:job-id"]);
    const sourceArn = `arn:aws:ec2:eu-west-1::image/${source}`;
    const copyPolicy = policyOf(h.aws.calls("CopyImage")[0]);
    const tagged = { "aws:ResourceTag/ami-bot:job-id": [jobId], "aws:RequestedRegion": ["us-east-1"] };
    expect(allows(copyPolicy, "ec2:CopyImage", sourceArn, tagged)).toBe(true);
    // Another image, or the same image without this job's tag, or another destination: refused.
    expect(
      allows(copyPolicy, "ec2:CopyImage", "arn:aws:ec2:eu-west-1::image/ami-0ffffffffffffffff", {
        "aws:RequestedRegion": ["us-east-1"],
      }),
    ).toBe(false);
    expect(
      allows(copyPolicy, "ec2:CopyImage", sourceArn, {
        "aws:ResourceTag/ami-bot:job-id": ["another-job"],
        "aws:RequestedRegion": ["us-east-1"],
      }),
    ).toBe(false);
    expect(
      allows(copyPolicy, "ec2:CopyImage", "arn:aws:ec2:ap-south-1::image/ami-0aaaaaaaaaaaaaaaa", {
        "aws:RequestedRegion": ["ap-south-1"],
      }),
    ).toBe(false);
    for (const action of ["ec2:ModifyImageAttribute", "ec2:DeregisterImage", "ec2:CreateImage"])
      expect(allows(copyPolicy, action, sourceArn, tagged)).toBe(false);

    // Sharing the source: that image and its snapshot, the one ticked account, no group.
    const sharePolicy = policyOf(
      h.aws.calls("ModifyImageAttribute").find((c) => c.params.ImageId === source),
    );
    const snapshot = h.aws.images.get(source)?.snapshots[0]?.snapshotId;
    const snapshotArn = `arn:aws:ec2:eu-west-1::snapshot/${snapshot}`;
    const onJob = { "aws:ResourceTag/ami-bot:job-id": [jobId] };
    expect(allows(sharePolicy, "ec2:ModifyImageAttribute", sourceArn, onJob)).toBe(true);
    expect(
      allows(sharePolicy, "ec2:ModifyImageAttribute", `arn:aws:ec2:eu-west-1::image/${copy.imageId}`, onJob),
    ).toBe(false);
    expect(
      allows(sharePolicy, "ec2:ModifySnapshotAttribute", snapshotArn, {
        ...onJob,
        "ec2:Add/userId": [CHOSEN[0] as string],
      }),
    ).toBe(true);
    expect(
      allows(sharePolicy, "ec2:ModifySnapshotAttribute", snapshotArn, {
        ...onJob,
        "ec2:Add/userId": [NOT_CHOSEN],
      }),
    ).toBe(false);
    expect(
      allows(sharePolicy, "ec2:ModifySnapshotAttribute", snapshotArn, {
        ...onJob,
        "ec2:Add/group": ["all"],
      }),
    ).toBe(false);
    expect(allows(sharePolicy, "ec2:CopyImage", sourceArn, onJob)).toBe(false);
    // The copy was shared under a session of its own, in its own region.
    const copyShare = h.aws.calls("ModifyImageAttribute").find((c) => c.params.ImageId === copy.imageId);
    expect(copyShare?.region).toBe("us-east-1");
    expect(copyShare?.accessKeyId).not.toBe(
      h.aws.calls("ModifyImageAttribute").find((c) => c.params.ImageId === source)?.accessKeyId,
    );
  });

  it("ends a copy whose KMS key the role cannot use with a plain reason, and still shares the image", async () => {
    h = await startHarness({ env: AFTER_ENV });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    h.aws.denyKmsKey(KMS_KEY);
    const root = await ask({ copyTo: ["eu-central-1"], shareWith: [CHOSEN[1] as string] });
    const source = await sourceAvailable();
    const copy = await eventually(
      () => [...h.aws.images.values()].find((i) => i.sourceImageId === source),
      10_000,
      "the copy",
    );
    h.aws.completeImage(copy.imageId);
    const done = await eventually(() => reply(root, "after_done"), 15_000, "the summary");
    expect(reply(root, "copy_failed:eu-central-1")?.text).toMatch(/not accessible/);
    expect(reply(root, "shared:eu-west-1")).toBeDefined();
    expect(done.text).toContain("eu-central-1: copy failed");
    expect([...(h.aws.images.get(source)?.launchPermissions ?? [])]).toEqual([CHOSEN[1]]);
  });

  it("tells the thread, in plain words, of an account AWS does not know and of throttling that outlasts the retries, while the rest goes on", async () => {
    h = await startHarness({ env: AFTER_ENV });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    h.aws.addUnknownAccount(NOT_CHOSEN);
    // Every CopyImage into us-east-1 is throttled, however often it is tried.
    h.aws.failNext("CopyImage", {
      code: "RequestLimitExceeded",
      status: 503,
      count: 1_000,
      when: (r) => r.region === "us-east-1",
    });
    const root = await ask({ copyTo: ["us-east-1", "eu-central-1"], shareWith: [NOT_CHOSEN] });
    const source = await sourceAvailable();
    const copy = await eventually(
      () => [...h.aws.images.values()].find((i) => i.sourceImageId === source && i.region === "eu-central-1"),
      10_000,
      "the eu-central-1 copy",
    );
    h.aws.completeImage(copy.imageId);
    const done = await eventually(() => reply(root, "after_done"), 60_000, "the summary");
    expect(reply(root, "share_failed:eu-west-1")?.text).toContain(
      "AWS does not know one of the accounts to share with",
    );
    expect(reply(root, "copy_failed:us-east-1")?.text).toContain(
      "AWS is throttling requests in this account: ami-bot tried 6 times without success and stopped this step.",
    );
    expect(reply(root, "copy_available:eu-central-1")).toBeDefined();
    expect(done.text).toMatch(/us-east-1: copy failed/);
    expect(h.store.get(String(h.aws.images.get(source)?.tags["ami-bot:job-id"]))?.state).toBe("available");
    expect([...h.aws.images.values()].filter((i) => i.region === "us-east-1")).toEqual([]);
  }, 90_000);

  it("copies and shares nothing when nothing is ticked, and the job ends at available", async () => {
    h = await startHarness({ env: AFTER_ENV });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    const opened = await (async () => {
      await h.command({});
      return h.slack.waitFor("views.open");
    })();
    // The form offers the boxes, none ticked.
    const blocks = JSON.stringify((opened.args.view as { blocks: unknown[] }).blocks);
    expect(blocks).toContain("copy_to_choice");
    expect(blocks).not.toContain("initial_options");
    const res = await h.interaction(h.submission({ instanceId: INSTANCE, imageName: "web-1 plain" }));
    expect(res.body).toBe("");
    const root = await eventually(
      () => h.slack.messages.find((m) => m.channel === CHANNEL && !m.threadTs),
      10_000,
      "the root message",
    );
    await sourceAvailable();
    await eventually(() => reply(root, "available"), 10_000, "available");
    await new Promise((r) => setTimeout(r, 300));
    for (const action of ["CopyImage", "ModifyImageAttribute", "ModifySnapshotAttribute"])
      expect(h.aws.calls(action)).toEqual([]);
    expect(thread(root).map(keyOf)).not.toContain("after_done");
    expect(await h.bot.store.unfinishedCount()).toBe(0);
  });
});
