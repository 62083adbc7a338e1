/**
 * GET /metrics from the Slack app's HTTP server (HTTP mode beside /slack/events, Socket Mode on the health
 * port), and the Slack requests the app's and the background client's calls add to it, against the fake
 * Slack Web API. Only the Slack surface is started: no store, watcher or AWS.
 */
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config.js";
import { createMetrics, type Metrics } from "../../../src/metrics/metrics.js";
import { createSlackMetricsFetch } from "../../../src/metrics/slack-metrics-fetch.js";
import { createBackgroundClient, createSlackApp, type SlackSurface } from "../../../src/slack/app.js";
import { type FakeSlack, startFakeSlack } from "../../fakes/fake-slack.js";
import { startFakeSocketMode } from "../../fakes/fake-socket-mode.js";
import { eventually, ONE_TARGET_ENV, SIGNING_SECRET } from "../../support/bot-harness.js";
import { freePort as closedPort } from "../../support/free-port.js";
import { postSigned, slashCommandBody } from "../../support/slack-requests.js";
import { parsePrometheusText, sampleValue } from "./prometheus-text.js";

const logger = pino({ level: "silent" });
const status = () => ({ accepting: true, unfinishedJobs: 0 });
const snapshot = () => ({ jobsByState: { pending: 2 }, outboxBacklog: 1, oldestOutboxCreatedAt: undefined });

let slack: FakeSlack;
let surface: SlackSurface | undefined;

beforeEach(async () => {
  slack = await startFakeSlack();
});
afterEach(async () => {
  await surface?.stop();
  surface = undefined;
  await slack.close();
});

function httpConfig() {
  return loadConfig({
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_API_URL: slack.url,
    PORT: "0",
    ...ONE_TARGET_ENV,
  });
}

function socketConfig() {
  return loadConfig({
    SLACK_BOT_TOKEN: "xoxb-test-token",
    SLACK_APP_TOKEN: "xapp-test-token",
    SLACK_API_URL: slack.url,
    PORT: "0",
    ...ONE_TARGET_ENV,
  });
}

async function startSurface(config: ReturnType<typeof loadConfig>, metrics?: Metrics): Promise<number> {
  surface = createSlackApp(
    config,
    logger,
    status,
    metrics ? { metrics, onSlackCall: metrics.slackCall } : {},
  );
  const { port } = await surface.listen();
  return port as number;
}

async function getMetrics(port: number) {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const body = await res.text();
  return { res, body, families: parsePrometheusText(res.status === 200 ? body : "") };
}

describe("GET /metrics", () => {
  it("serves the bot's metrics in HTTP mode beside /slack/events and /healthz", async () => {
    const port = await startSurface(httpConfig(), createMetrics({ snapshot }));
    const { res, families } = await getMetrics(port);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(families, "ami_bot_jobs", { state: "pending" })).toBe(2);
    expect(sampleValue(families, "ami_bot_outbox_backlog")).toBe(1);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(503);
  });

  it("serves the bot's metrics on the health port in Socket Mode", async () => {
    const port = await startSurface(socketConfig(), createMetrics({ snapshot }));
    const { res, families } = await getMetrics(port);
    expect(res.status).toBe(200);
    expect(sampleValue(families, "ami_bot_jobs", { state: "pending" })).toBe(2);
  });

  it("answers 404 in both modes when the bot has no metrics", async () => {
    const httpPort = await startSurface(httpConfig());
    expect((await getMetrics(httpPort)).res.status).toBe(404);
    await surface?.stop();
    const socketPort = await startSurface(socketConfig());
    expect((await getMetrics(socketPort)).res.status).toBe(404);
  });

  it("answers 500 and keeps serving when the metrics cannot be rendered", async () => {
    let broken = true;
    const metrics = createMetrics({ snapshot });
    const flaky = {
      render: () => (broken ? Promise.reject(new Error("boom")) : metrics.render()),
    };
    surface = createSlackApp(httpConfig(), logger, status, { metrics: flaky });
    const port = (await surface.listen()).port as number;
    expect((await getMetrics(port)).res.status).toBe(500);
    broken = false;
    expect((await getMetrics(port)).res.status).toBe(200);
  });
});

describe("Slack calls in the metrics", () => {
  it("counts the app's token check by method", async () => {
    const metrics = createMetrics({ snapshot });
    const port = await startSurface(httpConfig(), metrics);
    await surface?.connect();
    const { families } = await getMetrics(port);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "auth.test" })).toBe(1);
    expect(slack.callsTo("auth.test")).toHaveLength(1);
  });

  it("counts a listener's client calls and its respond() to the response_url", async () => {
    const metrics = createMetrics({ snapshot });
    const port = await startSurface(httpConfig(), metrics);
    await surface?.connect();
    surface?.app.command("/ami", async ({ ack, client, body, respond }) => {
      await ack();
      await client.views.open({
        trigger_id: body.trigger_id,
        view: { type: "modal", title: { type: "plain_text", text: "t" }, blocks: [] },
      });
      await respond({ response_type: "ephemeral", text: "done" });
    });
    const body = slashCommandBody({
      user_id: "U0ALLOWED1",
      channel_id: "C0CHANNEL1",
      response_url: slack.responseUrl,
    });
    expect((await postSigned(`http://127.0.0.1:${port}/slack/events`, body, SIGNING_SECRET)).status).toBe(
      200,
    );
    await eventually(() => slack.callsTo("response_url").length > 0, 5_000, "respond()");
    const { families } = await getMetrics(port);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "views.open" })).toBe(1);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "response_url" })).toBe(1);
  });

  it("counts Socket Mode's own apps.connections.open beside the token check", async () => {
    const socket = await startFakeSocketMode();
    try {
      await slack.close();
      slack = await startFakeSlack({ socketModeUrl: socket.url });
      const metrics = createMetrics({ snapshot });
      const port = await startSurface(socketConfig(), metrics);
      await surface?.connect();
      const { families } = await getMetrics(port);
      expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "auth.test" })).toBe(1);
      expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "apps.connections.open" })).toBe(1);
    } finally {
      await surface?.stop();
      surface = undefined;
      await socket.close();
    }
  });

  it("counts the background client's calls and Slack's errors by method", async () => {
    const metrics = createMetrics({ snapshot });
    const port = await startSurface(httpConfig(), metrics);
    const client = createBackgroundClient(httpConfig(), logger, metrics.slackCall);
    await client.chat.postMessage({ channel: "C0CHANNEL1", text: "hello" });
    slack.failNext("chat.postMessage", { error: "channel_not_found" });
    await expect(client.chat.postMessage({ channel: "C0MISSING1", text: "hello" })).rejects.toThrow();
    slack.failNext("chat.update", { status: 429, retryAfter: 1 });
    await expect(client.chat.update({ channel: "C0CHANNEL1", ts: "1.2", text: "x" })).rejects.toThrow();
    slack.failNext("chat.update", { status: 503 });
    await expect(client.chat.update({ channel: "C0CHANNEL1", ts: "1.2", text: "x" })).rejects.toThrow();

    const { families } = await getMetrics(port);
    expect(sampleValue(families, "ami_bot_slack_calls_total", { method: "chat.postMessage" })).toBe(2);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", {
        method: "chat.postMessage",
        code: "channel_not_found",
      }),
    ).toBe(1);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", { method: "chat.update", code: "ratelimited" }),
    ).toBe(1);
    expect(
      sampleValue(families, "ami_bot_slack_errors_total", { method: "chat.update", code: "http_503" }),
    ).toBe(1);
  });

  it("carries no user, channel, image, instance or job id in any label", async () => {
    const metrics = createMetrics({ snapshot });
    const port = await startSurface(httpConfig(), metrics);
    await surface?.connect();
    const client = createBackgroundClient(httpConfig(), logger, metrics.slackCall);
    await client.chat.postMessage({ channel: "C0CHANNEL1", text: "hello" });
    await client.users.info({ user: "U0ALLOWED1" }).catch(() => undefined);
    metrics.awsCall("CreateImage", "InvalidInstanceID.NotFound");
    metrics.jobFinished("available", 120);
    const { families } = await getMetrics(port);
    const values = [...families]
      .filter(([name]) => name.startsWith("ami_bot_"))
      .flatMap(([, f]) => f.samples.flatMap((s) => Object.values(s.labels)));
    expect(values.length).toBeGreaterThan(0);
    for (const value of values) {
      expect(value).toMatch(/^[A-Za-z0-9_.+]{1,64}$/);
      expect(value).not.toMatch(/^(?:[UCDGWT]0[A-Z0-9]+|i-[0-9a-f]+|ami-[0-9a-f]+|[0-9a-f-]{36})$/);
    }
  });
});

describe("createSlackMetricsFetch", () => {
  it("labels a request outside the Web API (respond() to a response_url) as response_url", async () => {
    const calls: [string, string | undefined][] = [];
    const counting = createSlackMetricsFetch((method, code) => void calls.push([method, code]), {
      apiUrl: slack.url,
    });
    const res = await counting(`${slack.responseUrl}`, { method: "POST", body: "{}" });
    await res.text();
    expect(calls).toEqual([["response_url", undefined]]);
  });

  it("counts a request that got no answer with the network error's code and rethrows it", async () => {
    const calls: [string, string | undefined][] = [];
    const apiUrl = `http://127.0.0.1:${await closedPort()}/api/`;
    const counting = createSlackMetricsFetch((method, code) => void calls.push([method, code]), { apiUrl });
    await expect(counting(`${apiUrl}auth.test`, { method: "POST" })).rejects.toThrow();
    expect(calls).toEqual([["auth.test", "ECONNREFUSED"]]);
  });
});
