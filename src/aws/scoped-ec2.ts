/**
 * What every EC2 adapter shares: clients built per scoped session (STS AssumeRole with a session policy),
 * the metrics hook on each, a deadline on every call, and one switch (close) that ends every call in flight
 * so a shutdown never waits on AWS. Ec2Images and Ec2Cleanup each hold one.
 */
import { EC2Client } from "@aws-sdk/client-ec2";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import type { Clock, Place, Requester } from "../domain/ports.js";
import { answeredOnlyRetryStrategy } from "./answered-only-retry.js";
import { type AwsCallHook, awsMetricsMiddleware } from "./aws-metrics-middleware.js";
import { createSessionFactory, type SessionFactory } from "./scoped-credentials.js";
import type { PolicyDocument, PolicyScope } from "./session-policy.js";
import { type AwsTimeouts, callDeadlineMs, DEFAULT_AWS_TIMEOUTS, requestHandlerOptions } from "./timeouts.js";

/** How a client retries and how long it waits. */
export interface Ec2ClientSettings extends AwsTimeouts {
  readonly maxAttempts: number;
  /** Retry only calls AWS answered (for calls that must not be resent blindly: CreateImage). */
  readonly answeredOnly?: boolean;
}

/** Builds an EC2 client for a region and credentials; injected so tests can count clients or add middleware. */
export type Ec2ClientFactory = (
  region: string,
  credentials: AwsCredentialIdentityProvider,
  settings: Ec2ClientSettings,
) => EC2Client;

export interface Ec2Options {
  readonly sessions?: SessionFactory;
  readonly clientFactory?: Ec2ClientFactory;
  /** Identity of the adapter's own read-only sessions (they act for nobody in particular). */
  readonly watcherIdentity?: string;
  readonly timeouts?: AwsTimeouts;
  /** Times how long cached read-only sessions sit unused. */
  readonly clock?: Clock;
  /**
   * Told of every EC2 call (by operation, once per call whatever the retries) and, with the default
   * sessions, every STS AssumeRole: the hook is added to each client built, whichever factory built it.
   */
  readonly onAwsCall?: AwsCallHook;
}

export const defaultEc2ClientFactory: Ec2ClientFactory = (region, credentials, settings) =>
  // Standard retry mode backs off on RequestLimitExceeded and 5xx.
  new EC2Client({
    region,
    credentials,
    ...(settings.answeredOnly
      ? { retryStrategy: answeredOnlyRetryStrategy(settings.maxAttempts) }
      : { maxAttempts: settings.maxAttempts, retryMode: "standard" }),
    requestHandler: requestHandlerOptions(settings),
  });

/** Reads retry freely; beyond that the caller reschedules. */
export const READ_ATTEMPTS = 4;

/** AWS said the session itself is no good: a cached client must go, so the next call assumes afresh. */
export const BAD_SESSION: ReadonlySet<string> = new Set([
  "credentials_expired",
  "access_denied",
  "assume_role_failed",
]);

/** A place as a cache key: the target, its role (its account) and the region. */
export function placeKey(place: Place): string {
  return `${place.target.name}|${place.target.roleArn}|${place.region}`;
}

/** What a session policy needs of a place. */
export function policyScope(place: Place): PolicyScope {
  return { partition: place.target.partition, accountId: place.target.accountId, region: place.region };
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class ScopedEc2 {
  private readonly sessions: SessionFactory;
  private readonly clientFactory: Ec2ClientFactory;
  private readonly timeouts: AwsTimeouts;
  private readonly onAwsCall: AwsCallHook | undefined;
  /** Aborted by close(): every call still waiting on AWS ends at once, so shutdown never waits on AWS. */
  private readonly closing = new AbortController();

  constructor(options: Ec2Options = {}) {
    this.timeouts = options.timeouts ?? DEFAULT_AWS_TIMEOUTS;
    this.onAwsCall = options.onAwsCall;
    this.sessions =
      options.sessions ??
      createSessionFactory({}, this.timeouts, options.onAwsCall ? { onAwsCall: options.onAwsCall } : {});
    this.clientFactory = options.clientFactory ?? defaultEc2ClientFactory;
  }

  /** Ends every call in flight (they fail as "did not answer in time") and refuses new ones. */
  close(): void {
    this.closing.abort();
  }

  /** Every call has a deadline of its own, SDK retries included, and ends early on close(). */
  call(): { abortSignal: AbortSignal } {
    return {
      abortSignal: AbortSignal.any([AbortSignal.timeout(callDeadlineMs(this.timeouts)), this.closing.signal]),
    };
  }

  /** A client under a session of its own, scoped by `policy` and naming `requester`. */
  client(
    place: Place,
    requester: Requester,
    policy: PolicyDocument,
    retry: Pick<Ec2ClientSettings, "maxAttempts" | "answeredOnly"> = { maxAttempts: READ_ATTEMPTS },
  ): EC2Client {
    const credentials = this.sessions({
      target: place.target,
      region: place.region,
      policy,
      userId: requester.userId,
      channelId: requester.channelId,
    });
    const client = this.clientFactory(place.region, credentials, { ...this.timeouts, ...retry });
    if (this.onAwsCall) client.middlewareStack.use(awsMetricsMiddleware(this.onAwsCall));
    return client;
  }
}
