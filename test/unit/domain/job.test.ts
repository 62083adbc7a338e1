import { describe, expect, it } from "vitest";
import {
  describeImageFailure,
  FINAL_STATES,
  IMAGE_STATES,
  type ImageState,
  isFinal,
  JOB_STATES,
  type JobEvent,
  type JobState,
  NO_CHANGE,
  type Transition,
  transition,
} from "../../../src/domain/job.js";
import { makeJob, REQUESTER } from "../../fakes/job-fixtures.js";

const APPROVER = "U0APPROVER";

const NOW = Date.UTC(2026, 10, 28, 3, 0, 0);

/** One event of every kind, image_state once per EC2 state. */
const EVENTS: Record<string, JobEvent> = {
  image_created: { type: "image_created", imageId: "ami-0abc" },
  create_refused: { type: "create_refused", reason: "Instance is terminated." },
  ...Object.fromEntries(
    IMAGE_STATES.map((s) => [
      `image_state:${s}`,
      { type: "image_state", state: s, reason: "Boom" } as JobEvent,
    ]),
  ),
  progress: { type: "progress", percent: 60 },
  slow: { type: "slow" },
  gave_up: { type: "gave_up" },
  approved: { type: "approved", by: APPROVER },
  denied: { type: "denied", by: APPROVER, reason: " Not during the freeze. " },
  approval_expired: { type: "approval_expired" },
  cancel_requested: { type: "cancel_requested", by: APPROVER },
  cancel_done: { type: "cancel_done", imageExisted: true },
  cancel_refused: { type: "cancel_refused", reason: "AWS refused." },
  // The steps after the image (a job in the table chose none: see after-steps.test.ts for those that did).
  copy_attempted: { type: "copy_attempted", region: "us-east-1" },
  copy_created: { type: "copy_created", region: "us-east-1", imageId: "ami-0copy" },
  copy_state: { type: "copy_state", region: "us-east-1", state: "available" },
  copy_refused: { type: "copy_refused", region: "us-east-1", reason: "No." },
  image_shared: { type: "image_shared", region: "eu-west-1" },
  share_refused: { type: "share_refused", region: "eu-west-1", reason: "No." },
};

const cancelledBy = { cancelledBy: APPROVER, cancelledAt: NOW };
const cancelling: Transition = {
  changes: { ...cancelledBy, state: "cancelling" },
  notices: [
    { kind: "cancelling", key: `cancelling:${NOW}` },
    { kind: "root_update", key: `root_update:cancelling:${NOW}` },
  ],
};

const finished = (state: JobState, finalReason: string | undefined, kinds: string[]): Transition => ({
  changes: { state, finishedAt: NOW, finalReason },
  notices: [...kinds, "root_update"].map((k) => ({ kind: k, key: k })) as Transition["notices"],
});

const failedBy = (s: ImageState) =>
  finished("failed", describeImageFailure(s, "Boom"), ["failed", "requester_note"]);

/** What every event does to an unfinished job; anything not listed changes nothing. */
const EXPECTED: Partial<Record<JobState, Record<string, Transition>>> = {
  awaiting_approval: {
    approved: {
      changes: { state: "queued", decision: "approved", decidedBy: APPROVER, decidedAt: NOW },
      notices: [
        { kind: "approved", key: "approved" },
        { kind: "root_update", key: "root_update:approved" },
      ],
    },
    denied: {
      changes: {
        decision: "denied",
        decidedBy: APPROVER,
        decidedAt: NOW,
        state: "denied",
        finishedAt: NOW,
        finalReason: "Not during the freeze.",
      },
      notices: [
        { kind: "denied", key: "denied" },
        { kind: "root_update", key: "root_update" },
      ],
    },
    approval_expired: finished("expired", "Nobody approved or denied it in time.", ["expired"]),
    cancel_requested: {
      changes: { ...cancelledBy, state: "cancelled", finishedAt: NOW, finalReason: undefined },
      notices: [
        { kind: "cancelled", key: "cancelled" },
        { kind: "root_update", key: "root_update" },
      ],
    },
  },
  cancelling: {
    cancel_done: finished("cancelled", undefined, ["cancelled"]),
    cancel_refused: {
      changes: {
        state: "pending",
        cancelledBy: undefined,
        cancelledAt: undefined,
        finalReason: "AWS refused.",
      },
      notices: [
        { kind: "cancel_failed", key: `cancel_failed:${NOW}` },
        { kind: "root_update", key: `root_update:cancel_failed:${NOW}` },
      ],
    },
    gave_up: finished(
      "timed_out",
      "ami-bot could not remove the cancelled image in time; deregister it in the EC2 console.",
      ["timed_out", "requester_note"],
    ),
  },
  queued: {
    // A queued job in the table has not called CreateImage yet: a cancel simply ends it.
    cancel_requested: {
      changes: { ...cancelledBy, state: "cancelled", finishedAt: NOW, finalReason: undefined },
      notices: [
        { kind: "cancelled", key: "cancelled" },
        { kind: "root_update", key: "root_update" },
      ],
    },
    image_created: {
      changes: { state: "pending", imageId: "ami-0abc" },
      notices: [{ kind: "pending", key: "pending" }],
    },
    create_refused: finished("refused", "Instance is terminated.", ["refused", "requester_note"]),
    slow: { changes: { slowNotified: true }, notices: [{ kind: "slow", key: "slow" }] },
    gave_up: finished("timed_out", "AWS could not be reached to create the image in time.", [
      "timed_out",
      "requester_note",
    ]),
  },
  // A finishing job without steps (none in the table) only ends, when ami-bot gives up following it.
  finishing: {
    gave_up: finished("available", undefined, ["after_done"]),
  },
  pending: {
    cancel_requested: cancelling,
    "image_state:available": finished("available", undefined, ["available"]),
    "image_state:failed": failedBy("failed"),
    "image_state:invalid": failedBy("invalid"),
    "image_state:error": failedBy("error"),
    "image_state:deregistered": failedBy("deregistered"),
    "image_state:disabled": failedBy("disabled"),
    progress: { changes: { progress: 50 }, notices: [{ kind: "progress", key: "progress:50" }] },
    slow: { changes: { slowNotified: true }, notices: [{ kind: "slow", key: "slow" }] },
    gave_up: finished("timed_out", "The image was still not available when ami-bot stopped watching.", [
      "timed_out",
      "requester_note",
    ]),
  },
};

const PAIRS = JOB_STATES.flatMap((state) => Object.keys(EVENTS).map((event) => [state, event] as const));

describe("transition", () => {
  it.each(PAIRS)("does what the table says when a %s job gets %s", (state, eventName) => {
    const job = makeJob({ state, imageId: state === "queued" ? undefined : "ami-0abc" });
    const expected = EXPECTED[state]?.[eventName] ?? NO_CHANGE;
    expect(transition(job, EVENTS[eventName] as JobEvent, NOW)).toEqual(expected);
  });

  it("covers every job state and every image state when the table is built", () => {
    expect(PAIRS).toHaveLength(JOB_STATES.length * (IMAGE_STATES.length + 17));
  });

  it.each([...FINAL_STATES])("ignores every event when the job is already %s", (state) => {
    const job = makeJob({ state, imageId: "ami-0abc", finishedAt: NOW - 1 });
    for (const event of Object.values(EVENTS)) expect(transition(job, event, NOW)).toBe(NO_CHANGE);
  });

  it.each(["pending", "transient"] as const)("keeps watching when the image is %s", (state) => {
    const job = makeJob({ state: "pending", imageId: "ami-0abc" });
    expect(transition(job, { type: "image_state", state }, NOW)).toEqual(NO_CHANGE);
  });

  it("posts a root update whenever the job reaches a final state", () => {
    const pending = makeJob({ state: "pending", imageId: "ami-0abc" });
    const queued = makeJob({ state: "queued" });
    const finals = [
      transition(pending, { type: "image_state", state: "available" }, NOW),
      transition(pending, { type: "image_state", state: "failed" }, NOW),
      transition(queued, { type: "create_refused", reason: "no" }, NOW),
      transition(queued, { type: "gave_up" }, NOW),
      transition(pending, { type: "gave_up" }, NOW),
    ];
    for (const t of finals) {
      expect(t.changes.state && isFinal(t.changes.state)).toBe(true);
      expect(t.changes.finishedAt).toBe(NOW);
      expect(t.notices.at(-1)).toEqual({ kind: "root_update", key: "root_update" });
    }
  });

  it("notes the requester privately on every end but success", () => {
    const pending = makeJob({ state: "pending", imageId: "ami-0abc" });
    const refused = transition(makeJob({ state: "queued" }), { type: "create_refused", reason: "no" }, NOW);
    expect(refused.notices.map((n) => n.kind)).toContain("requester_note");
    expect(transition(pending, { type: "gave_up" }, NOW).notices.map((n) => n.kind)).toContain(
      "requester_note",
    );
    for (const state of IMAGE_STATES) {
      const t = transition(pending, { type: "image_state", state }, NOW);
      const noted = t.notices.map((n) => n.kind).includes("requester_note");
      expect(noted).toBe(t.changes.state === "failed");
    }
  });

  it("keeps AWS's reason when the image fails", () => {
    const job = makeJob({ state: "pending", imageId: "ami-0abc" });
    const t = transition(job, { type: "image_state", state: "failed", reason: "Snapshot failed" }, NOW);
    expect(t.changes.finalReason).toContain("AWS says: “Snapshot failed”.");
  });
});

describe("transition on progress", () => {
  const pending = (progress: number) => makeJob({ state: "pending", imageId: "ami-0abc", progress });
  const progressAt = (from: number, percent: number) =>
    transition(pending(from), { type: "progress", percent }, NOW);

  it.each([
    [0, 25, 25],
    [0, 49.9, 25],
    [25, 50, 50],
    [50, 75, 75],
    [0, 100, 75],
    [25, 99, 75],
  ])("posts only the highest milestone when progress goes from %i to %d", (from, percent, milestone) => {
    expect(progressAt(from, percent)).toEqual({
      changes: { progress: milestone },
      notices: [{ kind: "progress", key: `progress:${milestone}` }],
    });
  });

  it.each([
    [0, 0],
    [0, 24.9],
    [25, 30],
    [50, 50],
    [75, 100],
    [75, 10],
  ])("posts nothing when progress goes from %i to %d without crossing a new milestone", (from, percent) => {
    expect(progressAt(from, percent)).toBe(NO_CHANGE);
  });

  it("never posts a milestone twice when progress is reported again", () => {
    const first = progressAt(0, 60);
    const reached = first.changes.progress ?? 0;
    expect(transition(pending(reached), { type: "progress", percent: 60 }, NOW)).toBe(NO_CHANGE);
    expect(transition(pending(reached), { type: "progress", percent: 55 }, NOW)).toBe(NO_CHANGE);
  });

  it("ignores progress when the image is not created yet", () => {
    expect(transition(makeJob({ state: "queued" }), { type: "progress", percent: 90 }, NOW)).toBe(NO_CHANGE);
  });
});

describe("transition on slow", () => {
  it("posts the slow notice once when it is reported again", () => {
    const job = makeJob({ state: "pending", imageId: "ami-0abc" });
    const first = transition(job, { type: "slow" }, NOW);
    expect(first.notices).toEqual([{ kind: "slow", key: "slow" }]);
    const after = makeJob({ ...job, ...first.changes });
    expect(transition(after, { type: "slow" }, NOW)).toBe(NO_CHANGE);
  });
});

describe("describeImageFailure", () => {
  it("explains each failed state in plain words", () => {
    expect(describeImageFailure("deregistered", undefined)).toMatch(/deregistered \(deleted\)/);
    expect(describeImageFailure("disabled", undefined)).toBe("The image was disabled.");
    expect(describeImageFailure("invalid", undefined)).toMatch(/could not be snapshotted/);
    expect(describeImageFailure("error", undefined)).toMatch(/\(state: error\)/);
  });

  it("leaves AWS's words out when the reason is blank", () => {
    expect(describeImageFailure("failed", "  ")).not.toMatch(/AWS says/);
  });
});

describe("approvals and cancel", () => {
  const awaiting = makeJob({ state: "awaiting_approval", approvalExpiresAt: NOW + 3_600_000 });

  it.each(["approved", "denied"] as const)("never lets the requester's own %s count", (type) => {
    const event: JobEvent =
      type === "approved" ? { type, by: REQUESTER } : { type, by: REQUESTER, reason: undefined };
    expect(transition(awaiting, event, NOW)).toBe(NO_CHANGE);
  });

  it("decides once: a second approval, or a deny after it, changes nothing", () => {
    const approved = { ...awaiting, ...transition(awaiting, EVENTS.approved as JobEvent, NOW).changes };
    expect(approved.state).toBe("queued");
    expect(transition(approved, EVENTS.approved as JobEvent, NOW)).toBe(NO_CHANGE);
    expect(transition(approved, EVENTS.denied as JobEvent, NOW)).toBe(NO_CHANGE);
  });

  it("stores no reason when the denier gave none", () => {
    const t = transition(awaiting, { type: "denied", by: APPROVER, reason: "   " }, NOW);
    expect(t.changes.state).toBe("denied");
    expect(t.changes.finalReason).toBeUndefined();
  });

  it("cancels a queued job whose CreateImage was called by removing what it may have made", () => {
    const attempted = makeJob({ state: "queued", createAttemptedAt: NOW - 1000 });
    expect(transition(attempted, EVENTS.cancel_requested as JobEvent, NOW)).toEqual(cancelling);
  });

  it("keeps the image id CreateImage returned after a cancel, and leaves a refused CreateImage to the cancel", () => {
    const job = makeJob({ state: "cancelling", createAttemptedAt: NOW - 1000 });
    expect(transition(job, { type: "image_created", imageId: "ami-0def" }, NOW)).toEqual({
      changes: { imageId: "ami-0def" },
      notices: [],
    });
    // An earlier attempt's lost answer may have made an image: the cancel looks for it by tag.
    expect(transition(job, { type: "create_refused", reason: "no" }, NOW)).toBe(NO_CHANGE);
  });

  it.each(["approved", "denied"] as const)("ends as expired when %s comes after the deadline", (type) => {
    const late = makeJob({ state: "awaiting_approval", approvalExpiresAt: NOW });
    const event: JobEvent =
      type === "approved" ? { type, by: APPROVER } : { type, by: APPROVER, reason: "x" };
    const t = transition(late, event, NOW);
    expect(t.changes.state).toBe("expired");
    expect(t.changes).not.toHaveProperty("decision");
    expect(transition(late, event, NOW - 1).changes.state).toBe(type === "approved" ? "queued" : "denied");
  });

  it("posts a second cancel after a refused one as a new reply", () => {
    const first = transition(
      makeJob({ state: "pending", imageId: "ami-0abc" }),
      EVENTS.cancel_requested as JobEvent,
      NOW,
    );
    const again = transition(
      makeJob({ state: "pending", imageId: "ami-0abc", finalReason: "refused" }),
      EVENTS.cancel_requested as JobEvent,
      NOW + 5000,
    );
    expect(first.notices.map((n) => n.key)).not.toEqual(again.notices.map((n) => n.key));
  });

  it("goes back to queued when a cancel without an image is refused", () => {
    const job = makeJob({ state: "cancelling", imageId: undefined, cancelledBy: APPROVER });
    expect(transition(job, { type: "cancel_refused", reason: "x" }, NOW).changes.state).toBe("queued");
  });

  it("says nothing was made when a cancel found no image", () => {
    const job = makeJob({ state: "cancelling", imageId: undefined });
    expect(transition(job, { type: "cancel_done", imageExisted: false }, NOW).changes.finalReason).toBe(
      "No image had been made yet.",
    );
  });
});
