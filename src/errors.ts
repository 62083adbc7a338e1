/**
 * The few error classes of ami-bot. Callers branch on `instanceof` or `code`, never on message text.
 */

export class ConfigError extends Error {
  readonly code = "config_invalid";
  constructor(readonly problems: readonly string[]) {
    super(`ami-bot cannot start; fix these settings:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Why AWS refused or failed a call, in terms a person can act on. */
export type AwsFailureCode =
  | "name_taken"
  | "instance_not_found"
  | "instance_state"
  | "instance_out_of_scope"
  | "access_denied"
  | "assume_role_failed"
  | "throttled"
  | "credentials_expired"
  | "aws_unavailable"
  | "dry_run_ok"
  | "unknown";

export class AwsRefusedError extends Error {
  constructor(
    readonly code: AwsFailureCode,
    /** Plain words: what happened and what to do. Safe to show in Slack. */
    readonly userMessage: string,
    /** True when trying again later may succeed (throttling, outages, expired credentials). */
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(userMessage, options);
    this.name = "AwsRefusedError";
  }
}

/** Slack refused a call in a way that retrying will not fix (not in channel, archived, …). */
export class SlackDeliveryError extends Error {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(`Slack refused the message: ${code}`, options);
    this.name = "SlackDeliveryError";
  }
}
