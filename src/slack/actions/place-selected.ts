/**
 * Choosing another account and region redraws the form for that target: its reboot policy decides whether
 * the reboot choice is offered, and its allowed tag keys are listed. What the person typed is kept.
 */
import type {
  AllMiddlewareArgs,
  BlockAction,
  SlackActionMiddlewareArgs,
  StaticSelectAction,
} from "@slack/bolt";
import { placeValue } from "../blocks/modal.js";
import { placesFor, principalOf, type SlackDeps } from "../deps.js";
import { findElement, readRequestInput, type StateValues } from "../form-values.js";
import { ACTION } from "../ids.js";
import { updateModal } from "../views/update-modal.js";

type Args = SlackActionMiddlewareArgs<BlockAction<StaticSelectAction>> & AllMiddlewareArgs;

export function createPlaceSelected(deps: SlackDeps) {
  return async ({ ack, body, client }: Args): Promise<void> => {
    await ack();
    const view = body.view;
    const metadata = deps.metadata.decode(view?.private_metadata);
    if (!view || !metadata) return;
    const who = await principalOf(deps, body.user.id, metadata.origin);
    const places = placesFor(deps, who);
    if (places.length === 0) return;
    const values = view.state.values as StateValues;
    const input = readRequestInput(values, placeValue(places[0] as (typeof places)[number]));
    const option = findElement(values, ACTION.instance)?.state.selected_option;
    await updateModal(
      client,
      view,
      { places, input, metadata, codec: deps.metadata },
      {
        instance:
          input.instanceId && option?.text?.text
            ? { id: input.instanceId, label: option.text.text }
            : undefined,
        imageName: undefined,
        nameVersion: metadata.nameVersion,
      },
      deps.logger,
    );
  };
}
