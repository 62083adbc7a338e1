/**
 * Counts listeners still running, so a shutdown can let them finish: a handler may go on after its
 * ack (opening a modal, a dry run), and the HTTP server closing does not wait for that.
 */
import type { AnyMiddlewareArgs, Middleware } from "@slack/bolt";

export interface InflightTracker {
  readonly middleware: Middleware<AnyMiddlewareArgs>;
  readonly count: () => number;
  /** Resolves when no listener is running, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
}

export function createInflightTracker(): InflightTracker {
  let running = 0;
  let idle: (() => void)[] = [];
  return {
    middleware: async ({ next }) => {
      running++;
      try {
        await next();
      } finally {
        running--;
        if (running === 0) {
          for (const resolve of idle) resolve();
          idle = [];
        }
      }
    },
    count: () => running,
    drain(timeoutMs) {
      if (running === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref?.();
        idle.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
