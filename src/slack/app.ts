/**
 * The Bolt app and its receiver: Socket Mode when an app token is set, otherwise HTTP at /slack/events
 * with signature verification. /healthz answers in both modes.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  App,
  HTTPReceiver,
  LogLevel,
  type Logger as SlackLogger,
  SocketModeReceiver,
  webApi,
} from "@slack/bolt";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";

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
  start(): Promise<{ port: number | undefined }>;
  stop(): Promise<void>;
}

export function createSlackApp(
  config: Config,
  logger: Logger,
  health: () => { ok: boolean } & Record<string, unknown>,
): SlackSurface {
  const customRoutes = [
    {
      path: "/healthz",
      method: ["GET"],
      handler: (_req: IncomingMessage, res: ServerResponse) => {
        const body = health();
        res.writeHead(body.ok ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(body));
      },
    },
  ];
  const boltLogger = slackLogger(logger);
  const clientOptions = {
    ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}),
    // views.open must land inside the trigger's 3 seconds: one quick retry at most.
    retryConfig: { retries: 1, factor: 1, minTimeout: 200, maxTimeout: 200 },
  };
  let server: import("node:http").Server | undefined;
  const receiver = config.slack.appToken
    ? new SocketModeReceiver({
        appToken: config.slack.appToken,
        customRoutes,
        // clientOptions reach the Socket Mode client's own WebClient (apps.connections.open), so
        // SLACK_API_URL applies to it too.
        installerOptions: { port: config.port, clientOptions },
        logger: boltLogger,
      })
    : new HTTPReceiver({
        signingSecret: config.slack.signingSecret ?? "",
        endpoints: "/slack/events",
        customRoutes,
        logger: boltLogger,
        // Slack's own limit on a request body is far below this; anything larger is not from Slack.
        bodyLimit: 1024 * 1024,
      });
  const app = new App({ token: config.slack.botToken, receiver, logger: boltLogger, clientOptions });
  app.error(async (error) => {
    logger.error({ err: error }, "unhandled error in a Slack listener");
  });

  return {
    app,
    async start() {
      if (receiver instanceof HTTPReceiver) {
        server = (await receiver.start(config.port)) as import("node:http").Server;
        const address = server.address();
        return { port: typeof address === "object" && address ? address.port : undefined };
      }
      await app.start();
      return { port: config.port };
    },
    async stop() {
      await app.stop();
    },
  };
}
