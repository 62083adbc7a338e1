/**
 * The bot's link to Slack, kept honest: the bot token is checked with `auth.test` (Bolt's deferred
 * initialization) and, in Socket Mode, the WebSocket is opened and reopened, each with bounded, logged
 * retries and a timeout per attempt. Its state is what /healthz reports, so an orchestrator sees a bot that
 * cannot hear Slack instead of a process that answers `ok` while every request fails.
 */
import { SlackTokenRejectedError } from "../errors.js";
import type { Logger } from "../logger.js";

export type SlackLinkState =
  /** Before the first answer from Slack. */
  | "starting"
  /** Slack could not be reached to check the token; retrying. */
  | "unreachable"
  /** Socket Mode: the token is good, the WebSocket is being opened. */
  | "connecting"
  /** Socket Mode: the WebSocket dropped; reopening. */
  | "disconnected"
  | "connected"
  | "stopped";

export interface RetryPolicy {
  /** First wait after a failed attempt; doubles each time. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** An attempt with no answer by then counts as failed (an endpoint that accepts and never answers). */
  readonly attemptTimeoutMs: number;
}

export const DEFAULT_SLACK_RETRY: RetryPolicy = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  attemptTimeoutMs: 10_000,
};

/** Slack's answers that mean the token itself is refused: waiting will not change them. */
const TOKEN_REFUSED: ReadonlySet<string> = new Set([
  "invalid_auth",
  "not_authed",
  "account_inactive",
  "token_revoked",
  "token_expired",
  "not_allowed_token_type",
]);

/** What the link needs of Socket Mode's client (a @slack/socket-mode SocketModeClient fits). */
export interface SocketConnection {
  start(): Promise<unknown>;
  disconnect(): Promise<void>;
  on(event: "disconnected", listener: () => void): unknown;
}

export interface SlackLinkDeps {
  /** Checks the bot token (Bolt's `app.init()`, which calls auth.test). */
  readonly authenticate: () => Promise<void>;
  /** Socket Mode only. */
  readonly socket?: SocketConnection;
  readonly logger: Logger;
  readonly retry?: Partial<RetryPolicy>;
  /** A token refused after the first connection (the app token revoked while running, say). */
  readonly onFatal?: (error: SlackTokenRejectedError) => void;
}

export interface SlackLink {
  state(): SlackLinkState;
  /**
   * Resolves once the token is accepted (and, in Socket Mode, the socket is open); keeps retrying while
   * Slack cannot be reached. Rejects with SlackTokenRejectedError when Slack refuses a token.
   */
  connect(): Promise<void>;
  /** Stops retrying and closes the socket. */
  stop(): Promise<void>;
}

export function createSlackLink(deps: SlackLinkDeps): SlackLink {
  const retry = { ...DEFAULT_SLACK_RETRY, ...deps.retry };
  const { logger, socket } = deps;
  let state: SlackLinkState = "starting";
  let stopped = false;
  let reopening: Promise<void> | undefined;
  const sleeper = createSleeper();
  const delayFor = (attempt: number) => Math.min(retry.initialDelayMs * 2 ** (attempt - 1), retry.maxDelayMs);

  async function authenticate(): Promise<void> {
    for (let attempt = 1; !stopped; attempt++) {
      try {
        await withTimeout(deps.authenticate(), retry.attemptTimeoutMs);
        logger.info({ attempt }, "Slack accepted the bot token");
        return;
      } catch (error) {
        const refused = refusedCode(error);
        if (refused) throw new SlackTokenRejectedError("SLACK_BOT_TOKEN", refused, { cause: error });
        state = "unreachable";
        const retryInMs = delayFor(attempt);
        logger.warn(
          { attempt, retryInMs, reason: reasonOf(error) },
          "Slack could not be reached to check the bot token; trying again",
        );
        await sleeper.sleep(retryInMs);
      }
    }
  }

  async function openSocket(connection: SocketConnection): Promise<void> {
    for (let attempt = 1; !stopped; attempt++) {
      if (state !== "disconnected") state = "connecting";
      logger.info({ attempt }, "opening the Socket Mode connection to Slack");
      try {
        await withTimeout(connection.start(), retry.attemptTimeoutMs);
        if (stopped) return;
        state = "connected";
        logger.info({ attempt }, "Socket Mode connection open");
        return;
      } catch (error) {
        const refused = refusedCode(error);
        if (refused) throw new SlackTokenRejectedError("SLACK_APP_TOKEN", refused, { cause: error });
        const retryInMs = delayFor(attempt);
        logger.warn(
          { attempt, retryInMs, reason: reasonOf(error) },
          "the Socket Mode connection to Slack failed; trying again",
        );
        // Abandon a half-open attempt before the next one, so two sockets never race.
        await withTimeout(connection.disconnect(), 2_000).catch(() => undefined);
        await sleeper.sleep(retryInMs);
      }
    }
  }

  function onSocketDropped(connection: SocketConnection): void {
    if (stopped || reopening || state !== "connected") return;
    state = "disconnected";
    logger.warn("the Socket Mode connection to Slack dropped; reopening it");
    reopening = openSocket(connection)
      .catch((error: unknown) => {
        if (error instanceof SlackTokenRejectedError) deps.onFatal?.(error);
        else logger.error({ err: error }, "could not reopen the Socket Mode connection");
      })
      .finally(() => {
        reopening = undefined;
      });
  }

  return {
    state: () => state,
    async connect() {
      await authenticate();
      if (socket && !stopped) {
        socket.on("disconnected", () => onSocketDropped(socket));
        state = "connecting";
        await openSocket(socket);
      }
      if (!stopped) state = "connected";
    },
    async stop() {
      stopped = true;
      state = "stopped";
      sleeper.cancel();
      if (socket) await withTimeout(socket.disconnect(), 2_000).catch(() => undefined);
      await reopening;
    },
  };
}

function refusedCode(error: unknown): string | undefined {
  const code = (error as { data?: { error?: unknown } } | undefined)?.data?.error;
  return typeof code === "string" && TOKEN_REFUSED.has(code) ? code : undefined;
}

/** A short reason for the log: Slack's error code, the network error's code, or the message. */
function reasonOf(error: unknown): string {
  const e = error as
    | { data?: { error?: string }; original?: { code?: string; cause?: { code?: string } }; message?: string }
    | undefined;
  return (
    e?.data?.error ??
    e?.original?.cause?.code ??
    e?.original?.code ??
    e?.message ??
    (error === undefined ? "the connection closed" : String(error))
  );
}

class AttemptTimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "AttemptTimeoutError";
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new AttemptTimeoutError(ms)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Waits that stop() can cut short. */
function createSleeper() {
  const pending = new Set<() => void>();
  return {
    sleep(ms: number): Promise<void> {
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          pending.delete(done);
          resolve();
        };
        const timer = setTimeout(done, ms);
        pending.add(done);
      });
    },
    cancel() {
      for (const done of [...pending]) done();
    },
  };
}
