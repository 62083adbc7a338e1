/**
 * Options for the instance picker: DescribeInstances under the person's read-only scoped session,
 * always filtered (state, scope tags, the search text) and capped at one page.
 */
import type { AllMiddlewareArgs, SlackOptionsMiddlewareArgs } from "@slack/bolt";
import { allowedPlaces } from "../../domain/access.js";
import { AwsRefusedError } from "../../errors.js";
import { instanceOptionText, placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { readRequestInput, type StateValues } from "../form-values.js";

type Args = SlackOptionsMiddlewareArgs<"block_suggestion"> & AllMiddlewareArgs;

const SEARCH_BUDGET_MS = 2500;
const SLOW_OPTION = "AWS is slow to answer; type again to retry.";

export const NOT_ALLOWED_OPTION = "⛔ You are not allowed to list instances here; ask ami-bot's admins";

export function createInstanceOptions(deps: SlackDeps) {
  return async ({ body, ack }: Args): Promise<void> => {
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
    try {
      // Options must come back within Slack's 3 seconds: a slower AWS gets a "try again" option instead.
      let timer: NodeJS.Timeout | undefined;
      const instances = await Promise.race([
        deps.images.findInstances(
          { target, region: input.region },
          { userId, channelId: metadata?.origin ?? "unknown" },
          String(body.value ?? "").slice(0, 100),
        ),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new AwsRefusedError("aws_unavailable", SLOW_OPTION, true)),
            SEARCH_BUDGET_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      await ack({
        options: instances.slice(0, 100).map((i) => ({
          text: { type: "plain_text" as const, text: instanceOptionText(i) },
          value: i.instanceId,
        })),
      });
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
  };
}
