/**
 * Slack's Socket Mode end on 127.0.0.1: a WebSocket server that greets the bot with "hello", delivers
 * envelopes (slash commands, interactions) and collects the bot's acknowledgements.
 */
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

export interface Ack {
  readonly envelope_id: string;
  readonly payload?: unknown;
}

export interface FakeSocketMode {
  readonly url: string;
  /** Resolves once the bot has connected and been greeted. */
  connected(timeoutMs?: number): Promise<void>;
  /** Delivers one envelope and resolves with the bot's ack for it. */
  deliver(
    type: "slash_commands" | "interactive",
    payload: unknown,
    options?: { timeoutMs?: number; retryAttempt?: number },
  ): Promise<Ack>;
  /** While true, new connections are refused at the upgrade (as when Slack's socket end is down). */
  refuse(refusing: boolean): void;
  /** Closes every open connection from the server side (a dropped socket). */
  dropConnections(): void;
  /** Connections accepted and greeted so far. */
  connectionCount(): number;
  close(): Promise<void>;
}

export async function startFakeSocketMode(): Promise<FakeSocketMode> {
  let refusing = false;
  let greetedCount = 0;
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0, verifyClient: () => !refusing });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const { port } = server.address() as AddressInfo;
  let socket: WebSocket | undefined;
  const waiting = new Map<string, (ack: Ack) => void>();
  let greeted: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    greeted = resolve;
  });
  let counter = 0;

  server.on("connection", (ws) => {
    socket = ws;
    ws.on("message", (data) => {
      const ack = JSON.parse(String(data)) as Ack;
      waiting.get(ack.envelope_id)?.(ack);
      waiting.delete(ack.envelope_id);
    });
    ws.send(JSON.stringify({ type: "hello", num_connections: 1, connection_info: { app_id: "A111" } }));
    greetedCount++;
    greeted();
  });

  const within = <T>(promise: Promise<T>, ms: number, what: string) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
    ]);

  return {
    url: `ws://127.0.0.1:${port}/link`,
    connected: (timeoutMs = 10_000) => within(ready, timeoutMs, "bot connecting"),
    deliver(type, payload, { timeoutMs = 5_000, retryAttempt = 0 } = {}) {
      const envelope_id = `env-${++counter}`;
      const acked = new Promise<Ack>((resolve) => waiting.set(envelope_id, resolve));
      socket?.send(
        JSON.stringify({
          envelope_id,
          type,
          payload,
          accepts_response_payload: true,
          retry_attempt: retryAttempt,
        }),
      );
      return within(acked, timeoutMs, `ack of ${type}`);
    },
    refuse(value) {
      refusing = value;
    },
    dropConnections() {
      for (const client of server.clients) client.terminate();
    },
    connectionCount: () => greetedCount,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate();
        server.close(() => resolve());
      }),
  };
}
