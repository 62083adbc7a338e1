/** Approvers' direct messages: sent while the job waits, in order after the thread; dropped once decided. */
import { describe, expect, it } from "vitest";
import { newJob } from "../../fakes/job-fixtures.js";
import { recordingRelay } from "../../support/recording-relay.js";

describe("approver DMs", () => {
  it("go to each listed approver after the root and the thread's approval request", async () => {
    const { store, notifier, relay, clock } = recordingRelay();
    const job = newJob({ approvalExpiresAt: clock.now() + 3_600_000, approverDms: ["U0LEAD", "U0SECOND"] });
    store.insert(job, clock.now());
    await relay.drain();
    expect(notifier.summary(job.id)).toEqual([
      "root:root",
      "reply:approval_request",
      "dm:approver_dm:U0LEAD",
      "dm:approver_dm:U0SECOND",
    ]);
    expect(
      notifier
        .of(job.id)
        .filter((d) => d.op === "dm")
        .map((d) => d.channel),
    ).toEqual(["U0LEAD", "U0SECOND"]);
  });

  it("are dropped when someone decided before they went out", async () => {
    const { store, notifier, relay, clock } = recordingRelay();
    const job = newJob({ approvalExpiresAt: clock.now() + 3_600_000, approverDms: ["U0LEAD"] });
    store.insert(job, clock.now());
    store.decide(job.id, { type: "approved", by: "U0OTHER" }, clock.now());
    await relay.drain();
    expect(notifier.summary(job.id)).not.toContain("dm:approver_dm:U0LEAD");
    expect(store.outboxForJob(job.id).some((m) => m.key === "approver_dm:U0LEAD" && !m.sending)).toBe(true);
    expect(store.pendingOutbox(clock.now(), 10)).toEqual([]);
  });
});
