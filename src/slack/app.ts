/**
 * The Bolt app and its receiver: Socket Mode when an app token is set, otherwise HTTP at /slack/events
 * with signature verification. /healthz answers in both modes, from the moment the process listens, and so
 * does /metrics when the bot has metrics.
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
import { createSlackMetricsFetch, type SlackCallHook } from "../metrics/slack-metrics-fetch.js";
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

/**
 * A Web API client for background work: no hidden retries, so the outbox decides when to try again.
 * `onSlackCall`, when given, is told of every request it makes (see createSlackMetricsFetch).
 */
export function createBackgroundClient(
  config: Config,
  logger: Logger,
  onSlackCall?: SlackCallHook,
): webApi.WebClient {
  return new webApi.WebClient(config.slack.botToken, {
    ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}),
    ...countingFetch(config, onSlackCall),
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

/** The WebClient option that counts requests, when there is a hook to tell. */
function countingFetch(config: Config, onSlackCall: SlackCallHook | undefined) {
  return onSlackCall ? { fetch: createSlackMetricsFetch(onSlackCall, { apiUrl: config.slack.apiUrl }) } : {};
}

/** What /metrics serves: the Prometheus text of the bot's own registry (see createMetrics). */
export interface MetricsEndpoint {
  render(): Promise<{ contentType: string; body: string }>;
}

/** What /healthz needs from the rest of the bot. */
export interface BotStatus {
  readonly accepting: boolean;
  /** -1 when the database could not be read. */
  readonly unfinishedJobs: number;
}

/** /healthz: 200 only while the bot takes requests and Slack has accepted it (and the socket is open). */
export function healthBody(link: SlackLinkState, status: BotStatus) {
  // A negative count: the database did not answer (Postgres down): no job can be taken now.
  const databaseOk = status.unfinishedJobs >= 0;
  const ok = status.accepting && link === "connected" && databaseOk;
  return {
    status: ok ? 200 : 503,
    body: {
      ok,
      slack: link,
      ...(status.accepting ? {} : { stopping: true }),
      ...(databaseOk ? {} : { database: "unreachable" }),
      unfinishedJobs: status.unfinishedJobs,
    },
  };
}

export function createSlackApp(
  config: Config,
  logger: Logger,
  /** May read a database over the network (Postgres): a promise is awaited. */
  status: () => BotStatus | Promise<BotStatus>,
  options: {
    retry?: Partial<RetryPolicy>;
    onFatal?: (error: SlackTokenRejectedError) => void;
    /** Served at GET /metrics (unauthenticated: counts only, no ids); without it /metrics is a 404. */
    metrics?: MetricsEndpoint;
    /** Told of every request Bolt's clients make (listeners', the token check, Socket Mode's, respond()). */
    onSlackCall?: SlackCallHook;
  } = {},
): SlackSurface {
  let link: SlackLink | undefined;
  const { metrics } = options;
  const serveMetrics = (_req: IncomingMessage, res: ServerResponse) => {
    if (!metrics) return notFound(res);
    metrics.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
        res.end(body);
      },
      (error: unknown) => {
        logger.error({ err: error }, "could not render /metrics");
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("metrics unavailable\n");
      },
    );
  };
  const serveHealth = async (_req: IncomingMessage, res: ServerResponse) => {
    let answer: ReturnType<typeof healthBody>;
    try {
      answer = healthBody(link?.state() ?? "starting", await status());
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
    // Bolt hands these options to every client it makes and uses their fetch for respond() too.
    ...countingFetch(config, options.onSlackCall),
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
        customRoutes: [
          { path: "/healthz", method: ["GET"], handler: serveHealth },
          ...(metrics ? [{ path: "/metrics", method: ["GET"], handler: serveMetrics }] : []),
        ],
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
        // Socket Mode needs no public endpoint; /healthz and /metrics still get a port of their own.
        healthServer = createServer((req, res) => {
          const path = req.url?.split("?")[0];
          if (req.method === "GET" && path === "/healthz") void serveHealth(req, res);
          else if (req.method === "GET" && path === "/metrics") serveMetrics(req, res);
          else notFound(res);
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

function notFound(res: ServerResponse): void {
  res.writeHead(404, { "content-type": "application/json" });
  res.end(JSON.stringify({ ok: false, error: "not_found" }));
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
