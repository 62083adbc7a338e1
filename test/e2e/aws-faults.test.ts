/**
 * AWS faults: throttling and 5xx on CreateImage and DescribeImages (past the SDK's own four attempts),
 * expired requests, AssumeRole refusals. Every job ends available or with a reason a person can act on,
 * and one job's trouble never stops the others.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { ALLOWED_USER, eventually, type Harness, startHarness } from "../support/bot-harness.js";

const INSTANCE = "i-0123456789abcdef0";
const OTHER_INSTANCE = "i-0fedcba9876543210";
const THIRD_INSTANCE = "i-00000000000002000";

const keyOf = (m: StoredMessage) => String(m.metadata?.event_payload?.key ?? "");

describe("AWS faults", () => {
  let h: Harness;
  async function start(pollInterval?: string): Promise<void> {
    h = await startHarness(pollInterval ? { pollInterval } : {});
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
    h.aws.addInstance({ instanceId: OTHER_INSTANCE, name: "db-1" });
    h.aws.addInstance({ instanceId: THIRD_INSTANCE, name: "cache-1" });
  }
  beforeEach(() => start());
  afterEach(async () => {
    await h.close();
  });

  async function submit(imageName: string, instanceId = INSTANCE): Promise<StoredMessage> {
    const before = h.slack.callsTo("views.open").length;
    expect((await h.command({})).status).toBe(200);
    await eventually(() => h.slack.callsTo("views.open").length > before, 10_000, "views.open");
    const viewId = `V0${imageName.replace(/\W/g, "").toUpperCase()}`;
    const res = await h.interaction(h.submission({ instanceId, imageName, reboot: "reboot" }, { viewId }));
    expect(res.status).toBe(200);
    // Accepted (an empty ack), not kept open with errors in the form.
    expect(res.body).toBe("");
    return eventually(
      () => h.slack.messages.find((m) => !m.threadTs && JSON.stringify(m.blocks).includes(imageName)),
      10_000,
      `root of ${imageName}`,
    );
  }

  const replies = (root: StoredMessage) => h.slack.repliesTo(root.ts);
  const reply = (root: StoredMessage, key: string, timeoutMs = 15_000) =>
    eventually(() => replies(root).find((m) => keyOf(m) === key), timeoutMs, `${key} reply`);
  const imageNamed = (name: string) =>
    eventually(() => [...h.aws.images.values()].find((i) => i.name === name), 15_000, `image ${name}`);

  /** Makes the image available and waits for the thread to say so. */
  async function finish(root: StoredMessage, name: string): Promise<void> {
    const image = await imageNamed(name);
    h.aws.setImageState(image.imageId, "available");
    await reply(root, "available");
    await eventually(() => root.text.includes("is available"), 10_000, "root updated");
    const keys = replies(root).map(keyOf);
    expect(new Set(keys).size).toBe(keys.length);
  }

  it("finishes the job when DescribeImages is throttled and fails with 5xx past the SDK's retries", async () => {
    const root = await submit("web-1 describe faults");
    await reply(root, "pending");
    const before = h.aws.calls("DescribeImages").length;
    // Four answers are one check with all the SDK's attempts: three failed checks in a row.
    h.aws.failNext("DescribeImages", { code: "RequestLimitExceeded", status: 503, count: 4 });
    h.aws.failNext("DescribeImages", { code: "InternalError", status: 500, count: 8 });
    // The thread is told once that checks are failing, in words a person reads.
    const warning = await reply(root, "checks_failing", 20_000);
    expect(warning.text).toContain("can't check on the image right now");
    expect(warning.text).toContain("keep trying");
    await finish(root, "web-1 describe faults");
    expect(h.aws.calls("DescribeImages").length - before).toBeGreaterThan(12);
    expect(replies(root).filter((m) => keyOf(m) === "checks_failing")).toHaveLength(1);
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
  });

  it("creates the image once when CreateImage is throttled and fails with 5xx past the SDK's retries", async () => {
    h.aws.failNext("CreateImage", { code: "RequestLimitExceeded", status: 503, count: 4 });
    h.aws.failNext("CreateImage", { code: "InternalError", status: 500, count: 4 });
    const root = await submit("web-1 create faults");
    await reply(root, "pending", 20_000);
    expect(h.aws.calls("CreateImage")).toHaveLength(9);
    expect(h.aws.images.size).toBe(1);
    await finish(root, "web-1 create faults");
    expect(replies(root).map(keyOf)).not.toContain("refused");
  });

  it("retries with a new session when CreateImage answers RequestExpired", async () => {
    h.aws.failNext("CreateImage", { code: "RequestExpired", status: 400, message: "Request has expired." });
    const root = await submit("web-1 expired request");
    await reply(root, "pending");
    const creates = h.aws.calls("CreateImage");
    expect(creates).toHaveLength(2);
    expect(creates[1]?.accessKeyId).not.toBe(creates[0]?.accessKeyId);
    await finish(root, "web-1 expired request");
  });

  it("keeps checking with a fresh session when the watcher's session expires", async () => {
    const root = await submit("web-1 expired session");
    await reply(root, "pending");
    const image = await imageNamed("web-1 expired session");
    await eventually(
      () => h.aws.calls("DescribeImages").some((c) => c.accessKeyId?.startsWith("ASIA")),
      10_000,
      "a watcher check",
    );
    h.aws.expireSessions();
    h.aws.setImageState(image.imageId, "available");
    // A fresh session sees it within a check or two; the cached one would keep failing (a 15-minute session).
    await reply(root, "available");
  });

  it("refuses the job in plain words, and tells the requester, when AssumeRole is denied", async () => {
    // Denied for the session that would create the image: the form was accepted, the thread must explain.
    h.aws.failNext("AssumeRole", {
      code: "AccessDenied",
      status: 403,
      message: "User: arn:aws:iam::123456789012:user/ami-bot is not authorized to perform: sts:AssumeRole",
      count: 10,
      when: (r) => String(r.params.Policy ?? "").includes("ec2:CreateImage"),
    });
    const root = await submit("web-1 denied");
    const refused = await reply(root, "refused");
    expect(refused.text).toContain("could not assume the role for target");
    expect(refused.text).toContain("trust policy must allow ami-bot");
    expect(refused.text).toContain("ExternalId");
    await eventually(() => root.text.includes("Not created"), 10_000, "root updated");
    const note = await h.slack.waitFor("chat.postEphemeral");
    expect(note.args).toMatchObject({ user: ALLOWED_USER });
    expect(String(note.args.text)).toContain("did not go through");
    expect(String(note.args.text)).toContain("could not assume the role");
    expect(h.aws.calls("CreateImage")).toHaveLength(0);
    expect(h.store.unfinishedCount()).toBe(0);
  });

  it("retries when AssumeRole is throttled or STS fails with 5xx, and finishes the job", async () => {
    // STS's own client makes three attempts; each fault series below fails one whole session request.
    h.aws.failNext("AssumeRole", { code: "Throttling", status: 400, message: "Rate exceeded", count: 3 });
    h.aws.failNext("AssumeRole", { code: "ServiceUnavailable", status: 503, count: 3 });
    const root = await submit("web-1 sts faults");
    await reply(root, "pending", 20_000);
    expect(h.aws.calls("AssumeRole").filter((c) => c.params.Policy).length).toBeGreaterThanOrEqual(8);
    await finish(root, "web-1 sts faults");
    expect(h.aws.calls("CreateImage")).toHaveLength(1);
  });

  it("explains a failed image in the thread with AWS's reason", async () => {
    const root = await submit("web-1 failing image");
    await reply(root, "pending");
    const image = await imageNamed("web-1 failing image");
    h.aws.setImageState(image.imageId, "failed", "Snapshot creation failed for volume vol-0abc");
    const failed = await reply(root, "failed");
    expect(failed.text).toContain("The image failed");
    expect(failed.text).toContain("Snapshot creation failed for volume vol-0abc");
    await eventually(() => root.text.includes("The image failed"), 10_000, "root updated");
  });

  it("keeps the other jobs going while one job fails and another keeps erring", async () => {
    // A slower watcher: B's backoff (31 poll intervals before its sixth and last try) must outlast the
    // rest of the test finishing A and C under load, so B is still failing, not yet refused, at the check.
    await h.close();
    await start("300ms");
    // Jobs A and C are pending; then every CreateImage fails until the check below (job B). Each images an
    // instance of its own: an instance with an unfinished job takes no second one.
    const a = await submit("job a");
    const c = await submit("job c", OTHER_INSTANCE);
    await reply(a, "pending");
    await reply(c, "pending");
    let bFailing = true;
    h.aws.failNext("CreateImage", { code: "InternalError", status: 500, count: 1_000, when: () => bFailing });
    const b = await submit("job b", THIRD_INSTANCE);
    await eventually(() => h.aws.calls("CreateImage").length >= 4, 10_000, "job B's first failures");

    // C's image fails and A's becomes available while B is still backing off.
    const failing = await imageNamed("job c");
    h.aws.setImageState(failing.imageId, "error", "Volume vol-0abc could not be snapshotted");
    await finish(a, "job a");
    const failed = await reply(c, "failed");
    expect(failed.text).toContain("Volume vol-0abc could not be snapshotted");
    expect(replies(b).map(keyOf)).not.toContain("pending");
    // Only now may B's CreateImage succeed.
    bFailing = false;

    await reply(b, "pending", 20_000);
    await finish(b, "job b");
    expect(h.aws.images.size).toBe(3);
    expect(h.store.unfinishedCount()).toBe(0);
  });
});
