/**
 * Lists the chosen instance's volumes for the form, under the person's read-only picker session. It runs
 * after the ack, so it has no deadline of Slack's, but the person is waiting to see the form change: AWS
 * gets the volume-list budget, and if it is slower (or refuses) the form says the whole instance will be imaged.
 */
import type { webApi } from "@slack/bolt";
import type { Place, Requester } from "../../domain/ports.js";
import { AwsRefusedError } from "../../errors.js";
import type { ModalState } from "../blocks/modal.js";
import { placeValue } from "../blocks/modal.js";
import { type VolumeField, volumeField } from "../blocks/volumes.js";
import type { SlackDeps } from "../deps.js";
import { readRequestInput } from "../form-values.js";
import { updateModal } from "./update-modal.js";

/**
 * The volume field for an instance: listed, or "not listed" when AWS was slow or failing. Undefined when
 * there is nothing to say (the instance is missing or outside the target's scope: the submission says so).
 */
export async function loadVolumeField(
  deps: SlackDeps,
  place: Place,
  requester: Requester,
  instanceId: string,
): Promise<VolumeField | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), deps.budgets.volumeListMs);
  });
  try {
    const volumes = await Promise.race([deps.images.describeVolumes(place, requester, instanceId), timeout]);
    if (volumes === "timeout") {
      deps.logger.info({ instanceId }, "volumes not listed in time; the form offers none");
      return { instanceId, listed: false };
    }
    return volumes === undefined ? undefined : volumeField(instanceId, volumes);
  } catch (error) {
    if (error instanceof AwsRefusedError && error.code === "instance_out_of_scope") return undefined;
    // An access_denied here usually means a target role deployed before ec2:DescribeVolumes was added.
    deps.logger.warn(
      { err: error, instanceId },
      "could not list the instance's volumes; the form offers none",
    );
    return { instanceId, listed: false };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the field puts anything on the form (one volume, the root, offers nothing to choose). */
export function drawsSomething(field: VolumeField | undefined): boolean {
  return field !== undefined && (!field.listed || field.choosable.length > 0);
}

/**
 * `/ami i-…`: once the form is open with the instance chosen, add its volumes. The form is redrawn as it
 * was opened (Slack keeps anything typed meanwhile), and not at all when there is nothing to choose.
 */
export async function showPreselectedVolumes(
  deps: SlackDeps,
  client: webApi.WebClient,
  view: { id?: string | undefined; hash?: string | undefined } | undefined,
  opened: {
    readonly places: ModalState["places"];
    readonly userId: string;
    readonly channelId: string;
    readonly instance: { readonly id: string; readonly label: string };
    readonly autoName: string | undefined;
  },
): Promise<void> {
  const first = opened.places[0];
  const target = deps.config.targets.find((t) => t.name === first?.targetName);
  if (!view?.id || !view.hash || !first || !target) return;
  const volumes = await loadVolumeField(
    deps,
    { target, region: first.region },
    { userId: opened.userId, channelId: opened.channelId },
    opened.instance.id,
  );
  if (!drawsSomething(volumes)) return;
  const metadata = { origin: opened.channelId, nameVersion: 0, autoName: opened.autoName };
  await updateModal(
    client,
    { id: view.id, hash: view.hash },
    {
      places: opened.places,
      input: readRequestInput(undefined, placeValue(first)),
      metadata,
      codec: deps.metadata,
    },
    { instance: opened.instance, imageName: opened.autoName, nameVersion: 0, volumes },
    deps.logger,
  );
}
