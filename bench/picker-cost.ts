/**
 * Picker cost: what people typing into the instance picker cost the account's EC2 API (EC2 throttles per
 * account and region, so one person's keystrokes must not stall everyone). Slack sends one block_suggestion
 * per keystroke, without waiting for the last answer; the bot searches only a person's newest text once the
 * typing pauses, limits searches per person, answers a repeated search from memory and reuses one
 * read-only session per person and place. Counts AssumeRole and DescribeInstances at the fake endpoint, beside
 * the cost of one session and one search per keystroke, and times each options answer.
 */
import { performance } from "node:perf_hooks";
import { createBotMetadataCodec } from "../src/bot.js";
import { startFakeAws } from "../test/fakes/fake-aws.js";
import { startFakeSlack } from "../test/fakes/fake-slack.js";
import { instanceSearchPayload, interactionBody, postSigned } from "../test/support/slack-requests.js";
import {
  type BotProcess,
  EXTERNAL_ID,
  figure,
  percentile,
  ROLE_ARN,
  removeTempDirs,
  SIGNING_SECRET,
  sleep,
  spawnBot,
  tempDir,
} from "./lib.js";

const PEOPLE = 10;
const WORD = "web-server-12";
const TYPING_GAP_MS = 80; // a quick typist
const MASH_KEYS = 50;
const MASH_GAP_MS = 20; // someone holding a key down

const metadata = createBotMetadataCodec({
  slack: { botToken: "xoxb-bench", signingSecret: SIGNING_SECRET, appToken: undefined, apiUrl: undefined },
}).encode({ origin: "C0BENCH01", nameVersion: 0, autoName: undefined });

const people = Array.from({ length: PEOPLE }, (_, i) => `U0PICKER${String(i).padStart(2, "0")}`);
const slack = await startFakeSlack();
const aws = await startFakeAws({ roles: { [ROLE_ARN]: { externalId: EXTERNAL_ID } } });
for (let i = 0; i < 300; i++)
  aws.addInstance({
    instanceId: `i-${(0x9000 + i).toString(16).padStart(17, "0")}`,
    name: `web-server-${i}`,
  });
let bot: BotProcess | undefined;

/** One keystroke: the options load Slack sends, timed until the bot answers. */
async function keystroke(
  url: string,
  user: string,
  value: string,
): Promise<{ ms: number; tooFast: boolean }> {
  const payload = instanceSearchPayload({ userId: user, value, metadata });
  const t0 = performance.now();
  const res = await postSigned(url, interactionBody(payload), SIGNING_SECRET);
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`options load answered ${res.status}: ${res.body}`);
  return { ms, tooFast: res.body.includes("too-fast") };
}

/**
 * A person typing: one options load per keystroke, `gap` ms apart, as Slack sends them (without waiting for
 * the answer to the previous one).
 */
async function type(url: string, user: string, texts: readonly string[], gap: number) {
  return Promise.all(
    texts.map(async (text, i) => {
      await sleep(i * gap);
      return keystroke(url, user, text);
    }),
  );
}

function counts(from: number) {
  const requests = aws.requests.slice(from);
  return {
    assumeRole: requests.filter((r) => r.action === "AssumeRole").length,
    describe: requests.filter((r) => r.action === "DescribeInstances").length,
    // A search's first page carries no NextToken; the pages after it do.
    searches: requests.filter((r) => r.action === "DescribeInstances" && !r.params.NextToken).length,
  };
}

try {
  bot = await spawnBot({
    slack,
    aws,
    dbPath: `${tempDir()}/bot.db`,
    env: { AMI_TARGET_ALLOW_USERS: [...people, "U0PICKERXX"].join(",") },
  });
  const url = bot.url;
  const prefixes = Array.from({ length: WORD.length }, (_, i) => WORD.slice(0, i + 1));

  const before = aws.requests.length;
  const typed = (await Promise.all(people.map((p) => type(url, p, prefixes, TYPING_GAP_MS)))).flat();
  const typing = counts(before);
  const keys = typed.length;
  figure(
    `picker: ${PEOPLE} people typing "${WORD}" (${keys} keystrokes), AssumeRole calls`,
    typing.assumeRole,
  );
  figure(
    `picker: same, searches (DescribeInstances calls, pages included)`,
    `${typing.searches} (${typing.describe})`,
  );
  figure(`picker: same, one session and one search per keystroke would be`, `${keys} + ${keys}`);
  figure(
    `picker: same, options answer p50`,
    percentile(
      typed.map((r) => r.ms),
      50,
    ),
    "ms",
  );
  figure(
    `picker: same, options answer p99`,
    percentile(
      typed.map((r) => r.ms),
      99,
    ),
    "ms",
  );
  figure(`picker: same, answered "searching too fast"`, typed.filter((r) => r.tooFast).length);

  const mashFrom = aws.requests.length;
  const mashTexts = Array.from({ length: MASH_KEYS }, (_, i) => `web${"x".repeat(i)}`);
  // A fresh person, so the typing above has not spent their budget.
  const mashed = await type(url, "U0PICKERXX", mashTexts, MASH_GAP_MS);
  const mash = counts(mashFrom);
  figure(
    `picker: one person, ${MASH_KEYS} keystrokes ${MASH_GAP_MS} ms apart, searches (calls)`,
    `${mash.searches} (${mash.describe})`,
  );
  figure(`picker: same, new AssumeRole calls`, mash.assumeRole);
  figure(`picker: same, answered "searching too fast"`, mashed.filter((r) => r.tooFast).length);
  figure(
    `picker: same, options answer p99`,
    percentile(
      mashed.map((r) => r.ms),
      99,
    ),
    "ms",
  );
} finally {
  await bot?.stop();
  await slack.close();
  await aws.close();
  removeTempDirs();
}
