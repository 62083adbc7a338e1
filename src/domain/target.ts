/**
 * What the domain knows of a target account and of the watcher's pace. config.ts builds these from
 * settings; the domain owns them, so its rules do not depend on how settings are loaded.
 */

/** Who may use a target. Nobody unless listed; `*` in `users` means everyone. */
export interface AccessRule {
  readonly users: readonly string[];
  readonly usergroups: readonly string[];
  readonly channels: readonly string[];
}

/** Which instances of a target may be imaged: all of them, or only those carrying every listed tag. */
export interface InstanceScope {
  readonly requiredTags: Readonly<Record<string, string>>;
}

/**
 * Who decides about a reboot. CreateImage without NoReboot restarts the instance and no IAM key can stop it,
 * so it is the account owner's call: `never` always sends NoReboot; `ask` lets the person choose, behind a
 * confirm dialog naming the instance.
 */
export type RebootPolicy = "never" | "ask";

export interface Target {
  readonly name: string;
  readonly roleArn: string;
  readonly accountId: string;
  readonly partition: string;
  readonly externalId: string | undefined;
  readonly regions: readonly string[];
  readonly allow: AccessRule;
  readonly instanceScope: InstanceScope;
  readonly reboot: RebootPolicy;
  /**
   * Tag keys a person may set: exact keys, or prefixes ending in `*` (`app:*`). Undefined: any key except
   * the reserved ones (`aws:*`, `Name`, `ami-bot:*`, which ami-bot sets itself).
   */
  readonly tagKeys: readonly string[] | undefined;
  /** New jobs one person may start in this target per hour. */
  readonly jobsPerHour: number;
  /** Guests and people from other organisations (Slack Connect) may use the target only when true. */
  readonly allowGuests: boolean;
  /** A channel rule counts in a public channel (which anyone can join) only when true. */
  readonly allowPublicChannels: boolean;
  /**
   * The two-person rule: when set, a job waits until one of the approvers (never its requester) approves
   * it, and nothing is created before. Undefined: jobs start at once.
   */
  readonly approval: ApprovalRule | undefined;
  /** What may follow the image, each step opt-in per job: copies, sharing, and the keep rule's cleanup. */
  readonly after: AfterImageSettings;
  /** People who may run `/ami cleanup` for this target (U…/W… ids). */
  readonly admins: readonly string[];
}

/** A region an image may be copied into, with the KMS key its copies are encrypted with there (if any). */
export interface CopyDestination {
  readonly region: string;
  /** A key ARN (or alias ARN) in that region; undefined: an encrypted source keeps EBS's default key. */
  readonly kmsKeyId: string | undefined;
}

/** Which images ami-bot keeps: the newest `lastPerInstance` per instance and region, none older than `maxAgeMs`. */
export interface KeepRule {
  readonly lastPerInstance: number | undefined;
  readonly maxAgeMs: number | undefined;
  /** Where each sweep's summary goes (a channel id). */
  readonly channel: string;
}

/**
 * The account owner's offer: regions a person may copy an image into and accounts they may share it with
 * (the form shows each, unticked), and the keep rule. Empty lists and no rule: nothing after the image.
 */
export interface AfterImageSettings {
  readonly copyTo: readonly CopyDestination[];
  readonly shareWith: readonly string[];
  readonly keep: KeepRule | undefined;
}

export const NO_AFTER_STEPS: AfterImageSettings = { copyTo: [], shareWith: [], keep: undefined };

/** Who may approve a target's jobs, and how long a job waits for a decision before it ends as expired. */
export interface ApprovalRule {
  readonly approvers: { readonly users: readonly string[]; readonly usergroups: readonly string[] };
  readonly expiresAfterMs: number;
}

export interface WatcherSettings {
  /** How often a pending image is checked, in ms. */
  readonly pollIntervalMs: number;
  /** After this long pending, the thread is told and checks slow down. */
  readonly slowAfterMs: number;
  readonly slowPollIntervalMs: number;
  /** After this long the job is given up as timed out. */
  readonly giveUpAfterMs: number;
}
