/**
 * Modal latency: Slack's trigger_id expires 3 s after the slash command, so the form must be open by then.
 * Fires bursts of 50 concurrent signed `/ami` requests at the real bot (a child process in HTTP mode) and
 * times each from the request's start to the moment its views.open (matched by trigger_id) reaches the
 * fake Slack. Also reports the acknowledgement time and the first /ami after start (lazy set-up).
 */
import { performance } from "node:perf_hooks";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import { postSigned, slashCommandBody } from "../test/support/slack-requests.js";
import {
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  ROLE_ARN,
  removeTempDirs,
  SIGNING_SECRET,
  spawnBot,
  tempDir,
  USER,
} from "./lib.js";

const CONCURRENT = 50;
const ROUNDS = 3;
const SLACK_LIMIT_MS = 3_000;

const slack = await startFakeSlack();
const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
let bot: BotProcess | undefined;

/** One signed /ami; resolves with the ack time and the time until its views.open arrived. */
async function openModal(url: string, n: string): Promise<{ ackMs: number; openMs: number }> {
  const triggerId = `bench.${n}.${Math.random().toString(36).slice(2)}`;
  const body = slashCommandBody({ user_id: USER, channel_id: "C0BENCH01", trigger_id: triggerId });
  const t0 = performance.now();
  const opened = slack.waitFor("views.open", (c) => c.args.trigger_id === triggerId, 15_000);
  const res = await postSigned(url, body, SIGNING_SECRET);
  const ackMs = performance.now() - t0;
  if (res.status !== 200) throw new Error(`/ami answered ${res.status}: ${res.body}`);
  const call = await opened;
  return { ackMs, openMs: call.at - t0 };
}

try {
  bot = await spawnBot({ slack, aws, dbPath: `${tempDir()}/bot.db` });
  const url = bot.url;
  const first = await openModal(url, "first");
  figure("modal: first /ami after start → views.open", first.openMs, "ms");

  const opens: number[] = [];
  const acks: number[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const results = await Promise.all(
      Array.from({ length: CONCURRENT }, (_, i) => openModal(url, `${round}.${i}`)),
    );
    const o = results.map((r) => r.openMs);
    opens.push(...o);
    acks.push(...results.map((r) => r.ackMs));
    console.log(
      `  round ${round}: ${CONCURRENT} concurrent, views.open p50 ${percentile(o, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(o, 99).toFixed(1)} ms, max ${Math.max(...o).toFixed(1)} ms`,
    );
  }
  const label = `${CONCURRENT} concurrent ×${ROUNDS}`;
  figure(`modal: ${label}, /ami → views.open p50`, percentile(opens, 50), "ms");
  figure(`modal: ${label}, /ami → views.open p99`, percentile(opens, 99), "ms");
  figure(`modal: ${label}, /ami → views.open max`, Math.max(...opens), "ms");
  figure(`modal: ${label}, /ami → HTTP ack p99`, percentile(acks, 99), "ms");
  figure(
    "modal: views.open later than Slack's 3 s",
    `${opens.filter((ms) => ms > SLACK_LIMIT_MS).length} of ${opens.length}`,
  );
  figure("modal: AWS calls made while opening forms", aws.requests.length);
} finally {
  await bot?.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
