/**
 * A pass-through in front of the fake AWS, one per bot process: it records which process made each call
 * (the fake sees only where calls land, not who sent them) and can hold calls of one action until the test
 * lets them through, so a test decides when CreateImage answers while everything else flows.
 */
import { createServer, type IncomingMessage, request } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedCall {
  readonly action: string;
  /** The decoded flat query params, as the fake AWS reads them. */
  readonly params: Readonly<Record<string, string>>;
  /** Date.now() when the call reached the proxy. */
  readonly at: number;
}

export interface AwsProxy {
  /** Point one bot's AWS_ENDPOINT_URL here. */
  readonly url: string;
  /** Every call this bot made, oldest first. */
  readonly calls: ProxiedCall[];
  /** Calls of `action` wait here, unanswered, until `release()`. */
  hold(action: string): void;
  /** Lets every held call through (and stops holding). */
  release(): void;
  /** How many calls are waiting now. */
  held(): number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

export async function startAwsProxy(upstreamUrl: string): Promise<AwsProxy> {
  const upstream = new URL(upstreamUrl);
  const calls: ProxiedCall[] = [];
  let holding: string | undefined;
  let waiting: (() => void)[] = [];

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const params = Object.fromEntries(new URLSearchParams(body.toString("utf8")));
      const action = params.Action ?? "";
      calls.push({ action, params, at: Date.now() });
      if (holding === action) await new Promise<void>((resolve) => waiting.push(resolve));
      // Sent on even when the bot has gone meanwhile: the call reached AWS, only its answer is lost.
      const headers = { ...req.headers };
      delete headers.connection;
      const answer = await new Promise<{ status: number; headers: IncomingMessage["headers"]; body: Buffer }>(
        (resolve, reject) => {
          const out = request(
            {
              hostname: upstream.hostname,
              port: upstream.port,
              path: req.url,
              method: req.method,
              headers,
              agent: false,
            },
            (up) => {
              readBody(up).then(
                (b) => resolve({ status: up.statusCode ?? 502, headers: up.headers, body: b }),
                reject,
              );
            },
          );
          out.on("error", reject);
          out.end(body);
        },
      );
      if (res.destroyed) return;
      const { connection: _dropped, ...passed } = answer.headers;
      res.writeHead(answer.status, passed);
      res.end(answer.body);
    })().catch(() => {
      if (!res.destroyed && !res.headersSent) res.writeHead(502);
      if (!res.destroyed) res.end();
    });
  });
  // A bot killed mid-call leaves a reset connection behind; that is no error of the proxy's.
  server.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  const release = () => {
    holding = undefined;
    const released = waiting;
    waiting = [];
    for (const resume of released) resume();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    hold(action) {
      holding = action;
    },
    release,
    held: () => waiting.length,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
