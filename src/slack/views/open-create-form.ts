/**
 * Opens the create-image form, as `/ami` and the Home tab's "Create image" button both do: the modal first
 * (the trigger_id lives 3 seconds), and only then AWS, for a preselected instance's volumes.
 */
import type { webApi } from "@slack/bolt";
import { defaultImageName } from "../../domain/image-request.js";
import { createImageModal, type ModalState } from "../blocks/modal.js";
import type { SlackDeps } from "../deps.js";
import { showPreselectedVolumes } from "./instance-volumes.js";

export interface CreateFormRequest {
  readonly triggerId: string;
  readonly userId: string;
  /** Where the person asked from: the form's default channel and the signed origin the access rules weigh. */
  readonly channelId: string;
  /** The places the person may use now (never empty: a denied person is told so instead). */
  readonly places: ModalState["places"];
  /** An instance to preselect (`/ami i-…`). */
  readonly instance?: { readonly id: string; readonly label: string } | undefined;
}

export async function openCreateForm(
  deps: SlackDeps,
  client: webApi.WebClient,
  request: CreateFormRequest,
): Promise<void> {
  const { places, instance, channelId } = request;
  const autoName = instance
    ? defaultImageName(undefined, instance.id, new Date(deps.clock.now()))
    : undefined;
  const view = createImageModal(
    {
      places,
      selectedPlace: undefined,
      instance,
      imageName: autoName,
      nameVersion: 0,
      channelId,
    },
    deps.metadata.encode({ origin: channelId, nameVersion: 0, autoName }),
  );
  const opened = await client.views.open({ trigger_id: request.triggerId, view });
  // The form is open: now AWS may be asked, for the preselected instance's volumes.
  if (instance)
    await showPreselectedVolumes(deps, client, opened.view, {
      places,
      userId: request.userId,
      channelId,
      instance,
      autoName,
    });
}
