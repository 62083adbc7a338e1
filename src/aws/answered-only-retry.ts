import { StandardRetryStrategy } from "@smithy/core/retry";
import type { RetryErrorInfo, RetryStrategyV2, StandardRetryToken } from "@smithy/types";

/**
 * The SDK's standard retries, but only for calls AWS answered (throttling, a 5xx): a call that got no answer
 * (a timeout, a reset connection) may have taken effect, so resending a CreateImage blindly could make a
 * second image. Such a call fails at once and the job decides, after looking for its image by tag.
 */
export function answeredOnlyRetryStrategy(maxAttempts: number): RetryStrategyV2 {
  // The tokens are the standard strategy's own, handed back to it.
  const standard = new StandardRetryStrategy(maxAttempts);
  return {
    acquireInitialRetryToken: (scope: string) => standard.acquireInitialRetryToken(scope),
    async refreshRetryTokenForRetry(
      token: StandardRetryToken,
      info: RetryErrorInfo,
    ): Promise<StandardRetryToken> {
      if (!info.error?.$metadata?.httpStatusCode)
        throw new Error("no answer from AWS: not resent, since the call may have taken effect");
      return standard.refreshRetryTokenForRetry(token, info);
    },
    recordSuccess: (token: StandardRetryToken) => standard.recordSuccess(token),
  };
}
