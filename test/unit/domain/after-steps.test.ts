import { describe, expect, it } from "vitest";
import { afterStepsDone, planAfterSteps } from "../../../src/domain/after-steps.js";
import { type Job, type JobEvent, NO_CHANGE, transition } from "../../../src/domain/job.js";
import { makeJob } from "../../fakes/job-fixtures.js";

const NOW = Date.UTC(2026, 11, 2, 10, 0, 0);
const ACCOUNTS = ["210987654321", "345678901234"];

/** A job whose image has just become available, with copies to two regions and sharing. */
function finishing(overrides: Partial<Job> = {}): Job {
  return makeJob({
    state: "finishing",
    imageId: "ami-0source",
    region: "eu-west-1",
    after: planAfterSteps(["us-east-1", "eu-central-1"], ACCOUNTS),
    ...overrides,
  });
}

/** Applies events in order, as the store would, and collects every notice key. */
function run(job: Job, events: JobEvent[]): { job: Job; keys: string[] } {
  let current = job;
  const keys: string[] = [];
  for (const event of events) {
    const t = transition(current, event, NOW);
    current = { ...current, ...t.changes };
    keys.push(...t.notices.map((n) => n.key));
  }
  return { job: current, keys };
}

describe("planAfterSteps", () => {
  it("plans nothing when nothing was ticked", () => {
    expect(planAfterSteps([], [])).toBeUndefined();
  });

  it("plans a copy per region, and sharing of the source and of each copy when accounts were ticked", () => {
    expect(planAfterSteps(["us-east-1"], ACCOUNTS)).toEqual({
      shareWith: ACCOUNTS,
      copies: [{ region: "us-east-1", state: "waiting", share: { state: "waiting" } }],
      share: { state: "waiting" },
    });
    expect(planAfterSteps(["us-east-1"], [])).toEqual({
      shareWith: [],
      copies: [{ region: "us-east-1", state: "waiting" }],
    });
  });
});

describe("a job with steps after the image", () => {
  it("tells the thread the image is available at once, and goes on to the steps", () => {
    const pending = finishing({ state: "pending" });
    expect(transition(pending, { type: "image_state", state: "available" }, NOW)).toEqual({
      changes: { state: "finishing" },
      notices: [
        { kind: "available", key: "available" },
        { kind: "root_update", key: "root_update:finishing" },
      ],
    });
  });

  it("ends available with a summary once every copy and share has ended, one failing region included", () => {
    const { job, keys } = run(finishing(), [
      { type: "image_shared", region: "eu-west-1" },
      { type: "copy_attempted", region: "us-east-1" },
      { type: "copy_attempted", region: "eu-central-1" },
      { type: "copy_created", region: "us-east-1", imageId: "ami-0copyus" },
      { type: "copy_refused", region: "eu-central-1", reason: "The KMS key is disabled." },
      { type: "copy_state", region: "us-east-1", state: "pending" },
      { type: "copy_state", region: "us-east-1", state: "available" },
      { type: "image_shared", region: "us-east-1" },
    ]);
    expect(keys).toEqual([
      "shared:eu-west-1",
      "copy_started:us-east-1",
      "copy_started:eu-central-1",
      "copy_failed:eu-central-1",
      "copy_available:us-east-1",
      "shared:us-east-1",
      "after_done",
      "root_update",
    ]);
    expect(job.state).toBe("available");
    expect(job.finishedAt).toBe(NOW);
    expect(job.after?.copies).toEqual([
      {
        region: "us-east-1",
        state: "available",
        attemptedAt: NOW,
        imageId: "ami-0copyus",
        share: { state: "shared" },
      },
      {
        region: "eu-central-1",
        state: "failed",
        attemptedAt: NOW,
        reason: "The KMS key is disabled.",
        // No copy, nothing to share.
        share: { state: "skipped" },
      },
    ]);
  });

  it("keeps a failed copy's and a refused share's reasons, and the source image untouched", () => {
    const { job } = run(finishing(), [
      { type: "share_refused", region: "eu-west-1", reason: "AWS does not know one of the accounts." },
      { type: "copy_attempted", region: "us-east-1" },
      { type: "copy_created", region: "us-east-1", imageId: "ami-0copyus" },
      { type: "copy_state", region: "us-east-1", state: "failed", reason: "Snapshot copy failed" },
    ]);
    expect(job.state).toBe("finishing");
    expect(job.imageId).toBe("ami-0source");
    expect(job.after?.share).toEqual({ state: "failed", reason: "AWS does not know one of the accounts." });
    expect(job.after?.copies[0]).toMatchObject({
      state: "failed",
      reason: "AWS says: “Snapshot copy failed”.",
    });
  });

  it("keeps that a refused share's launch permission went through", () => {
    const { job } = run(finishing(), [
      { type: "share_refused", region: "eu-west-1", reason: "Denied.", launchOnly: true },
    ]);
    expect(job.after?.share).toEqual({ state: "failed", reason: "Denied.", launchOnly: true });
  });

  it("changes nothing on a repeat, a region not chosen, or a step event for a job not finishing", () => {
    const started = run(finishing(), [{ type: "copy_attempted", region: "us-east-1" }]).job;
    expect(transition(started, { type: "copy_attempted", region: "us-east-1" }, NOW + 1)).toBe(NO_CHANGE);
    expect(transition(started, { type: "copy_attempted", region: "ap-south-1" }, NOW)).toBe(NO_CHANGE);
    expect(transition(started, { type: "image_shared", region: "ap-south-1" }, NOW)).toBe(NO_CHANGE);
    // A copy's share waits for the copy.
    expect(transition(started, { type: "image_shared", region: "us-east-1" }, NOW)).toBe(NO_CHANGE);
    expect(
      transition(finishing({ state: "pending" }), { type: "copy_attempted", region: "us-east-1" }, NOW),
    ).toBe(NO_CHANGE);
  });

  it("marks a copy AWS made, or may have made, as abandoned rather than failed when ami-bot stops following it", () => {
    const { job } = run(finishing(), [
      { type: "copy_attempted", region: "us-east-1" },
      { type: "copy_attempted", region: "eu-central-1" },
      { type: "copy_created", region: "us-east-1", imageId: "ami-0copyus" },
      { type: "copy_refused", region: "us-east-1", reason: "Too slow." },
      { type: "copy_refused", region: "eu-central-1", reason: "No longer offered.", mayExist: true },
    ]);
    expect(job.after?.copies.map((c) => [c.region, c.state, c.abandoned])).toEqual([
      ["us-east-1", "failed", true],
      ["eu-central-1", "failed", true],
    ]);
    const refused = run(finishing(), [
      { type: "copy_attempted", region: "us-east-1" },
      { type: "copy_refused", region: "us-east-1", reason: "AWS is throttling requests." },
    ]).job;
    expect(refused.after?.copies[0]?.abandoned).toBeUndefined();
  });

  it("has no Cancel: a cancel on a finishing job changes nothing", () => {
    expect(transition(finishing(), { type: "cancel_requested", by: "U0OTHER" }, NOW)).toBe(NO_CHANGE);
  });

  it("ends every open step when ami-bot gives up following them, and finishes available", () => {
    const { job, keys } = run(finishing(), [
      { type: "copy_attempted", region: "us-east-1" },
      { type: "gave_up" },
    ]);
    expect(job.state).toBe("available");
    expect(keys.slice(-2)).toEqual(["after_done", "root_update"]);
    expect(job.after && afterStepsDone(job.after)).toBe(true);
    expect(job.after?.copies.map((c) => c.state)).toEqual(["failed", "failed"]);
    expect(job.after?.share?.state).toBe("failed");
  });
});
