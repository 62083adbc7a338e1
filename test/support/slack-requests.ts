/**
 * Signed requests to the bot's real HTTP endpoint, as Slack sends them: form-encoded, with
 * X-Slack-Signature = v0=HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + body).
 */
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

export interface SignedResponse {
  readonly status: number;
  readonly body: string;
  readonly json: () => unknown;
}

export function sign(body: string, secret: string, timestamp: number): Record<string, string> {
  const signature = `v0=${createHmac("sha256", secret).update(`v0:${timestamp}:${body}`).digest("hex")}`;
  return { "x-slack-signature": signature, "x-slack-request-timestamp": String(timestamp) };
}

export async function postSigned(
  url: string,
  body: string,
  secret: string,
  options: { timestamp?: number; headers?: Record<string, string> } = {},
): Promise<SignedResponse> {
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...sign(body, secret, timestamp),
      ...options.headers,
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text, json: () => JSON.parse(text) };
}

/** A slash command's form fields, shaped like Slack's (see test/fixtures/slack). */
export function slashCommandBody(fields: {
  user_id: string;
  channel_id: string;
  text?: string;
  trigger_id?: string;
  response_url?: string;
}): string {
  return new URLSearchParams({
    token: "verification_token",
    team_id: "T111",
    team_domain: "test-domain",
    channel_id: fields.channel_id,
    channel_name: "ops",
    user_id: fields.user_id,
    user_name: "someone",
    command: "/ami",
    text: fields.text ?? "",
    api_app_id: "A111",
    response_url: fields.response_url ?? "https://hooks.slack.com/commands/T111/111/xxxxx",
    trigger_id: fields.trigger_id ?? `trigger.${Math.random().toString(36).slice(2)}`,
  }).toString();
}

export function interactionBody(payload: unknown): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

const suggestionFixture = JSON.parse(
  readFileSync(new URL("../fixtures/slack/block_suggestion.bolt-python.json", import.meta.url), "utf8"),
) as Record<string, unknown> & { view: Record<string, unknown> };

/**
 * One keystroke in the instance picker: Slack's block_suggestion payload (a real captured one), for the
 * modal the bot opened, signed metadata and all, with the form's state so far.
 */
export function instanceSearchPayload(options: {
  userId: string;
  value: string;
  metadata: string;
  viewId?: string;
  values?: Record<string, unknown>;
}): Record<string, unknown> {
  return {
    ...suggestionFixture,
    user: { id: options.userId, username: "someone", name: "someone", team_id: "T111" },
    action_id: "instance_select",
    block_id: "instance",
    value: options.value,
    view: {
      ...suggestionFixture.view,
      id: options.viewId ?? "V0VIEW0001",
      callback_id: "ami_create",
      private_metadata: options.metadata,
      state: { values: options.values ?? {} },
    },
  };
}

/** An Events API delivery of app_home_opened, as Slack sends it (JSON, signed like every request). */
export function appHomeOpenedPayload(fields: {
  user: string;
  channel: string;
  tab?: "home" | "messages";
}): Record<string, unknown> {
  const now = Date.now() / 1000;
  return {
    token: "verification_token",
    team_id: "T111",
    api_app_id: "A111",
    event: {
      type: "app_home_opened",
      user: fields.user,
      channel: fields.channel,
      tab: fields.tab ?? "home",
      event_ts: now.toFixed(6),
    },
    type: "event_callback",
    event_id: `Ev${Math.random().toString(36).slice(2, 12).toUpperCase()}`,
    event_time: Math.floor(now),
  };
}

/** Posts an Events API payload (JSON) to the bot's endpoint, signed. */
export function postSignedEvent(url: string, payload: unknown, secret: string): Promise<SignedResponse> {
  return postSigned(url, JSON.stringify(payload), secret, {
    headers: { "content-type": "application/json" },
  });
}
