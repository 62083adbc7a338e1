/**
 * The Notifier port in memory: records what would have appeared in Slack (which channel, which thread, in
 * what order, at what time) and fails the calls a test arms.
 */
import type { Job, JobState } from "../../src/domain/job.js";
import type { Clock, Notifier, OutboxMessage } from "../../src/domain/ports.js";

export type NotifierMethod =
  | "postRoot"
  | "postReply"
  | "updateRoot"
  | "noteRequester"
  | "notifyApprover"
  | "findPosted";

/** One thing a person would see in Slack. */
export interface Delivery {
  readonly op: "root" | "reply" | "update" | "note" | "dm";
  readonly jobId: string;
  /** Where it appeared: the thread's channel, or the requester for a note. */
  readonly channel: string;
  /** The thread it is in (replies and updates). */
  readonly threadTs: string | undefined;
  readonly ts: string | undefined;
  /** The notice key (root, creating, progress:50, channel_unusable:C…). */
  readonly key: string;
  /** The job's state as rendered. */
  readonly state: JobState;
  readonly at: number;
}

interface ArmedFailure {
  readonly method: NotifierMethod;
  readonly when: ((job: Job, key: string) => boolean) | undefined;
  readonly error: Error;
  remaining: number;
}

export class RecordingNotifier implements Notifier {
  readonly deliveries: Delivery[] = [];
  readonly lookups: { jobId: string; key: string; rootTs: string | undefined }[] = [];
  private failures: ArmedFailure[] = [];
  private seq = 100;

  constructor(private readonly clock: Clock = { now: () => 0 }) {}

  /** Makes the next call(s) to `method` (matching `when`, if given) throw `error`. */
  failNext(
    method: NotifierMethod,
    error: Error,
    options: { when?: (job: Job, key: string) => boolean; times?: number } = {},
  ): void {
    this.failures.push({ method, when: options.when, error, remaining: options.times ?? 1 });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /** The deliveries of one job, in order. */
  of(jobId: string): Delivery[] {
    return this.deliveries.filter((d) => d.jobId === jobId);
  }

  /** "op:key" per delivery of a job, a compact view of its thread. */
  summary(jobId: string): string[] {
    return this.of(jobId).map((d) => `${d.op}:${d.key}`);
  }

  async postRoot(job: Job): Promise<{ ts: string; channel: string }> {
    this.maybeFail("postRoot", job, "root");
    const ts = this.push({ op: "root", job, channel: job.channelId, threadTs: undefined, key: "root" });
    return { ts, channel: job.channelId };
  }

  async postReply(job: Job, rootTs: string, message: OutboxMessage): Promise<string> {
    this.maybeFail("postReply", job, message.key);
    return this.push({
      op: "reply",
      job,
      channel: job.rootChannelId ?? job.channelId,
      threadTs: rootTs,
      key: message.key,
    });
  }

  async updateRoot(job: Job, rootTs: string): Promise<void> {
    this.maybeFail("updateRoot", job, "root_update");
    this.push({
      op: "update",
      job,
      channel: job.rootChannelId ?? job.channelId,
      threadTs: rootTs,
      key: "root",
    });
  }

  async noteRequester(job: Job, key: string): Promise<void> {
    this.maybeFail("noteRequester", job, key);
    this.push({ op: "note", job, channel: job.requestedBy, threadTs: undefined, key });
  }

  async notifyApprover(job: Job, userId: string): Promise<void> {
    this.maybeFail("notifyApprover", job, `approver_dm:${userId}`);
    this.push({ op: "dm", job, channel: userId, threadTs: undefined, key: `approver_dm:${userId}` });
  }

  async findPosted(
    job: Job,
    key: string,
    rootTs: string | undefined,
    _since: number,
  ): Promise<string | undefined> {
    this.lookups.push({ jobId: job.id, key, rootTs });
    this.maybeFail("findPosted", job, key);
    const found = this.deliveries.find((d) =>
      rootTs === undefined
        ? d.op === "root" && d.jobId === job.id && d.channel === job.channelId
        : d.op === "reply" && d.jobId === job.id && d.threadTs === rootTs && d.key === key,
    );
    return found?.ts;
  }

  private push(d: {
    op: Delivery["op"];
    job: Job;
    channel: string;
    threadTs: string | undefined;
    key: string;
  }): string {
    const ts = `1790000000.${String(this.seq++).padStart(6, "0")}`;
    this.deliveries.push({
      op: d.op,
      jobId: d.job.id,
      channel: d.channel,
      threadTs: d.threadTs,
      ts: d.op === "update" || d.op === "note" || d.op === "dm" ? undefined : ts,
      key: d.key,
      state: d.job.state,
      at: this.clock.now(),
    });
    return ts;
  }

  private maybeFail(method: NotifierMethod, job: Job, key: string): void {
    const armed = this.failures.find(
      (f) => f.method === method && f.remaining > 0 && (f.when === undefined || f.when(job, key)),
    );
    if (!armed) return;
    armed.remaining--;
    throw armed.error;
  }
}
