/**
 * The instance picker's searches through the bot's real endpoint, against the fake AWS: one person typing
 * fast cannot spend the account's EC2 API budget, and a repeated search costs no AWS call.
 */

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SEARCH_CACHE_MS, SEARCH_LIMIT, TOO_FAST_OPTION } from "../../src/slack/options/instance-options.js";
import { createFixedClock, type FixedClock } from "../fakes/fixed-clock.js";
import { ALLOWED_USER, CHANNEL, type Harness, signedMetadata, startHarness } from "../support/bot-harness.js";
import { instanceSearchPayload } from "../support/slack-requests.js";

const OTHER_USER = "U0ALLOWED2";
const INSTANCE = "i-0123456789abcdef0";
const WEB_1 = [
  { text: { type: "plain_text", text: `web-1 (${INSTANCE}) · running · t3.micro` }, value: INSTANCE },
];
const TOO_FAST = [{ text: { type: "plain_text", text: TOO_FAST_OPTION }, value: "too-fast" }];

describe("instance picker searches", () => {
  let h: Harness;
  // The bot's clock stands still unless a test moves it, so "rapid" does not depend on the machine's speed.
  let clock: FixedClock;

  beforeEach(async () => {
    clock = createFixedClock();
    h = await startHarness({
      env: { AMI_TARGET_ALLOW_USERS: `${ALLOWED_USER},${OTHER_USER}` },
      overrides: { clock },
    });
    h.aws.addInstance({ instanceId: INSTANCE, name: "web-1" });
  });
  afterEach(async () => {
    await h.close();
  });

  /** One keystroke in the picker: the options Slack would show. */
  async function search(user: string, value: string): Promise<unknown> {
    const res = await h.interaction(
      instanceSearchPayload({ userId: user, value, metadata: signedMetadata(CHANNEL), viewId: "V0PICKER01" }),
    );

    expect(res.status).toBe(200);
    return (res.json() as { options: unknown }).options;
  }

  const describes = () => h.aws.calls("DescribeInstances").length;

  it("searches only the newest of a burst of keystrokes, and only once", async () => {
    // On a loaded machine twenty requests may take longer than production's 250 ms pause to arrive: a
    // longer pause keeps them one burst.
    await h.restart({ budgets: { pickerSettleMs: 2_000 } });
    // Twenty different texts at the same moment, as a burst of keystrokes would send them: each waits for
    // the typing to pause, and all but the last one to arrive give way (Slack shows only the newest answer).
    const texts = Array.from({ length: 20 }, (_, i) => `web${"-".repeat(i % 2)}${i}`);
    const answers = await Promise.all(texts.map((text) => search(ALLOWED_USER, text)));
    expect(describes()).toBe(1);
    // The nineteen that gave way answer with no options (the searched one may match nothing too).
    expect(answers.filter((a) => JSON.stringify(a) === "[]").length).toBeGreaterThanOrEqual(19);
    expect(h.aws.calls("DescribeInstances")[0]?.params["Filter.2.Value.1"]).toMatch(/^\*web-?\d+\*$/);
  });

  it("makes at most 5 DescribeInstances calls in 5 s when one person pauses between keystrokes", async () => {
    // Each keystroke waits for the one before to be answered: every one is the newest, so the limit decides.
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await search(ALLOWED_USER, `web${i}`));
    expect(SEARCH_LIMIT.limit).toBe(5);
    expect(describes()).toBe(5);
    expect(answers.filter((a) => JSON.stringify(a) === JSON.stringify(TOO_FAST))).toHaveLength(3);
  });

  it("answers another person's search from AWS when the first person is over the limit", async () => {
    for (let i = 0; i < 20; i++) await search(ALLOWED_USER, `w${i}`);
    const before = describes();
    expect(await search(OTHER_USER, "web")).toEqual(WEB_1);
    expect(describes()).toBe(before + 1);
  });

  it("searches AWS again when the person pauses for the window after being told to", async () => {
    for (let i = 0; i < 6; i++) await search(ALLOWED_USER, `w${i}`);
    expect(await search(ALLOWED_USER, "web")).toEqual(TOO_FAST);
    clock.advance(SEARCH_LIMIT.windowMs);
    expect(await search(ALLOWED_USER, "web")).toEqual(WEB_1);
    expect(describes()).toBe(6);
  });

  it("answers a repeated search from memory, without an AWS call or using up the limit", async () => {
    expect(await search(ALLOWED_USER, "web")).toEqual(WEB_1);
    expect(describes()).toBe(1);
    for (let i = 0; i < 10; i++) expect(await search(ALLOWED_USER, "web")).toEqual(WEB_1);
    expect(describes()).toBe(1);
    // The repeats cost nothing: four more new searches still reach AWS.
    for (const text of ["w", "we", "web-", "web-1"])
      expect(await search(ALLOWED_USER, text)).not.toEqual(TOO_FAST);
    expect(describes()).toBe(5);
  });

  it("asks AWS again when the remembered answer is too old or belongs to someone else", async () => {
    await search(ALLOWED_USER, "web");
    await search(OTHER_USER, "web");
    expect(describes()).toBe(2);
    clock.advance(SEARCH_CACHE_MS - 1);
    await search(ALLOWED_USER, "web");
    expect(describes()).toBe(2);
    clock.advance(1);
    h.aws.addInstance({ instanceId: "i-0000000000000b0b0", name: "web-2" });
    const fresh = (await search(ALLOWED_USER, "web")) as { value: string }[];
    expect(fresh.map((o) => o.value).sort()).toEqual(["i-0000000000000b0b0", INSTANCE]);
    expect(describes()).toBe(3);
  });
});
