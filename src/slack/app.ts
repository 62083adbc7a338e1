/**
 * The Bolt app and its receiver: Socket Mode when an app token is set, otherwise HTTP at /slack/events
 * with signature verification. /healthz answers in both modes, from the moment the process listens.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import {
  App,
  ErrorCode,
  HTTPModuleFunctions,
  HTTPReceiver,
  LogLevel,
  type Logger as SlackLogger,
  SocketModeReceiver,
  webApi,
} from "@slack/bolt";
import type { Config } from "../config.js";
import { type SlackTokenRejectedError, StartupError } from "../errors.js";
import type { Logger } from "../logger.js";
import { createSlackLink, type RetryPolicy, type SlackLink, type SlackLinkState } from "./slack-link.js";

export function slackLogger(logger: Logger): SlackLogger {
  const log = logger.child({ component: "bolt" });
  let level = LogLevel.INFO;
  return {
    debug: (...msg) => log.debug(msg.map(String).join(" ")),
    info: (...msg) => log.info(msg.map(String).join(" ")),
    warn: (...msg) => log.warn(msg.map(String).join(" ")),
    error: (...msg) => log.error(msg.map(String).join(" ")),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

/** A Web API client for background work: no hidden retries, so the outbox decides when to try again. */
export function createBackgroundClient(config: Config, logger: Logger): webApi.WebClient {
  return new webApi.WebClient(config.slack.botToken, {
    ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}),
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logger: slackLogger(logger),
    timeout: 10_000,
  });
}

export interface SlackSurface {
  readonly app: App;
  /**
   * Starts serving HTTP at once (/healthz, and /slack/events in HTTP mode), before Slack is reached, so
   * health is visible while the bot waits for Slack. Rejects with StartupError when the port is taken.
   */
  listen(): Promise<{ port: number | undefined }>;
  /** Checks the token and, in Socket Mode, opens the socket; retries while Slack cannot be reached. */
  connect(): Promise<void>;
  readonly link: SlackLink;
  stop(): Promise<void>;
}

/** What /healthz needs from the rest of the bot. */
export interface BotStatus {
  readonly accepting: boolean;
  readonly unfinishedJobs: number;
}

/** /healthz: 200 only while the bot takes requests and Slack has accepted it (and the socket is open). */
export function healthBody(link: SlackLinkState, status: BotStatus) {
  const ok = status.accepting && link === "connected";
  return {
    status: ok ? 200 : 503,
    body: {
      ok,
      slack: link,
      ...(status.accepting ? {} : { stopping: true }),
      unfinishedJobs: status.unfinishedJobs,
    },
  };
}

export function createSlackApp(
  config: Config,
  logger: Logger,
  status: () => BotStatus,
  options: { retry?: Partial<RetryPolicy>; onFatal?: (error: SlackTokenRejectedError) => void } = {},
): SlackSurface {
  let link: SlackLink | undefined;
  const serveHealth = (_req: IncomingMessage, res: ServerResponse) => {
    let answer: ReturnType<typeof healthBody>;
    try {
      answer = healthBody(link?.state() ?? "starting", status());
    } catch (error) {
      // The store closed under us (shutting down): not healthy, but still an answer.
      logger.debug({ err: error }, "health check could not read the store");
      answer = {
        status: 503,
        body: { ok: false, slack: link?.state() ?? "starting", stopping: true, unfinishedJobs: -1 },
      };
    }
    res.writeHead(answer.status, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(answer.body));
  };
  const boltLogger = slackLogger(logger);
  const clientOptions = {
    ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}),
    // views.open must land inside the trigger's 3 seconds: one quick retry at most.
    retryConfig: { retries: 1, factor: 1, minTimeout: 200, maxTimeout: 200 },
    // A Slack that accepts the connection and never answers must not hold a listener (or start-up) forever.
    timeout: 10_000,
  };
  const receiver = config.slack.appToken
    ? new SocketModeReceiver({
        appToken: config.slack.appToken,
        // The link below reconnects, with a timeout per attempt and a log line for each.
        autoReconnectEnabled: false,
        // clientOptions reach the Socket Mode client's own WebClient (apps.connections.open), so
        // SLACK_API_URL applies to it too.
        installerOptions: { clientOptions },
        logger: boltLogger,
      })
    : new HTTPReceiver({
        signingSecret: config.slack.signingSecret ?? "",
        endpoints: "/slack/events",
        customRoutes: [{ path: "/healthz", method: ["GET"], handler: serveHealth }],
        logger: boltLogger,
        // Slack's own limit on a request body is far below this; anything larger is not from Slack.
        bodyLimit: 1024 * 1024,
        processEventErrorHandler: async (args) => {
          if (!isAuthorizationError(args.error))
            return HTTPModuleFunctions.defaultProcessEventErrorHandler(args);
          answerNotConnected(args.request, args.response);
          return true;
        },
      });
  // Deferred: the token is checked in connect(), with retries, rather than by a call the constructor
  // starts and nobody awaits (which left the bot deaf for good when Slack was down at start).
  const app = new App({
    token: config.slack.botToken,
    receiver,
    logger: boltLogger,
    clientOptions,
    deferInitialization: true,
  });
  app.error(async (error) => {
    // A request before Slack has accepted the token cannot be authorized: hand it back to the receiver,
    // which tells the person (Bolt alone would ack it with nothing, and they would see nothing happen).
    if (isAuthorizationError(error) && link?.state() !== "connected") {
      logger.warn({ slack: link?.state() }, "a Slack request arrived before Slack accepted the bot token");
      throw error;
    }
    logger.error({ err: error }, "unhandled error in a Slack listener");
  });
  link = createSlackLink({
    authenticate: () => app.init(),
    ...(receiver instanceof SocketModeReceiver ? { socket: receiver.client } : {}),
    logger: logger.child({ component: "slack-link" }),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.onFatal ? { onFatal: options.onFatal } : {}),
  });
  const slackLink = link;
  let healthServer: Server | undefined;

  return {
    app,
    link: slackLink,
    async listen() {
      try {
        if (receiver instanceof HTTPReceiver) {
          const server = (await receiver.start(config.port)) as Server;
          return { port: portOf(server) };
        }
        // Socket Mode needs no public endpoint; /healthz still gets a port of its own.
        healthServer = createServer((req, res) => {
          if (req.method === "GET" && req.url?.split("?")[0] === "/healthz") serveHealth(req, res);
          else {
            res.writeHead(404, { "content-type": "application/json" });
            res.end(JSON.stringify({ ok: false, error: "not_found" }));
          }
        });
        await listenOn(healthServer, config.port);
        return { port: portOf(healthServer) };
      } catch (error) {
        throw listenError(config.port, error);
      }
    },
    connect: () => slackLink.connect(),
    async stop() {
      await slackLink.stop();
      if (receiver instanceof HTTPReceiver) await app.stop().catch(() => undefined);
      const server = healthServer;
      healthServer = undefined;
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

function isAuthorizationError(error: unknown): boolean {
  return (error as { code?: unknown } | undefined)?.code === ErrorCode.AuthorizationError;
}

/** Shown to someone who types /ami while the bot cannot reach Slack's Web API (its /healthz says so too). */
export const NOT_CONNECTED_TEXT =
  "ami-bot cannot reach Slack's API right now, so it cannot open the form. Its health check reports this to the people who run it; try /ami again in a few minutes.";

/**
 * A slash command gets a private message in its HTTP answer (which needs no token); anything else a 503,
 * which Slack treats as a failed delivery.
 */
function answerNotConnected(request: IncomingMessage, response: ServerResponse): void {
  const raw = (request as IncomingMessage & { rawBody?: Buffer }).rawBody?.toString("utf8") ?? "";
  if (new URLSearchParams(raw).has("command")) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ response_type: "ephemeral", text: NOT_CONNECTED_TEXT }));
    return;
  }
  response.writeHead(503);
  response.end();
}

function portOf(server: Server): number | undefined {
  const address = server.address();
  return typeof address === "object" && address ? address.port : undefined;
}

function listenOn(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function listenError(port: number, error: unknown): StartupError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new StartupError(
      `PORT ${port} is already in use by another process: stop that process or set PORT to a free port`,
      { cause: error },
    );
  if (code === "EACCES")
    return new StartupError(
      `PORT ${port} needs privileges this process does not have: use a port above 1023`,
      {
        cause: error,
      },
    );
  return new StartupError(`cannot listen on PORT ${port}: ${(error as Error).message}`, { cause: error });
}
