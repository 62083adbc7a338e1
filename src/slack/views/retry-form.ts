/**
 * After "Try again" opened the form: the instance's volumes (as `/ami i-…` lists them, with the devices the
 * job left out unticked) and, when the job's image name is already taken, a free one in its place. Both
 * come from AWS after the form is open, each within a short budget; then the form is redrawn once.
 */
import type { webApi } from "@slack/bolt";
import { defaultImageName, nextImageName } from "../../domain/image-request.js";
import type { Job } from "../../domain/job.js";
import type { Place } from "../../domain/ports.js";
import type { Target } from "../../domain/target.js";
import { type ModalState, placeValue } from "../blocks/modal.js";
import type { SlackDeps } from "../deps.js";
import { readRequestInput } from "../form-values.js";
import { drawsSomething, loadVolumeField } from "./instance-volumes.js";
import { updateModal } from "./update-modal.js";

/** Names tried after the job's own ("… (2)", "… (3)", "… (4)") before the default name is offered. */
const NAME_TRIES = 3;

export async function showRetriedJobExtras(
  deps: SlackDeps,
  client: webApi.WebClient,
  view: { id?: string | undefined; hash?: string | undefined } | undefined,
  opened: {
    readonly job: Job;
    readonly target: Target;
    readonly userId: string;
    readonly origin: string;
    readonly state: ModalState;
  },
): Promise<void> {
  const { job, target, state } = opened;
  if (!view?.id || !view.hash) return;
  const place: Place = { target, region: job.region };
  const [volumes, freeName] = await Promise.all([
    loadVolumeField(deps, place, { userId: opened.userId, channelId: opened.origin }, job.instanceId),
    suggestFreeName(deps, place, job),
  ]);
  if (!drawsSomething(volumes) && freeName === undefined) return;
  const nameVersion = freeName === undefined ? 0 : 1;
  // The earlier copy and share ticks, drawn again with the rest (their block ids are unchanged).
  const ticked: Pick<ModalState, "copyTo" | "shareWith"> = {
    copyTo: state.copyTo,
    shareWith: state.shareWith,
  };
  await updateModal(
    client,
    { id: view.id, hash: view.hash },
    {
      places: state.places,
      input: { ...readRequestInput(undefined, placeValue(job)), channelId: job.channelId },
      metadata: { origin: opened.origin, nameVersion: 0, autoName: undefined },
      codec: deps.metadata,
    },
    {
      instance: state.instance,
      // A new block id is the only way to replace the name in the field; the old one stays otherwise.
      imageName: freeName ?? state.imageName,
      nameVersion,
      volumes: drawsSomething(volumes) ? volumes : undefined,
      excludedDevices: job.excludedDevices,
      description: state.description,
      tagsText: state.tagsText,
      reboot: state.reboot,
      ...ticked,
    },
    deps.logger,
  );
}

/**
 * A name to offer instead of the job's, when AWS says it is taken: the first free of "(2)", "(3)", "(4)",
 * else the default name (instance name and time). Undefined when the job's name is free, or AWS did not
 * answer within the budget (the submission reports a taken name anyway).
 */
async function suggestFreeName(deps: SlackDeps, place: Place, job: Job): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), deps.budgets.nameCheckMs);
  });
  const search = async (): Promise<string | undefined> => {
    if (!(await deps.images.imageNameTaken(place, job.imageName))) return undefined;
    let candidate = job.imageName;
    for (let i = 0; i < NAME_TRIES; i++) {
      candidate = nextImageName(candidate);
      if (!(await deps.images.imageNameTaken(place, candidate))) return candidate;
    }
    return defaultImageName(job.instanceName, job.instanceId, new Date(deps.clock.now()));
  };
  try {
    const found = await Promise.race([search(), timeout]);
    if (found === "timeout") {
      deps.logger.info({ jobId: job.id }, "image name not checked in time; the form keeps the job's");
      return undefined;
    }
    return found;
  } catch (error) {
    deps.logger.warn({ err: error, jobId: job.id }, "could not check the image name; the form keeps it");
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
