/**
 * Redraws the open modal after a button or a selection, keeping what the person chose so far.
 * Slack keeps typed values for inputs whose block id is unchanged, so only what changed is passed in.
 */
import type { webApi } from "@slack/bolt";
import type { ImageRequestInput } from "../../domain/image-request.js";
import type { Logger } from "../../logger.js";
import { createImageModal, type ModalState } from "../blocks/modal.js";
import type { MetadataCodec, ModalMetadata } from "../private-metadata.js";

/** Redraws the modal; resolves with the view's new hash, or undefined when Slack refused the update. */
export async function updateModal(
  client: webApi.WebClient,
  view: { id: string; hash: string },
  base: {
    places: ModalState["places"];
    input: ImageRequestInput;
    metadata: ModalMetadata;
    codec: MetadataCodec;
  },
  /** `volumes` left out drops the volume field (another place, or an instance whose volumes are unknown). */
  changes: Pick<ModalState, "instance" | "imageName" | "nameVersion" | "checkResult" | "volumes"> &
    Partial<
      Pick<ModalState, "excludedDevices" | "description" | "tagsText" | "reboot" | "copyTo" | "shareWith">
    > & {
      /** A new default name offered (remembered, so a later default may replace it but never a typed name). */
      readonly autoName?: string;
    },
  logger: Logger,
): Promise<string | undefined> {
  const { places, input, metadata } = base;
  try {
    const res = await client.views.update({
      view_id: view.id,
      // With the hash, Slack refuses the update if the person changed the form meanwhile; their version stands.
      hash: view.hash,
      view: createImageModal(
        {
          places,
          selectedPlace: input.targetName && input.region ? `${input.targetName}|${input.region}` : undefined,
          channelId: input.channelId ?? metadata.origin,
          ...changes,
        },
        base.codec.encode({
          ...metadata,
          nameVersion: changes.nameVersion,
          autoName: changes.imageName ?? metadata.autoName,
          volumes: changes.volumes,
        }),
      ),
    });
    // The view's new hash: a further update of this view must name it.
    return res.view?.hash;
  } catch (error) {
    logger.debug({ err: error }, "modal not updated (it changed meanwhile, or was closed)");
    return undefined;
  }
}
