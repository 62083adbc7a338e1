import type { webApi } from "@slack/bolt";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Target } from "../../../src/domain/target.js";
import { createHomeTabs, type HomeTabs } from "../../../src/slack/home/home-tabs.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { memoryStore, newJob, REQUESTER, silentLogger, testTarget } from "../../fakes/job-fixtures.js";

const APPROVER = "U0APPROVER";
const GROUP_APPROVER = "U0GROUPIE1";
const BYSTANDER = "U0BYSTANDR";
const LEADS = "S0LEADS001";
const HOME_DM = "D0HOMEDM01";
const GAP = 700;
const PER_USER = 2_000;

interface Published {
  readonly user: string;
  readonly at: number;
  readonly view: {
    private_metadata?: string;
    blocks: { text?: { text: string }; elements?: { value?: string }[] }[];
  };
}

/** A WebClient stand-in: views.publish and chat.getPermalink, recording, failing when armed. */
function fakeClient() {
  const published: Published[] = [];
  const failures: unknown[] = [];
  let permalinkCalls = 0;
  let hang = false;
  const client = {
    views: {
      publish: async (args: { user_id: string; view: Published["view"] }) => {
        if (hang) return new Promise(() => {});
        const failure = failures.shift();
        if (failure) throw failure;
        published.push({ user: args.user_id, at: Date.now(), view: args.view });
        return { ok: true };
      },
    },
    chat: {
      getPermalink: async (args: { channel: string; message_ts: string }) => {
        permalinkCalls++;
        return {
          ok: true,
          permalink: `https://acme.slack.com/archives/${args.channel}/p${args.message_ts.replace(".", "")}`,
        };
      },
    },
  };
  return {
    client: client as unknown as webApi.WebClient,
    published,
    of: (user: string) => published.filter((p) => p.user === user),
    failNext: (error: unknown) => failures.push(error),
    hangPublishes: () => {
      hang = true;
    },
    permalinkCalls: () => permalinkCalls,
  };
}

/** What @slack/web-api throws with rejectRateLimitedCalls. */
function rateLimited(retryAfterSeconds: number) {
  return Object.assign(new Error("A rate limit was exceeded"), {
    code: "slack_webapi_rate_limited_error",
    retryAfter: retryAfterSeconds,
  });
}

function platformError(error: string) {
  return Object.assign(new Error(`An API error occurred: ${error}`), {
    code: "slack_webapi_platform_error",
    data: { ok: false, error },
  });
}

const textOf = (p: Published | undefined) => (p?.view.blocks ?? []).map((b) => b.text?.text ?? "").join("\n");

let store: ReturnType<typeof memoryStore>;
let slack: ReturnType<typeof fakeClient>;
let homes: HomeTabs;
let target: Target;

function start(targets: Target[] = [target]): HomeTabs {
  return createHomeTabs({
    client: slack.client,
    store,
    config: { targets },
    directory: {
      groupsOf: async (userId) => new Set(userId === GROUP_APPROVER ? [LEADS] : []),
      standingOf: async () => "member",
    },
    clock: { now: () => Date.now() },
    logger: silentLogger(),
    minGapMs: GAP,
    perUserGapMs: PER_USER,
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: CLOCK_START });
  store = memoryStore();
  slack = fakeClient();
  target = testTarget({
    allow: { users: [REQUESTER, APPROVER, GROUP_APPROVER, BYSTANDER], usergroups: [], channels: [] },
    approval: { approvers: { users: [APPROVER], usergroups: [LEADS] }, expiresAfterMs: 4 * 3_600_000 },
  });
  homes = start();
});

afterEach(() => {
  homes.stop();
  vi.useRealTimers();
});

async function open(userId: string, channelId = `D0${userId.slice(2)}`): Promise<void> {
  const opening = homes.opened(userId, channelId);
  await vi.advanceTimersByTimeAsync(GAP);
  await opening;
}

function waitingJob(requestedBy = REQUESTER) {
  const job = newJob({ requestedBy, approvalExpiresAt: Date.now() + 4 * 3_600_000 });
  store.insert(job, Date.now());
  const stored = store.get(job.id);
  if (!stored) throw new Error("not stored");
  store.markRootPosted(job.id, "C0UPDATES", "1764297600.000100", Date.now());
  return store.get(job.id) ?? stored;
}

describe("opening the Home tab", () => {
  it("publishes the person's tab at once, with their jobs and their App Home DM as private_metadata", async () => {
    const job = waitingJob();
    await open(REQUESTER, HOME_DM);
    expect(slack.of(REQUESTER)).toHaveLength(1);
    const view = slack.of(REQUESTER)[0];
    expect(view?.view.private_metadata).toBe(HOME_DM);
    expect(textOf(view)).toContain(job.imageName);
    expect(textOf(view)).toContain("|thread>");
    expect(homes.channelOf?.(REQUESTER)).toBe(HOME_DM);
  });

  it("shows an approver the others' waiting jobs, not their own", async () => {
    const theirs = waitingJob(REQUESTER);
    const own = waitingJob(APPROVER);
    await open(APPROVER);
    const values =
      slack.of(APPROVER)[0]?.view.blocks.flatMap((b) => (b.elements ?? []).map((e) => e.value)) ?? [];
    expect(values).toContain(theirs.id);
    expect(values).not.toContain(own.id);
  });

  it("shows nothing of a target the person may no longer use", async () => {
    waitingJob();
    const other = testTarget({ name: "other", allow: { users: [], usergroups: [], channels: [] } });
    homes.stop();
    homes = start([{ ...target, allow: { users: [], usergroups: [], channels: [] } }, other]);
    await open(REQUESTER);
    expect(textOf(slack.of(REQUESTER)[0])).toContain("You have no images yet.");
  });

  it("asks Slack for a thread's permalink once, then remembers it", async () => {
    waitingJob();
    await open(REQUESTER);
    await vi.advanceTimersByTimeAsync(PER_USER);
    await open(REQUESTER);
    expect(slack.of(REQUESTER)).toHaveLength(2);
    expect(slack.permalinkCalls()).toBe(1);
  });
  it("asks Slack for no links when refreshing the tab of someone who has not opened it", async () => {
    homes.jobChanged(waitingJob());
    await vi.advanceTimersByTimeAsync(10_000);
    expect(slack.of(REQUESTER)).toHaveLength(1);
    expect(slack.permalinkCalls()).toBe(0);
    expect(textOf(slack.of(REQUESTER)[0])).not.toContain("|thread>");
  });
});

describe("refreshing on job changes", () => {
  it("returns at once and coalesces 50 changes for one person into one or two publishes", async () => {
    const job = waitingJob();
    await open(REQUESTER);
    const before = slack.of(REQUESTER).length;
    for (let i = 0; i < 50; i++) {
      expect(homes.jobChanged(job)).toBeUndefined();
      await vi.advanceTimersByTimeAsync(50);
    }
    await vi.advanceTimersByTimeAsync(10_000);
    const after = slack.of(REQUESTER).length - before;
    expect(after).toBeGreaterThanOrEqual(1);
    expect(after).toBeLessThanOrEqual(2);
    const times = slack.of(REQUESTER).map((p) => p.at);
    for (let i = 1; i < times.length; i++)
      expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(PER_USER);
  });

  it("publishes to the requester, listed approvers and group approvers who opened the tab, never faster than one per gap", async () => {
    await open(GROUP_APPROVER);
    await open(BYSTANDER);
    const before = slack.published.length;
    homes.jobChanged(waitingJob());
    await vi.advanceTimersByTimeAsync(10_000);
    const refreshed = slack.published.slice(before);
    expect(refreshed.map((p) => p.user).sort()).toEqual([APPROVER, GROUP_APPROVER, REQUESTER].sort());
    const times = slack.published.map((p) => p.at);
    for (let i = 1; i < times.length; i++)
      expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(GAP);
  });

  it("paces many people at one publish per gap", async () => {
    const people = Array.from({ length: 30 }, (_, i) => `U0PERSON${String(i).padStart(2, "0")}`);
    const many = testTarget({
      allow: { users: people, usergroups: [], channels: [] },
      approval: { approvers: { users: people, usergroups: [] }, expiresAfterMs: 3_600_000 },
    });
    homes.stop();
    homes = start([many]);
    const stored = newJob({ requestedBy: people[0] });
    store.insert(stored, Date.now());
    const started = Date.now();
    homes.jobChanged(store.get(stored.id) as NonNullable<ReturnType<typeof store.get>>);
    await vi.advanceTimersByTimeAsync(10_000);
    // 0, 700, …, 9,800 ms: 15 in the first 10 s, not 30.
    expect(slack.published.length).toBeLessThanOrEqual(Math.floor(10_000 / GAP) + 1);
    expect(slack.published.length).toBeGreaterThanOrEqual(12);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(new Set(slack.published.map((p) => p.user)).size).toBe(30);
    const times = slack.published.map((p) => p.at);
    expect(times[0]).toBe(started);
    for (let i = 1; i < times.length; i++)
      expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual(GAP);
  });

  it("never throws into the caller and never waits, even while Slack hangs", async () => {
    const job = waitingJob();
    slack.hangPublishes();
    const t0 = performance.now();
    for (let i = 0; i < 1_000; i++) homes.jobChanged(job);
    expect(performance.now() - t0).toBeLessThan(200);
    await vi.advanceTimersByTimeAsync(5_000);
  });

  it("keeps going after a failing publish, retrying it later", async () => {
    const job = waitingJob();
    slack.failNext(new Error("socket hang up"));
    expect(() => homes.jobChanged(job)).not.toThrow();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(slack.of(REQUESTER)).toHaveLength(1);
  });

  it("drops a publish Slack refuses for good, without retrying", async () => {
    const job = waitingJob();
    slack.failNext(platformError("user_not_found"));
    homes.jobChanged(job);
    await vi.advanceTimersByTimeAsync(60_000);
    // The requester's (the first) was refused and not tried again; the approver's went out.
    expect(slack.of(REQUESTER)).toHaveLength(0);
    expect(slack.published.map((p) => p.user)).toEqual([APPROVER]);
  });

  it("holds every publish while Slack's Retry-After runs", async () => {
    const job = waitingJob();
    await open(GROUP_APPROVER);
    const before = slack.published.length;
    slack.failNext(rateLimited(30));
    const failedAt = Date.now();
    homes.jobChanged(job);
    await vi.advanceTimersByTimeAsync(29_000);
    expect(slack.published.length).toBe(before);
    await vi.advanceTimersByTimeAsync(10_000);
    const after = slack.published.slice(before);
    expect(after.map((p) => p.user).sort()).toEqual([APPROVER, GROUP_APPROVER, REQUESTER].sort());
    for (const p of after) expect(p.at).toBeGreaterThanOrEqual(failedAt + 30_000);
  });

  it("publishes nothing once stopped", async () => {
    const job = waitingJob();
    homes.stop();
    homes.jobChanged(job);
    await homes.opened(REQUESTER, HOME_DM);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(slack.published).toHaveLength(0);
  });
});
