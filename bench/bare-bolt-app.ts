/**
 * The floor for modal latency (not a benchmark of its own: bench/modal-latency.ts starts it beside the bot).
 * A bare Bolt app, HTTP receiver with signature verification on, pointed at the fake Slack with
 * `slackApiUrl`, whose only listener answers `/ami` by acking and opening the modal the bot opened (its JSON
 * read from BARE_VIEW_FILE) with `views.open`: no access rules, no store, no logging of its own.
 * Settings: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL, PORT, BARE_VIEW_FILE.
 */
import { readFileSync } from "node:fs";
import { App, HTTPReceiver, type types } from "@slack/bolt";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const view = JSON.parse(readFileSync(setting("BARE_VIEW_FILE"), "utf8")) as types.ModalView;
const receiver = new HTTPReceiver({
  signingSecret: setting("SLACK_SIGNING_SECRET"),
  endpoints: "/slack/events",
});
const app = new App({
  token: setting("SLACK_BOT_TOKEN"),
  receiver,
  clientOptions: { slackApiUrl: setting("SLACK_API_URL") },
  // auth.test once before listening, as the bot does, so the first request does not wait for it.
  deferInitialization: true,
});

app.command("/ami", async ({ ack, client, command }) => {
  await ack();
  await client.views.open({ trigger_id: command.trigger_id, view });
});

await app.init();
await app.start({ port: Number(setting("PORT")), host: "127.0.0.1" });
console.log("bare bolt app ready");
process.on("SIGTERM", () => {
  void app.stop().finally(() => process.exit(0));
});
