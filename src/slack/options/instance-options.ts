/**
 * Options for the instance picker: DescribeInstances under the person's read-only scoped session,
 * always filtered (state, scope tags, the search text) and capped at one page.
 *
 * Slack asks once per keystroke, and EC2 throttles DescribeInstances per account and region, so one fast
 * typist could slow every search, and the bot's own image checks, for everyone in the account. So a search
 * waits for the typing to pause and only a person's newest one goes ahead (Slack shows only the answer to
 * the latest text); searches are limited per person; and a search repeated within seconds is answered
 * from memory.
 */
import type { AllMiddlewareArgs, SlackOptionsMiddlewareArgs } from "@slack/bolt";
import { allowedPlaces } from "../../domain/access.js";
import type { Clock } from "../../domain/ports.js";
import type { Target } from "../../domain/target.js";
import { createWindowLimiter } from "../../domain/window-limiter.js";
import { AwsRefusedError } from "../../errors.js";
import { instanceOptionText, placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { readRequestInput, type StateValues } from "../form-values.js";

type Args = SlackOptionsMiddlewareArgs<"block_suggestion"> & AllMiddlewareArgs;
type Option = { text: { type: "plain_text"; text: string }; value: string };

const SLOW_OPTION = "AWS is slow to answer; type again to retry.";

export const NOT_ALLOWED_OPTION = "⛔ You are not allowed to list instances here; ask ami-bot's admins";
export const TOO_FAST_OPTION = "⏳ Searching too fast: pause a second, then type again";

/** Per person: enough for the first letters of a name, not a sustained stream of keystrokes. */
export const SEARCH_LIMIT = { limit: 5, windowMs: 5_000 } as const;
/** Over the limit, a search waits for the next free slot when it comes this soon, instead of refusing. */
const SLOT_WAIT_MS = 1_000;
/** AWS's least time for a search, however long the settle and slot waits took. */
const MIN_AWS_BUDGET_MS = 1_000;

/** How long a search's answer is reused for the same person, place and text. */
export const SEARCH_CACHE_MS = 10_000;
const SEARCH_CACHE_MAX = 1_000;

export function createInstanceOptions(deps: SlackDeps) {
  // One of each per bot, so every request from a person counts against the same budget.
  const limiter = createWindowLimiter({ ...SEARCH_LIMIT, clock: deps.clock });
  const recent = createAnswerCache(deps.clock, SEARCH_CACHE_MS, SEARCH_CACHE_MAX);
  const newest = createNewestOnly();
  return async ({ body, ack }: Args): Promise<void> => {
    const started = performance.now();
    const userId = body.user.id;
    const metadata = deps.metadata.decode(body.view?.private_metadata);
    const who = await principalOf(deps, userId, metadata?.origin);
    const places = placesFor(deps, who);
    const input = readRequestInput(
      body.view?.state?.values as StateValues | undefined,
      places[0] ? placeValue(places[0]) : undefined,
    );
    const key = `${input.targetName}|${input.region}`;
    const allowed = allowedPlaces(deps.config.targets, who).has(key);
    audit(deps, {
      user: userId,
      action: "list_instances",
      allowed,
      reason: allowed ? "place allowed" : "place not allowed for this user",
      ...(input.targetName ? { target: input.targetName } : {}),
      ...(input.region ? { region: input.region } : {}),
    });
    const target = deps.config.targets.find((t) => t.name === input.targetName);
    if (!allowed || !target || !input.region) {
      // The picker can only show options: the refusal is one that fails validation if chosen.
      await ack({
        options: [{ text: { type: "plain_text" as const, text: NOT_ALLOWED_OPTION }, value: "not-allowed" }],
      });
      return;
    }
    const query = String(body.value ?? "").slice(0, 100);
    const cacheKey = JSON.stringify([userId, target.name, input.region, query]);
    const cached = recent.get(cacheKey);
    if (cached) {
      await ack({ options: cached });
      return;
    }
    const ticket = newest.enter(userId);
    try {
      // A keystroke followed by another within the settle time is never searched: Slack shows the newer answer.
      await sleep(deps.budgets.pickerSettleMs);
      if (!newest.isNewest(userId, ticket)) return await ack({ options: [] });
      let slot = limiter.take(userId);
      if (!slot.ok && slot.retryAt - deps.clock.now() <= SLOT_WAIT_MS) {
        await sleep(slot.retryAt - deps.clock.now());
        if (!newest.isNewest(userId, ticket)) return await ack({ options: [] });
        slot = limiter.take(userId);
      }
      if (!slot.ok) {
        deps.logger.debug(
          { user: userId, target: target.name },
          "instance search refused: too many too fast",
        );
        // Like the other refusals, an option whose value fails validation if chosen.
        return await ack({
          options: [{ text: { type: "plain_text", text: TOO_FAST_OPTION }, value: "too-fast" }],
        });
      }
      return await search(ack, userId, target, input.region, query, cacheKey, metadata?.origin, started);
    } finally {
      newest.leave(userId, ticket);
    }
  };

  async function search(
    ack: Args["ack"],
    userId: string,
    target: Target,
    region: string,
    query: string,
    cacheKey: string,
    origin: string | undefined,
    started: number,
  ): Promise<void> {
    const budget = Math.max(MIN_AWS_BUDGET_MS, deps.budgets.pickerAnswerMs - (performance.now() - started));
    try {
      // Options must come back within Slack's 3 seconds: a slower AWS gets a "try again" option instead.
      let timer: NodeJS.Timeout | undefined;
      const instances = await Promise.race([
        deps.images.findInstances({ target, region }, { userId, channelId: origin ?? "unknown" }, query),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new AwsRefusedError("aws_unavailable", SLOW_OPTION, true)), budget);
        }),
      ]).finally(() => clearTimeout(timer));
      const options: Option[] = instances.slice(0, 100).map((i) => ({
        text: { type: "plain_text", text: instanceOptionText(i) },
        value: i.instanceId,
      }));
      // Only answers are kept: a failed search is tried again on the next keystroke.
      recent.set(cacheKey, options);
      await ack({ options });
    } catch (error) {
      // Option text holds 75 characters: a short phrase per cause, the detail in the log.
      const code = error instanceof AwsRefusedError ? error.code : "unknown";
      const why =
        code === "access_denied" || code === "assume_role_failed"
          ? "AWS refused the lookup; ask ami-bot's admins to run its doctor."
          : code === "throttled" || code === "aws_unavailable" || code === "credentials_expired"
            ? SLOW_OPTION
            : "AWS could not list instances; try again.";
      deps.logger.warn({ err: error, user: userId, target: target.name }, "instance search failed");
      // The picker can only show options, so the reason is shown as one that fails validation if chosen.
      await ack({
        options: [{ text: { type: "plain_text" as const, text: `⚠ ${why}` }, value: "error" }],
      });
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Per person, which search is the newest: an older one still waiting gives way to it. */
function createNewestOnly() {
  const newest = new Map<string, number>();
  let counter = 0;
  return {
    enter(userId: string): number {
      counter += 1;
      newest.set(userId, counter);
      return counter;
    },
    isNewest: (userId: string, ticket: number) => newest.get(userId) === ticket,
    /** Forgets the person once their newest search is done, so the map holds only people searching now. */
    leave(userId: string, ticket: number): void {
      if (newest.get(userId) === ticket) newest.delete(userId);
    },
  };
}

/**
 * Answers by key for `ttlMs`. Entries all live equally long, so insertion order is expiry order: expired
 * ones are dropped from the front on each write, and the oldest go first past `max`, bounding memory.
 */
function createAnswerCache(clock: Clock, ttlMs: number, max: number) {
  const entries = new Map<string, { options: Option[]; expires: number }>();
  return {
    get(key: string): Option[] | undefined {
      const hit = entries.get(key);
      return hit && hit.expires > clock.now() ? hit.options : undefined;
    },
    set(key: string, options: Option[]): void {
      const now = clock.now();
      for (const [k, e] of entries) {
        if (e.expires > now && entries.size < max) break;
        entries.delete(k);
      }
      entries.delete(key);
      entries.set(key, { options, expires: now + ttlMs });
    },
  };
}
