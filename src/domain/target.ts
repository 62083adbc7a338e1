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

export interface Target {
  readonly name: string;
  readonly roleArn: string;
  readonly accountId: string;
  readonly partition: string;
  readonly externalId: string | undefined;
  readonly regions: readonly string[];
  readonly allow: AccessRule;
  readonly instanceScope: InstanceScope;
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
