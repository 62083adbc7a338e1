/**
 * When an instance is picked, offer a default image name from its Name tag, unless the person already
 * typed their own, name the instance in the reboot confirm dialog, and list its volumes to choose from.
 * The name comes from the option's text (shown only to this person, in their own form); the volumes from
 * AWS, under the person's read-only session, after the ack.
 */
import type {
  AllMiddlewareArgs,
  BlockAction,
  ExternalSelectAction,
  SlackActionMiddlewareArgs,
} from "@slack/bolt";
import { defaultImageName, isInstanceId } from "../../domain/image-request.js";
import { placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { findElement, readRequestInput, type StateValues } from "../form-values.js";
import { ACTION } from "../ids.js";
import { drawsSomething, loadVolumeField } from "../views/instance-volumes.js";
import { updateModal } from "../views/update-modal.js";

type Args = SlackActionMiddlewareArgs<BlockAction<ExternalSelectAction>> & AllMiddlewareArgs;

export function createInstanceSelected(deps: SlackDeps) {
  return async ({ ack, body, action, client }: Args): Promise<void> => {
    await ack();
    const view = body.view;
    const metadata = deps.metadata.decode(view?.private_metadata);
    const instanceId = action.selected_option?.value;
    const label = action.selected_option?.text.text ?? instanceId;
    if (!view || !metadata || !instanceId || !label || !isInstanceId(instanceId)) return;
    const values = view.state.values as StateValues;
    const typed = findElement(values, ACTION.imageName)?.state.value ?? "";
    const ownName = typed !== "" && typed !== metadata.autoName; // the person's own name wins
    const who = await principalOf(deps, body.user.id, metadata.origin);
    const places = placesFor(deps, who);
    audit(deps, {
      user: body.user.id,
      action: "select_instance",
      allowed: places.length > 0,
      reason: places.length > 0 ? `${places.length} places allowed` : "no target allows this user here",
    });
    if (places.length === 0) return;
    const input = readRequestInput(values, places[0] ? placeValue(places[0]) : undefined);
    // Only a place this person may use is asked about its volumes.
    const place = places.find((p) => p.targetName === input.targetName && p.region === input.region);
    const target = place && deps.config.targets.find((t) => t.name === place.targetName);
    const autoName = defaultImageName(input.instanceLabel, instanceId, new Date(deps.clock.now()));
    const named = ownName
      ? { instance: { id: instanceId, label }, imageName: undefined, nameVersion: metadata.nameVersion }
      : {
          instance: { id: instanceId, label },
          imageName: autoName,
          autoName,
          nameVersion: metadata.nameVersion + 1,
        };
    // First the name, the instance and the reboot dialog, at once: AWS is not waited for, so a name the
    // person starts typing while the volumes load is never replaced. Volumes of an instance picked before
    // are taken away here too.
    let hash: string | undefined = view.hash;
    if (!ownName || place?.reboot === "ask" || drawsSomething(metadata.volumes)) {
      hash = await updateModal(
        client,
        view,
        { places, input, metadata, codec: deps.metadata },
        { ...named, volumes: undefined },
        deps.logger,
      );
      if (!hash) return; // the form changed meanwhile, or was closed
    }
    const volumes =
      place && target
        ? await loadVolumeField(
            deps,
            { target, region: place.region },
            { userId: body.user.id, channelId: metadata.origin },
            instanceId,
          )
        : undefined;
    if (!drawsSomething(volumes)) return;
    // Then the volumes, with the name field's block id unchanged, so Slack keeps whatever is in it now.
    await updateModal(
      client,
      { id: view.id, hash },
      {
        places,
        input,
        metadata: {
          ...metadata,
          nameVersion: named.nameVersion,
          autoName: named.imageName ?? metadata.autoName,
        },
        codec: deps.metadata,
      },
      { instance: named.instance, imageName: undefined, nameVersion: named.nameVersion, volumes },
      deps.logger,
    );
  };
}
