/**
 * Time limits on every AWS call. The SDK's defaults let a socket wait for minutes, retried; one hung call
 * would then stall every job the watcher handles and hold up shutdown.
 */
export interface AwsTimeouts {
  /** Time to open a TCP (and TLS) connection. */
  readonly connectTimeoutMs: number;
  /** Time a request may wait with no answer. */
  readonly requestTimeoutMs: number;
}

export const DEFAULT_AWS_TIMEOUTS: AwsTimeouts = { connectTimeoutMs: 3_000, requestTimeoutMs: 20_000 };

/** The SDK's Node.js request handler options for these limits. */
export function requestHandlerOptions(timeouts: AwsTimeouts) {
  return {
    connectionTimeout: timeouts.connectTimeoutMs,
    requestTimeout: timeouts.requestTimeoutMs,
    // Without it, the handler only logs a warning when requestTimeout passes and goes on waiting.
    throwOnRequestTimeout: true,
  };
}

/** The most one `send` may take, the SDK's own retries included: one full attempt's worth. */
export function callDeadlineMs(timeouts: AwsTimeouts): number {
  return timeouts.connectTimeoutMs + timeouts.requestTimeoutMs;
}
