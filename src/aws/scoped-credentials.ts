import { fromTemporaryCredentials } from "@aws-sdk/credential-providers";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import type { Target } from "../domain/target.js";
import { AwsRefusedError } from "../errors.js";
import { type AwsCallHook, awsMetricsMiddleware } from "./aws-metrics-middleware.js";
import type { PolicyDocument } from "./session-policy.js";
import { type AwsTimeouts, DEFAULT_AWS_TIMEOUTS, requestHandlerOptions } from "./timeouts.js";

export interface SessionRequest {
  readonly target: Target;
  readonly region: string;
  readonly policy: PolicyDocument;
  /** The Slack user the session acts for; CloudTrail shows it as SourceIdentity. */
  readonly userId: string;
  readonly channelId: string;
}

/** Builds a credential provider for one scoped session. Injected so tests can count or replace sessions. */
export type SessionFactory = (request: SessionRequest) => AwsCredentialIdentityProvider;

/** The parameters of the AssumeRole call: pure, so tests assert exactly what AWS is asked. */
export function assumeRoleParams(request: SessionRequest) {
  const { target, policy, userId, channelId } = request;
  return {
    RoleArn: target.roleArn,
    RoleSessionName: `ami-bot-${userId}`.slice(0, 64),
    SourceIdentity: userId,
    ExternalId: target.externalId,
    Policy: JSON.stringify(policy),
    DurationSeconds: 900,
    Tags: [
      { Key: "slack-user", Value: userId },
      { Key: "slack-channel", Value: channelId },
    ],
  };
}

/**
 * The default factory: STS AssumeRole through the SDK's own provider, which refreshes before expiry.
 * The bot's own credentials and the STS endpoint come from the SDK's standard chain and variables.
 * `onAwsCall` is told of each AssumeRole (as "AssumeRole").
 */
export function createSessionFactory(
  clientConfig: {
    endpoint?: string;
    credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  } = {},
  timeouts: AwsTimeouts = DEFAULT_AWS_TIMEOUTS,
  options: { onAwsCall?: AwsCallHook } = {},
): SessionFactory {
  const clientPlugins = options.onAwsCall ? [awsMetricsMiddleware(options.onAwsCall)] : undefined;
  return (request) => {
    const provider = fromTemporaryCredentials({
      params: assumeRoleParams(request),
      ...(clientPlugins ? { clientPlugins } : {}),
      // AssumeRole cannot take an abort signal from the EC2 call that needs it: its own limits bound it.
      clientConfig: {
        region: request.region,
        maxAttempts: 2,
        requestHandler: requestHandlerOptions(timeouts),
        ...clientConfig,
      },
    });
    return async () => {
      try {
        return await provider();
      } catch (error) {
        throw translateAssumeRoleError(request.target, error);
      }
    };
  };
}

/**
 * Read-only sessions kept for reuse (as the clients that carry them), so a person typing in the picker
 * costs one AssumeRole, not one per keystroke. Bounded: past `maxEntries` the least recently used goes,
 * and an entry unused for `idleMs` is dropped rather than kept for someone who has left.
 */
export class SessionCache<T> {
  // A Map iterates in insertion order; every use re-inserts, so the first entries are the least recent.
  private readonly entries = new Map<string, { readonly value: T; readonly usedAt: number }>();

  constructor(private readonly limits: { maxEntries: number; idleMs: number; now: () => number }) {}

  /** The cached value for `key`, or a new one from `make` when there is none or it sat idle too long. */
  get(key: string, make: () => T): T {
    const now = this.limits.now();
    const entry = this.entries.get(key);
    this.entries.delete(key);
    const value = entry && now - entry.usedAt < this.limits.idleMs ? entry.value : make();
    this.entries.set(key, { value, usedAt: now });
    for (const [oldest, { usedAt }] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && now - usedAt < this.limits.idleMs) break;
      this.entries.delete(oldest);
    }
    return value;
  }

  /** Forgets `key`, so the next get makes a fresh one (after AWS refused the session). */
  delete(key: string): void {
    this.entries.delete(key);
  }
}

function translateAssumeRoleError(target: Target, error: unknown): AwsRefusedError {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (e.name === "Throttling" || e.name === "ThrottlingException")
    return new AwsRefusedError(
      "throttled",
      "AWS is throttling requests right now; ami-bot will retry.",
      true,
      {
        cause: error,
      },
    );
  if (e.name === "TimeoutError" || e.name === "AbortError" || e.code === "ETIMEDOUT")
    return new AwsRefusedError(
      "aws_unavailable",
      "AWS STS did not answer in time; ami-bot will retry.",
      true,
      {
        cause: error,
      },
    );
  if (status >= 500 || e.code === "ECONNREFUSED")
    return new AwsRefusedError("aws_unavailable", "AWS STS could not be reached; ami-bot will retry.", true, {
      cause: error,
    });
  if (e.name === "CredentialsProviderError")
    return new AwsRefusedError(
      "assume_role_failed",
      "ami-bot has no AWS credentials of its own to assume the target role with. Ask the people who run ami-bot to check its AWS set-up (npm run doctor).",
      false,
      { cause: error },
    );
  if (e.name === "ExpiredTokenException" || e.name === "ExpiredToken")
    return new AwsRefusedError("credentials_expired", "ami-bot's own AWS credentials have expired.", true, {
      cause: error,
    });
  // No HTTP answer at all (reset, DNS, timeout): worth trying again.
  if (status === 0)
    return new AwsRefusedError("aws_unavailable", "AWS STS could not be reached; ami-bot will retry.", true, {
      cause: error,
    });
  return new AwsRefusedError(
    "assume_role_failed",
    `ami-bot could not assume the role for target ${target.name} (${e.name ?? "error"}). ` +
      "The role's trust policy must allow ami-bot's identity, with the configured ExternalId, and allow sts:SetSourceIdentity and sts:TagSession. Ask the people who run ami-bot to check it (npm run doctor).",
    false,
    { cause: error },
  );
}
