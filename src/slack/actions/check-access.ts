/**
 * The modal's "Check access (dry run)" button: the same access rules and scoped session as a real
 * request, CreateImage with DryRun, and the answer shown in the modal. Nothing is created.
 */
import type { AllMiddlewareArgs, BlockAction, ButtonAction, SlackActionMiddlewareArgs } from "@slack/bolt";
import { allowedPlaces, deniedMessage } from "../../domain/access.js";
import { checkImageAccess } from "../../domain/access-check.js";
import { isInstanceId } from "../../domain/image-request.js";
import { placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { findElement, readRequestInput, type StateValues } from "../form-values.js";
import { ACTION } from "../ids.js";
import { updateModal } from "../views/update-modal.js";

type Args = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

export function createCheckAccess(deps: SlackDeps) {
  return async ({ ack, body, client }: Args): Promise<void> => {
    await ack();
    const view = body.view;
    const metadata = deps.metadata.decode(view?.private_metadata);
    if (!view || !metadata) return;
    const userId = body.user.id;
    const values = view.state.values as StateValues;
    const who = await principalOf(deps, userId, metadata.origin);
    const places = placesFor(deps, who);
    const input = readRequestInput(values, places[0] ? placeValue(places[0]) : undefined);
    const target = deps.config.targets.find((t) => t.name === input.targetName);
    const allowed = allowedPlaces(deps.config.targets, who).has(`${input.targetName}|${input.region}`);
    audit(deps, {
      user: userId,
      action: "check_access",
      allowed,
      reason: allowed ? "place allowed" : "place not allowed for this user",
      ...(input.targetName ? { target: input.targetName } : {}),
    });

    let result: { allowed: boolean; message: string };
    if (!allowed || !target || !input.region) result = { allowed: false, message: deniedMessage(who) };
    else if (!input.instanceId || !isInstanceId(input.instanceId))
      result = { allowed: false, message: "Choose an instance first, then check again." };
    else
      result = await checkImageAccess(
        deps.images,
        { target, region: input.region },
        { userId, channelId: metadata.origin },
        input.instanceId,
      );

    const typedName = findElement(values, ACTION.imageName)?.state.value ?? undefined;
    const label = findElement(values, ACTION.instance)?.state.selected_option?.text?.text;
    await updateModal(
      client,
      view,
      { places, input, metadata, codec: deps.metadata },
      {
        instance: input.instanceId ? { id: input.instanceId, label: label ?? input.instanceId } : undefined,
        imageName: typedName ?? metadata.autoName,
        nameVersion: metadata.nameVersion,
        checkResult: result,
        // The volume field stays as it was (Slack keeps the ticks), for the instance it was listed for.
        volumes: metadata.volumes?.instanceId === input.instanceId ? metadata.volumes : undefined,
      },
      deps.logger,
    );
  };
}
