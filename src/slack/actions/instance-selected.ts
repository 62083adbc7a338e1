/**
 * When an instance is picked, offer a default image name from its Name tag, unless the person already
 * typed their own. The name comes from the option's text, so no AWS call is needed.
 */
import type {
  AllMiddlewareArgs,
  BlockAction,
  ExternalSelectAction,
  SlackActionMiddlewareArgs,
} from "@slack/bolt";
import { defaultImageName, isInstanceId } from "../../domain/image-request.js";
import { createImageModal, placeValue } from "../blocks/modal.js";
import { placesFor, principalOf, type SlackDeps } from "../deps.js";
import { findElement, readRequestInput, type StateValues } from "../form-values.js";
import { ACTION } from "../ids.js";
import { decodeMetadata, encodeMetadata } from "../private-metadata.js";

type Args = SlackActionMiddlewareArgs<BlockAction<ExternalSelectAction>> & AllMiddlewareArgs;

export function createInstanceSelected(deps: SlackDeps) {
  return async ({ ack, body, action, client }: Args): Promise<void> => {
    await ack();
    const view = body.view;
    const metadata = decodeMetadata(view?.private_metadata);
    const instanceId = action.selected_option?.value;
    const label = action.selected_option?.text.text ?? instanceId;
    if (!view || !metadata || !instanceId || !label || !isInstanceId(instanceId)) return;
    const values = view.state.values as StateValues;
    const typed = findElement(values, ACTION.imageName)?.state.value ?? "";
    if (typed !== "" && typed !== metadata.autoName) return; // the person's own name wins

    const who = await principalOf(deps, body.user.id, metadata.origin);
    const places = placesFor(deps, who);
    if (places.length === 0) return;
    const input = readRequestInput(values, places[0] ? placeValue(places[0]) : undefined);
    const autoName = defaultImageName(input.instanceLabel, instanceId, new Date(deps.clock.now()));
    const nameVersion = metadata.nameVersion + 1;
    try {
      await client.views.update({
        view_id: view.id,
        hash: view.hash,
        view: createImageModal(
          {
            places,
            selectedPlace:
              input.targetName && input.region ? `${input.targetName}|${input.region}` : undefined,
            instance: { id: instanceId, label },
            imageName: autoName,
            nameVersion,
            channelId: input.channelId ?? metadata.origin,
          },
          encodeMetadata({ origin: metadata.origin, nameVersion, autoName }),
        ),
      });
    } catch (error) {
      // hash_conflict: the person changed the form meanwhile; their version stands.
      deps.logger.debug({ err: error }, "default name not applied");
    }
  };
}
