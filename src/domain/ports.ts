/**
 * The ports the domain and watcher depend on. Adapters (AWS, SQLite, Slack) implement them; tests use fakes.
 */

import type { Tag } from "./image-request.js";
import type { ImageState, Job, JobEvent, Notice } from "./job.js";
import type { BotImage } from "./keep-rule.js";
import type { Target } from "./target.js";

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Observes named points in a job's life ("job_stored", "create_image_returned", "slack_posted:available", …).
 * Crash tests use it to kill the process at an exact step; by default it does nothing.
 */
export type StepHook = (step: string) => void;

/** A place images are made: one target (account + role) in one region. */
export interface Place {
  readonly target: Target;
  readonly region: string;
}

/** Who is asking, carried into the assumed session (SourceIdentity, session tags) for CloudTrail. */
export interface Requester {
  readonly userId: string;
  readonly channelId: string;
}

export interface InstanceSummary {
  readonly instanceId: string;
  readonly name: string | undefined;
  readonly state: string;
  readonly instanceType: string | undefined;
}

/** An EBS volume as the instance's block device mapping names it (DescribeInstances). */
export interface InstanceBlockDevice {
  readonly deviceName: string;
  readonly volumeId: string | undefined;
}

/** An instance with what an image of it is made from: its root device and EBS volumes. */
export interface InstanceDetails extends InstanceSummary {
  readonly rootDeviceName: string | undefined;
  readonly blockDevices: readonly InstanceBlockDevice[];
}

/** One of an instance's EBS volumes as the form shows it (DescribeVolumes adds size and type). */
export interface InstanceVolume {
  readonly deviceName: string;
  readonly volumeId: string;
  /** Unknown when DescribeVolumes did not return the volume (detached meanwhile, say). */
  readonly sizeGiB: number | undefined;
  readonly volumeType: string | undefined;
  /** The instance's root device: always in the image. */
  readonly root: boolean;
}

export interface CreateImageParams {
  readonly jobId: string;
  readonly instanceId: string;
  readonly imageName: string;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly tags: readonly Tag[];
  /** Device names left out of the image (sent as NoDevice mappings); empty for the whole instance. */
  readonly excludedDevices: readonly string[];
}

/** A copy of a job's available image into another region (CopyImage, called in the destination region). */
export interface CopyImageParams {
  readonly jobId: string;
  readonly sourceRegion: string;
  readonly sourceImageId: string;
  readonly instanceId: string;
  readonly imageName: string;
  readonly description: string | undefined;
  /** The person's tags, as on the source image; ami-bot adds its own (job id, source image, instance). */
  readonly tags: readonly Tag[];
  /** The KMS key the copy is encrypted with in the destination; undefined: EBS's default for an encrypted source. */
  readonly kmsKeyId: string | undefined;
}

/** Launch permission on one image, and create-volume permission on its snapshots, for these accounts. */
export interface ShareImageParams {
  readonly jobId: string;
  readonly imageId: string;
  readonly snapshotIds: readonly string[];
  readonly accounts: readonly string[];
}

export interface DeregisterParams {
  readonly jobId: string;
  readonly imageId: string;
}

/**
 * The image is gone; `leftBehind` says, in plain words, which snapshots AWS kept (they still cost storage).
 * `notFound`: AWS said it has no such image, which right after CreateImage may only mean it is not visible
 * yet (EC2 is eventually consistent); the caller decides whether to believe it.
 */
export interface DeregisterOutcome {
  readonly leftBehind: string | undefined;
  readonly notFound?: boolean;
}

export interface ImageStatus {
  readonly imageId: string;
  readonly state: ImageState;
  readonly reason: string | undefined;
  readonly snapshotIds: readonly string[];
}

/** EC2 as the domain sees it. Errors are AwsRefusedError with a plain-language message. */
export interface ImageService {
  /** Instances in scope matching a search (Name tag or id), at most a page; never an unfiltered scan. */
  findInstances(place: Place, requester: Requester, query: string): Promise<InstanceSummary[]>;
  /** The instance if it exists and is in the target's scope, with its root device and EBS volumes. */
  describeInstance(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceDetails | undefined>;
  /**
   * The instance's EBS volumes with size and type, root first, then by device name; undefined when the
   * instance does not exist. Read-only, under the same session as describeInstance.
   */
  describeVolumes(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceVolume[] | undefined>;
  createImage(place: Place, requester: Requester, params: CreateImageParams): Promise<string>;
  /** Asks AWS whether CreateImage would be allowed (DryRun), creating nothing. */
  checkCreateImage(place: Place, requester: Requester, params: CreateImageParams): Promise<void>;
  /** The image a job created, found by its job-id tag, for a crash between CreateImage and storing the id. */
  findImageByJob(place: Place, requester: Requester, jobId: string): Promise<string | undefined>;
  /** The status of many images in one place, in as few calls as possible. Missing ids are absent. */
  describeImages(place: Place, imageIds: readonly string[]): Promise<Map<string, ImageStatus>>;
  /**
   * Whether an image this account owns in the place already has exactly this name (CreateImage would refuse
   * it). Read-only, under the watcher's session: it says nothing about any person's access.
   */
  imageNameTaken(place: Place, name: string): Promise<boolean>;
  /**
   * Deregisters a job's image with DeleteAssociatedSnapshots (a cancel), under a session allowed exactly
   * that image and only snapshots tagged with the job's id. An image AWS no longer has counts as done.
   */
  deregisterImage(place: Place, requester: Requester, params: DeregisterParams): Promise<DeregisterOutcome>;
  /** Progress (0–100) of snapshots in one place. */
  snapshotProgress(place: Place, snapshotIds: readonly string[]): Promise<Map<string, number>>;
  /**
   * CopyImage into `destination` (its region), under a session allowed to copy exactly the source image into
   * that region and tag only what the copy makes. Returns the copy's id. Its ClientToken is derived from the
   * job and region, so a repeated call (after a lost answer) returns the same copy instead of a second one.
   */
  copyImage(destination: Place, requester: Requester, params: CopyImageParams): Promise<string>;
  /** The job's copy of `sourceImageId` in `destination`, found by its tags, for a crash before its id was stored. */
  findCopy(destination: Place, jobId: string, sourceImageId: string): Promise<string | undefined>;
  /**
   * One ModifyImageAttribute (launch permission) and one ModifySnapshotAttribute per snapshot (create-volume
   * permission), adding exactly `accounts`, never the public group, under a session allowed only those calls
   * on those resources.
   */
  shareImage(place: Place, requester: Requester, params: ShareImageParams): Promise<void>;
}

/** What AWS did when asked to deregister an image for the keep rule. */
export interface CleanupOutcome {
  /** AWS no longer had the image (removed meanwhile): counts as done. */
  readonly notFound: boolean;
  /** Snapshots AWS did not delete (DeleteSnapshotResults neither `success` nor `skipped`), with its code. */
  readonly snapshotsLeft: readonly { readonly snapshotId: string; readonly code: string }[];
}

/**
 * The keep rule's view of EC2 in one place: the images ami-bot made there, which of them launch templates
 * use, and removing one. Reads run under a read-only session; each removal under a session of its own,
 * allowed to deregister only that image and delete only snapshots carrying the `ami-bot:job-id` tag.
 */
export interface ImageCleanup {
  /** Every image this account owns in the place carrying the `ami-bot:job-id` tag (all pages). */
  listBotImages(place: Place): Promise<BotImage[]>;
  /** Which of these images the $Latest or $Default version of a launch template in the place names. */
  inLaunchTemplates(place: Place, imageIds: readonly string[]): Promise<Set<string>>;
  /**
   * DeregisterImage with DeleteAssociatedSnapshots, for `requester` (CloudTrail's SourceIdentity). Only the
   * listed snapshots (the image's, from listBotImages) may be deleted; any other is left and reported.
   */
  deregister(
    place: Place,
    requester: Requester,
    imageId: string,
    snapshotIds: readonly string[],
  ): Promise<CleanupOutcome>;
}

export interface NewJob {
  readonly id: string;
  readonly idempotencyKey: string;
  readonly requestedBy: string;
  readonly originChannelId: string;
  readonly targetName: string;
  readonly roleArn: string;
  readonly region: string;
  readonly instanceId: string;
  readonly instanceName: string | undefined;
  readonly imageName: string;
  readonly description: string | undefined;
  readonly noReboot: boolean;
  readonly tags: readonly Tag[];
  /** Device names to leave out of the image, checked against the instance when the form was sent. */
  readonly excludedDevices: readonly string[];
  readonly channelId: string;
  /** A hash of what was asked, so a second submission of one view with other values is told apart. */
  readonly requestHash: string;
  /** Set for a target with approvals: the job waits for a decision until then, and nothing is created. */
  readonly approvalExpiresAt?: number | undefined;
  /** Listed approvers to tell by direct message (one notice each); user groups are mentioned in the thread. */
  readonly approverDms?: readonly string[] | undefined;
  /** Regions to copy the image into once it is available, ticked in the form from the target's offer. */
  readonly copyTo?: readonly string[] | undefined;
  /** Accounts to share the image (and each copy) with, ticked in the form from the target's offer. */
  readonly shareWith?: readonly string[] | undefined;
}

/** The rules a new job must meet, checked in the same transaction that stores it. */
export interface AdmissionRules {
  /** New jobs one person may start in one target within an hour. */
  readonly jobsPerHour: number;
}

/** What became of a submission: stored, a repeat of one already stored, or refused by a rule. */
export type Admission =
  | { readonly status: "accepted" }
  /** The same view submitted again: `sameRequest` false means with other values (a replay or forgery). */
  | { readonly status: "duplicate"; readonly sameRequest: boolean }
  /** The instance already has an unfinished (queued or pending) job: that one. */
  | { readonly status: "instance_busy"; readonly job: Job }
  /** The person reached the hourly limit; `retryAt` is when the oldest counted job leaves the window. */
  | { readonly status: "rate_limited"; readonly retryAt: number; readonly limit: number };

export interface OutboxMessage {
  readonly id: number;
  readonly jobId: string;
  readonly kind: Notice["kind"];
  readonly key: string;
  readonly attempts: number;
  /** A delivery was started and not confirmed: it may have reached Slack before a crash. */
  readonly sending: boolean;
}

/** Where a job's image is made: the target, its role (and so its account) and the region. */
export interface JobPlace {
  readonly targetName: string;
  readonly roleArn: string;
  readonly region: string;
}

/**
 * Which jobs a listing shows: those of one conversation (its updates go there, or it was asked from there)
 * or those one person asked for; and, either way, only jobs made in `places` (the places the reader may use
 * now), so a list never tells anyone about images in an account they cannot use.
 */
export type RecentJobsFilter = ({ readonly channelId: string } | { readonly requestedBy: string }) & {
  readonly places: readonly JobPlace[];
};

/**
 * A value, or a promise of it: the embedded SQLite store answers synchronously (its transactions are plain
 * function calls), the Postgres one over the network. Callers always await, so neither leaks past the port.
 */
export type Awaitable<T> = T | Promise<T>;

/**
 * Where jobs and their messages are kept. With several replicas on one database (Postgres), `due` and
 * `pendingOutbox` also claim what they return for a lease period, so each job and each message is worked on
 * by one replica at a time; `markCreateAttempted`, `markDeregisterAttempted` and `markSending` succeed only
 * while that claim holds, so a replica that lost its lease never makes the call those marks guard.
 */
export interface JobStore {
  /** Stores a new job with its first notices; returns false when the idempotency key was already used. */
  insert(job: NewJob, now: number): Awaitable<boolean>;
  /**
   * Stores a job a person asked for, unless a rule refuses it: one unfinished job per instance (a target's
   * role + region + instance) and the hourly limit per person and target. Check and insert are one
   * transaction, so two submissions racing for one instance make exactly one job.
   */
  admit(job: NewJob, rules: AdmissionRules, now: number): Awaitable<Admission>;
  /** Records the instance's Name tag as AWS reports it (the only source shown in the channel). */
  setInstanceName(jobId: string, name: string | undefined, now: number): Awaitable<void>;
  get(id: string): Awaitable<Job | undefined>;
  /** The newest jobs the filter lets through, newest first, at most `limit`. */
  recentJobs(filter: RecentJobsFilter, limit: number): Awaitable<Job[]>;
  /** Jobs whose next check is due, oldest first. */
  due(now: number, limit: number): Awaitable<Job[]>;
  /** Applies an event through the domain's transition and stores changes and notices atomically. */
  apply(jobId: string, event: JobEvent, now: number): Awaitable<Job | undefined>;
  /**
   * As apply, for a person's click: `applied` says whether this event changed the job, so of two clicks at
   * once (Approve and Cancel, or a double click) exactly one is told it took effect.
   */
  decide(jobId: string, event: JobEvent, now: number): Awaitable<{ job: Job; applied: boolean } | undefined>;
  /**
   * As apply, only while this process holds its claim on the job (always, with one process per database):
   * for marks that guard a call to AWS (CopyImage), so a replica that lost its lease never makes the call.
   * True when the event was applied.
   */
  applyHeld(jobId: string, event: JobEvent, now: number): Awaitable<boolean>;
  /**
   * Gives back claims on jobs this process took with `due` but will not work on now (queued jobs beyond its
   * free CreateImage slots), so another replica can start them at once.
   */
  release(jobIds: readonly string[]): Awaitable<void>;
  /**
   * Whether this process still holds its claim on the job (always, with one process per database). A
   * replica whose claim was taken over while its call was out leaves the outcome to the new holder.
   */
  holds(jobId: string, now: number): Awaitable<boolean>;
  /** Jobs waiting for approval in these targets, oldest first. */
  awaitingApproval(targetNames: readonly string[], limit: number): Awaitable<Job[]>;
  /**
   * Records that CreateImage is about to be called, and queues the "creating" reply. False when the job is
   * no longer queued (cancelled meanwhile): CreateImage must then not be called.
   */
  markCreateAttempted(jobId: string, now: number): Awaitable<boolean>;
  /** Records that DeregisterImage is about to be called for a cancelling job; false when it is not cancelling. */
  markDeregisterAttempted(jobId: string, now: number): Awaitable<boolean>;
  markRootPosted(jobId: string, channelId: string, ts: string, now: number): Awaitable<void>;
  /** Records a failed check and when to try again. */
  recordError(jobId: string, message: string, nextCheckAt: number, now: number): Awaitable<void>;
  /** Records a successful check (ending any run of failures) and when to check next. */
  scheduleNext(jobId: string, nextCheckAt: number, now: number): Awaitable<void>;
  /** Sends the job's thread elsewhere (the requester's DM): a new root is posted there. */
  moveThread(jobId: string, channelId: string, now: number): Awaitable<void>;
  enqueue(jobId: string, notice: Notice, now: number): Awaitable<void>;
  /** Undelivered notices whose time has come, in the order they were written. */
  pendingOutbox(now: number, limit: number): Awaitable<OutboxMessage[]>;
  outboxForJob(jobId: string): Awaitable<OutboxMessage[]>;
  /**
   * Recorded before the Slack call, so a crash mid-call is known afterwards. False when this process no
   * longer holds the message (its lease ran out and another replica took it): it must then not be sent.
   */
  markSending(messageId: number, now: number): Awaitable<boolean>;
  markDelivered(messageId: number, ts: string | undefined, now: number): Awaitable<void>;
  /** A failed delivery, to retry at `nextAttemptAt`; `maybeDelivered` keeps it "sending" so the retry looks first. */
  markDeliveryFailed(
    messageId: number,
    error: string,
    nextAttemptAt: number,
    maybeDelivered?: boolean,
  ): Awaitable<void>;
  /** Marks a message as given up (e.g. an ephemeral note that cannot be delivered). */
  markDropped(messageId: number, error: string, now: number): Awaitable<void>;
  unfinishedCount(): Awaitable<number>;
  /**
   * An event said this image changed (push mode): its unfinished job, if any, is made due now. Returns the
   * job, or undefined when no unfinished job has this image (a foreign image, or one already finished).
   */
  checkImageSoon(image: ImageEventPlace, now: number): Awaitable<Job | undefined>;
  /** Counts for metrics: jobs by state, undelivered messages and when the oldest was written. */
  stats(): Awaitable<StoreStats>;
  /**
   * Claims the keep rule's sweep of one target: true only for the one caller (of every replica on this
   * database) that moved its last run to `now`, which happens when none ran in the last `everyMs`. One
   * atomic compare-and-set, so two replicas checking at once never both sweep.
   */
  claimSweep(targetName: string, now: number, everyMs: number): Awaitable<boolean>;
}

/** The image an event names, and where it says it is: a job made in another account or region is not it. */
export interface ImageEventPlace {
  readonly imageId: string;
  readonly region: string;
  readonly accountId: string;
}

export interface StoreStats {
  readonly jobsByState: Readonly<Record<string, number>>;
  readonly outboxBacklog: number;
  readonly oldestOutboxCreatedAt: number | undefined;
}

/** What a notice says in Slack, rendered from the job at delivery time. */
export interface Notifier {
  /** Posts the job's root message; returns its ts and the conversation it landed in (a DM's D… id for a user). */
  postRoot(job: Job): Promise<{ ts: string; channel: string }>;
  /** Posts a reply in the job's thread; returns its ts. */
  postReply(job: Job, rootTs: string, message: OutboxMessage): Promise<string>;
  /** Rewrites the root message in place to show the job's current state. */
  updateRoot(job: Job, rootTs: string): Promise<void>;
  /** An ephemeral note (or DM) to the requester; `key` says which (a refusal, an unusable channel). */
  noteRequester(job: Job, key: string): Promise<void>;
  /** A direct message asking one listed approver to decide, linking the job's thread (posted before it). */
  notifyApprover(job: Job, userId: string): Promise<void>;
  /**
   * After a crash mid-delivery: the ts of the message if it did reach Slack, so it is not posted twice.
   * `rootTs` undefined means the message sought is the root itself.
   */
  findPosted(job: Job, key: string, rootTs: string | undefined, since: number): Promise<string | undefined>;
}
