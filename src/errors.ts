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
  | "name_malformed"
  | "instance_not_found"
  | "instance_state"
  | "instance_out_of_scope"
  | "volumes_invalid"
  | "access_denied"
  | "assume_role_failed"
  | "throttled"
  | "credentials_expired"
  | "aws_unavailable"
  | "dry_run_ok"
  | "account_unknown"
  | "kms_key_unusable"
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

/**
 * Sharing stopped after the launch permission went through: the accounts can launch the image, but AWS
 * refused (or never answered) create-volume permission on one of its snapshots. The message is AWS's.
 */
export class PartialShareError extends AwsRefusedError {
  constructor(
    refused: AwsRefusedError,
    /** The snapshot whose create-volume permission was not added. */
    readonly snapshotId: string,
  ) {
    super(refused.code, refused.userMessage, refused.retryable, { cause: refused.cause });
    this.name = "PartialShareError";
  }
}

/** Slack answers meaning the bot cannot post in that conversation at all (the thread must move). */
const CHANNEL_UNUSABLE: ReadonlySet<string> = new Set([
  "not_in_channel",
  "channel_not_found",
  "is_archived",
  "restricted_action",
  "restricted_action_read_only_channel",
  "restricted_action_thread_only_channel",
  "team_access_not_granted",
  "ekm_access_denied",
]);

/** Slack refused a call in a way that retrying will not fix (not in channel, archived, bad payload, …). */
export class SlackDeliveryError extends Error {
  /** The conversation itself is out of reach, as opposed to this one message being refused. */
  readonly channelUnusable: boolean;
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(`Slack refused the message: ${code}`, options);
    this.name = "SlackDeliveryError";
    this.channelUnusable = CHANNEL_UNUSABLE.has(code);
  }
}

/** A Slack call worth trying again later: rate limits, outages, no answer. */
export class SlackRetryableError extends Error {
  /** The call failed without a clear answer (timeout, 5xx, internal_error): the message may have been posted. */
  readonly maybeDelivered: boolean;
  constructor(
    message: string,
    /** Slack's Retry-After, when it gave one. */
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown; maybeDelivered?: boolean },
  ) {
    super(message, options);
    this.name = "SlackRetryableError";
    this.maybeDelivered = options?.maybeDelivered ?? false;
  }
}

/** Slack refused the bot's own token at start-up: retrying will not help, the operator must fix a setting. */
export class SlackTokenRejectedError extends Error {
  readonly code = "slack_token_rejected";
  constructor(
    /** Which setting holds the refused token. */
    readonly setting: "SLACK_BOT_TOKEN" | "SLACK_APP_TOKEN",
    /** Slack's error code, such as invalid_auth or token_revoked. */
    readonly slackError: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${setting} was refused by Slack (${slackError}): ${
        setting === "SLACK_BOT_TOKEN"
          ? "reinstall the app and copy its Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN"
          : "make an app-level token with connections:write on the app's Basic Information page and put it in SLACK_APP_TOKEN"
      }`,
      options,
    );
    this.name = "SlackTokenRejectedError";
  }
}

/** The process cannot start for a reason outside the settings' syntax (a port in use, a database it cannot open). */
export class StartupError extends Error {
  readonly code = "startup_failed";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StartupError";
  }
}
