/**
 * Counts AWS SDK v3 calls by operation, and their failures by error code, through the client's middleware
 * stack, so every command sent through a client is counted without touching the call sites.
 *
 * One count per logical call (one `send`), not per attempt: the middleware sits at the top of the
 * initialize step, outside the retry middleware (finalizeRequest step), so it sees a call once, with the
 * outcome after the SDK's last retry. A throttled call that succeeded on its second attempt is one call
 * and no error.
 */
import type {
  HandlerExecutionContext,
  InitializeHandler,
  InitializeHandlerArguments,
  InitializeHandlerOutput,
  Pluggable,
} from "@smithy/types";

/** Told of each finished AWS call: the operation ("CreateImage") and, when it failed, the error's code. */
export type AwsCallHook = (operation: string, errorCode?: string) => void;

/** The middleware's name on the stack; adding it again replaces it, so a client is never counted twice. */
export const AWS_METRICS_MIDDLEWARE = "amiBotAwsMetrics";

/** A plugin for `client.middlewareStack.use(...)` or `fromTemporaryCredentials({ clientPlugins })`. */
export function awsMetricsMiddleware<Input extends object, Output extends object>(
  onAwsCall: AwsCallHook,
): Pluggable<Input, Output> {
  const middleware =
    (next: InitializeHandler<Input, Output>, context: HandlerExecutionContext) =>
    async (args: InitializeHandlerArguments<Input>): Promise<InitializeHandlerOutput<Output>> => {
      const operation = operationOf(context);
      let output: InitializeHandlerOutput<Output>;
      try {
        output = await next(args);
      } catch (error) {
        report(onAwsCall, operation, awsErrorCode(error));
        throw error;
      }
      report(onAwsCall, operation);
      return output;
    };
  return {
    applyToStack(stack) {
      stack.add(middleware, {
        step: "initialize",
        priority: "high",
        name: AWS_METRICS_MIDDLEWARE,
        override: true,
      });
    },
  };
}

/** "DescribeImagesCommand" → "DescribeImages". */
function operationOf(context: HandlerExecutionContext): string {
  const name = context.commandName ?? "unknown";
  return name.endsWith("Command") ? name.slice(0, -"Command".length) : name;
}

/**
 * The service's error code (the SDK sets it as `name`: "UnauthorizedOperation", "InvalidAMIID.NotFound"),
 * else a network code ("ECONNREFUSED") or the error's class ("TimeoutError", "AbortError").
 */
export function awsErrorCode(error: unknown): string {
  const e = (error ?? {}) as { name?: unknown; code?: unknown };
  if (typeof e.name === "string" && e.name !== "" && e.name !== "Error") return e.name;
  if (typeof e.code === "string" && e.code !== "") return e.code;
  return "Error";
}

/** Metrics never fail the call they count. */
function report(onAwsCall: AwsCallHook, operation: string, errorCode?: string): void {
  try {
    onAwsCall(operation, errorCode);
  } catch {
    // A broken hook must not turn a good AWS answer into a failure; the call itself is what matters.
  }
}
