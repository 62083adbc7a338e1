/**
 * A stand-in for Slack's Web API on 127.0.0.1: records every call, keeps the messages it was sent
 * (with their threads and metadata), and can be told to fail. Point the bot at it with SLACK_API_URL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { seededRandom } from "../support/seeded-random.js";

export interface SlackCall {
  readonly method: string;
  readonly args: Record<string, unknown>;
  /** performance.now() when the call arrived. */
  readonly at: number;
  /** What the fake answered: ok, or the error / HTTP status it was told to give. */
  readonly outcome: string;
}

export interface StoredMessage {
  readonly channel: string;
  readonly ts: string;
  readonly threadTs: string | undefined;
  text: string;
  blocks: unknown;
  readonly metadata: { event_type?: string; event_payload?: Record<string, unknown> } | undefined;
  readonly broadcast: boolean;
  updates: number;
}

export type Fault =
  | { readonly status: 429; readonly retryAfter: number }
  /** `delivered`: the call takes effect (a message is stored) but the answer is lost, as on a timeout. */
  | { readonly status: 500 | 502 | 503; readonly delivered?: boolean }
  | { readonly error: string };

/**
 * A user as users.info describes one (the fields ami-bot reads), or `not_found` for an id Slack does not
 * know (users.info answers user_not_found).
 */
export type FakeUser =
  | {
      readonly team_id?: string;
      readonly is_restricted?: boolean;
      readonly is_ultra_restricted?: boolean;
      readonly is_stranger?: boolean;
      readonly deleted?: boolean;
      readonly enterprise_user?: { readonly enterprise_id: string };
    }
  | "not_found";

/** What conversations.info says of a channel; `not_found` as for a private channel the bot is not in. */
export type FakeChannelPrivacy = "private" | "public" | "not_found";

/** The team auth.test names: the installing workspace, and every user's by default. */
export const FAKE_TEAM_ID = "T111";

export interface FakeSlackOptions {
  /** Channels where the bot is not a member: chat.postMessage answers not_in_channel. */
  readonly unusableChannels?: readonly string[];
  readonly usergroups?: Record<string, string[]>;
  /** Users by id; any other id is a full member of FAKE_TEAM_ID. */
  readonly users?: Record<string, FakeUser>;
  /** Channel privacy by id; any other channel is private. */
  readonly channels?: Record<string, FakeChannelPrivacy>;
  /** Makes the installing workspace part of this Enterprise Grid organisation (auth.test's enterprise_id). */
  readonly enterpriseId?: string;
  /** Answers at random with a fault, this share of the time (0–1), from a seeded generator. */
  readonly faultRate?: number;
  readonly faultSeed?: number;
  /** The WebSocket URL apps.connections.open hands out (Socket Mode), for the app token xapp-test-token. */
  readonly socketModeUrl?: string;
}

export interface FakeSlack {
  readonly url: string;
  /** A response_url for slash commands that points back at this fake. */
  readonly responseUrl: string;
  readonly calls: SlackCall[];
  readonly messages: StoredMessage[];
  callsTo(method: string): SlackCall[];
  /** Defines (or redefines) what users.info says of a user. */
  setUser(userId: string, user: FakeUser): void;
  /** Defines (or redefines) what conversations.info says of a channel. */
  setChannelPrivacy(channelId: string, privacy: FakeChannelPrivacy): void;
  /** Fails the next `count` calls of a method. */
  failNext(method: string, fault: Fault, count?: number): void;
  /** Answers the next call of a method `ms` late (it is recorded, and takes effect, on arrival). */
  delayNext(method: string, ms: number): void;
  unusableChannels: Set<string>;
  /** Resolves when a call matching the predicate has arrived (checks past calls first). */
  waitFor(method: string, predicate?: (call: SlackCall) => boolean, timeoutMs?: number): Promise<SlackCall>;
  repliesTo(rootTs: string): StoredMessage[];
  /** The Home views views.publish was given, the latest per user id. */
  readonly homeViews: Map<string, HomeViewRecord>;
  /** The latest Home view published for a user, or undefined when none was. */
  homeViewOf(userId: string): HomeViewRecord | undefined;
  /** While down, every connection is dropped as soon as it is made (Slack out of reach); nothing is recorded. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

/** A Home view as views.publish received it (the fields ami-bot sets). */
export interface HomeViewRecord {
  readonly type: string;
  readonly blocks: unknown[];
  readonly private_metadata?: string;
  /** How many times a view was published for this user. */
  readonly publishes: number;
}

/** Slack's own limits on a view's blocks: 100 at most, block ids unique, 3,000 characters a section text. */
function homeBlocksValid(blocks: unknown[]): boolean {
  if (blocks.length > 100) return false;
  const ids = blocks.flatMap((b) => {
    const id = (b as { block_id?: unknown }).block_id;
    return typeof id === "string" ? [id] : [];
  });
  if (new Set(ids).size !== ids.length) return false;
  return blocks.every((b) => {
    const text = (b as { type?: unknown; text?: { text?: unknown } }).text?.text;
    return typeof text !== "string" || text.length <= 3000;
  });
}

/** Slack posts complex arguments as JSON strings inside a form; turn them back into values. */
function decodeForm(body: string, contentType: string | undefined): Record<string, unknown> {
  if (contentType?.includes("application/json")) return JSON.parse(body || "{}") as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(body)) {
    if (/^[[{]/.test(v)) {
      try {
        out[k] = JSON.parse(v);
        continue;
      } catch {
        // plain text that happens to start with a bracket
      }
    }
    out[k] = v;
  }
  return out;
}

export async function startFakeSlack(options: FakeSlackOptions = {}): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const messages: StoredMessage[] = [];
  const faults = new Map<string, Fault[]>();
  const delays = new Map<string, number[]>();
  const unusable = new Set(options.unusableChannels ?? []);
  const users = new Map(Object.entries(options.users ?? {}));
  const channelPrivacy = new Map(Object.entries(options.channels ?? {}));
  const homeViews = new Map<string, HomeViewRecord>();
  const waiters: { method: string; predicate: (c: SlackCall) => boolean; resolve: (c: SlackCall) => void }[] =
    [];
  const random = seededRandom(options.faultSeed ?? 42);
  // Like Slack's: seconds since the epoch and six digits, unique and increasing, so `oldest` filters work.
  let lastMicros = 0;
  const nextTs = () => {
    lastMicros = Math.max(lastMicros + 1, Date.now() * 1000);
    return `${Math.floor(lastMicros / 1e6)}.${String(lastMicros % 1e6).padStart(6, "0")}`;
  };

  function record(method: string, args: Record<string, unknown>, outcome: string): void {
    const call = { method, args, at: performance.now(), outcome };
    calls.push(call);
    for (const w of [...waiters]) {
      if (w.method === method && w.predicate(call)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(call);
      }
    }
  }

  function send(
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const method = (res.req.url ?? "").replace(/^\/(api\/)?/, "").split("?")[0] ?? "";
    const wait = delays.get(method)?.shift() ?? 0;
    const write = () => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (wait > 0) setTimeout(write, wait);
    else write();
  }

  function pickFault(method: string): Fault | undefined {
    const queued = faults.get(method);
    if (queued && queued.length > 0) return queued.shift();
    const rate = options.faultRate ?? 0;
    // Random faults only on calls the bot must retry; views.open has a 3-second budget of its own.
    if (rate > 0 && method.startsWith("chat.") && random() < rate) {
      return random() < 0.5 ? { status: 429, retryAfter: 1 } : { status: 503 };
    }
    return undefined;
  }

  function answer(method: string, args: Record<string, unknown>): Record<string, unknown> {
    const given = String(args.channel ?? "");
    // As on Slack, chat.postMessage to a user id posts in the app's DM with them (a D… conversation);
    // every other method needs the conversation id itself.
    const isUser = /^[UW][A-Z0-9]+$/.test(given);
    if (isUser && method !== "chat.postMessage" && method !== "chat.postEphemeral")
      return { ok: false, error: "channel_not_found" };
    const channel = isUser && method === "chat.postMessage" ? `D${given.slice(1)}` : given;
    switch (method) {
      case "auth.test":
        return {
          ok: true,
          url: "https://fake.slack.com/",
          team: "Fake",
          user: "ami-bot",
          team_id: FAKE_TEAM_ID,
          user_id: "UBOT",
          bot_id: "BBOT",
          ...(options.enterpriseId
            ? { enterprise_id: options.enterpriseId, is_enterprise_install: false }
            : {}),
        };
      case "views.open":
      case "views.update":
        return { ok: true, view: { id: String(args.view_id ?? `V${calls.length}`), hash: "h" } };
      case "views.publish": {
        // As Slack: to a user id only, with a Home view.
        const user = String(args.user_id ?? "");
        const view = args.view as
          | { type?: unknown; blocks?: unknown; private_metadata?: unknown }
          | undefined;
        if (!/^[UW][A-Z0-9]+$/.test(user)) return { ok: false, error: "invalid_arguments" };
        if (view?.type !== "home" || !Array.isArray(view.blocks))
          return { ok: false, error: "invalid_arguments" };
        if (!homeBlocksValid(view.blocks)) return { ok: false, error: "invalid_blocks" };
        homeViews.set(user, {
          type: "home",
          blocks: view.blocks,
          ...(typeof view.private_metadata === "string" ? { private_metadata: view.private_metadata } : {}),
          publishes: (homeViews.get(user)?.publishes ?? 0) + 1,
        });
        return { ok: true, view: { id: `VHOME${user}`, type: "home", hash: "h" } };
      }
      case "chat.postMessage": {
        if (unusable.has(channel)) return { ok: false, error: "not_in_channel" };
        const threadTs = args.thread_ts ? String(args.thread_ts) : undefined;
        if (threadTs && !messages.some((m) => m.ts === threadTs && m.channel === channel))
          return { ok: false, error: "thread_not_found" };
        const ts = nextTs();
        messages.push({
          channel,
          ts,
          threadTs,
          text: String(args.text ?? ""),
          blocks: args.blocks,
          metadata: args.metadata as StoredMessage["metadata"],
          broadcast: args.reply_broadcast === true || args.reply_broadcast === "true",
          updates: 0,
        });
        return { ok: true, channel, ts };
      }
      case "chat.update": {
        const m = messages.find((x) => x.channel === channel && x.ts === args.ts);
        if (!m) return { ok: false, error: "message_not_found" };
        m.text = String(args.text ?? "");
        m.blocks = args.blocks;
        m.updates++;
        return { ok: true, channel, ts: m.ts };
      }
      case "chat.postEphemeral":
        if (unusable.has(channel)) return { ok: false, error: "not_in_channel" };
        return { ok: true, message_ts: nextTs() };
      case "conversations.history": {
        const oldest = Number(args.oldest ?? 0);
        return {
          ok: true,
          messages: messages
            .filter((m) => m.channel === channel && !m.threadTs && Number(m.ts) >= oldest)
            .reverse()
            .map((m) => ({ ts: m.ts, text: m.text, metadata: m.metadata })),
          has_more: false,
        };
      }
      case "conversations.replies": {
        const root = String(args.ts ?? "");
        const thread = messages.filter(
          (m) => m.channel === channel && (m.ts === root || m.threadTs === root),
        );
        return {
          ok: true,
          messages: thread.map((m) => ({
            ts: m.ts,
            thread_ts: m.threadTs,
            text: m.text,
            metadata: m.metadata,
          })),
        };
      }
      case "usergroups.users.list":
        return { ok: true, users: options.usergroups?.[String(args.usergroup)] ?? [] };
      case "users.info": {
        const id = String(args.user ?? "");
        const user = users.get(id) ?? {};
        if (user === "not_found") return { ok: false, error: "user_not_found" };
        return {
          ok: true,
          user: {
            id,
            team_id: FAKE_TEAM_ID,
            name: id.toLowerCase(),
            deleted: false,
            is_bot: false,
            is_restricted: false,
            is_ultra_restricted: false,
            ...user,
          },
        };
      }
      case "conversations.info": {
        // Private unless told otherwise: tests name made-up channels in channel rules, and a rule counts
        // only in a private channel.
        const privacy = channelPrivacy.get(channel) ?? "private";
        if (privacy === "not_found") return { ok: false, error: "channel_not_found" };
        return {
          ok: true,
          channel: {
            id: channel,
            is_channel: true,
            is_private: privacy === "private",
            is_im: false,
            is_mpim: false,
          },
        };
      }
      case "chat.getPermalink":
        return {
          ok: true,
          channel,
          permalink: `https://fake.slack.com/archives/${channel}/p${String(args.message_ts ?? "").replace(".", "")}`,
        };
      default:
        return { ok: false, error: "unknown_method" };
    }
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const method = (req.url ?? "").replace(/^\/(api\/)?/, "").split("?")[0] ?? "";
      const args = decodeForm(Buffer.concat(chunks).toString("utf8"), req.headers["content-type"]);
      // A slash command's response_url (see responseUrl below): no token, recorded as "response_url".
      if ((req.url ?? "").startsWith("/response/")) {
        record("response_url", args, "ok");
        send(res, 200, { ok: true });
        return;
      }
      // Socket Mode: the app-level token opens a connection; nothing else accepts it.
      if (method === "apps.connections.open" && req.headers.authorization === "Bearer xapp-test-token") {
        record(method, args, options.socketModeUrl ? "ok" : "not_allowed_token_type");
        send(
          res,
          200,
          options.socketModeUrl
            ? { ok: true, url: options.socketModeUrl }
            : { ok: false, error: "not_allowed_token_type" },
        );
        return;
      }
      if (req.headers.authorization !== "Bearer xoxb-test-token" && args.token !== "xoxb-test-token") {
        record(method, args, "invalid_auth");
        send(res, 200, { ok: false, error: "invalid_auth" });
        return;
      }
      const fault = pickFault(method);
      if (fault && "status" in fault) {
        if ("delivered" in fault && fault.delivered) answer(method, args);
        record(method, args, `http_${fault.status}`);
        if (fault.status === 429)
          send(res, 429, { ok: false, error: "ratelimited" }, { "retry-after": String(fault.retryAfter) });
        else send(res, fault.status, { ok: false, error: "internal_error" });
        return;
      }
      if (fault) {
        record(method, args, fault.error);
        send(res, 200, { ok: false, error: fault.error });
        return;
      }
      const body = answer(method, args);
      record(method, args, body.ok ? "ok" : String(body.error));
      send(res, 200, body);
    });
  });
  let down = false;
  server.on("connection", (socket) => {
    if (down) socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/api/`,
    responseUrl: `http://127.0.0.1:${port}/response/T111/111/xxxxx`,
    calls,
    messages,
    unusableChannels: unusable,
    callsTo: (method) => calls.filter((c) => c.method === method),
    setUser(userId, user) {
      users.set(userId, user);
    },
    setChannelPrivacy(channelId, privacy) {
      channelPrivacy.set(channelId, privacy);
    },
    failNext(method, fault, count = 1) {
      faults.set(method, [...(faults.get(method) ?? []), ...Array.from({ length: count }, () => fault)]);
    },
    delayNext(method, ms) {
      delays.set(method, [...(delays.get(method) ?? []), ms]);
    },
    waitFor(method, predicate = () => true, timeoutMs = 10_000) {
      const past = calls.find((c) => c.method === method && predicate(c));
      if (past) return Promise.resolve(past);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), timeoutMs);
        waiters.push({
          method,
          predicate,
          resolve: (c) => {
            clearTimeout(timer);
            resolve(c);
          },
        });
      });
    },
    repliesTo: (rootTs) => messages.filter((m) => m.threadTs === rootTs),
    homeViews,
    homeViewOf: (userId) => homeViews.get(userId),
    setDown(value) {
      down = value;
      if (value) server.closeAllConnections();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
