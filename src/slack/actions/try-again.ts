/**
 * "Try again" under a failed, refused or timed-out job's final reply: the /ami form, filled in with that
 * job's values. The button's value (a job id) is untrusted: the job must exist and the clicker must be
 * allowed, now, to use its target and region, as for every other action. The form opens before any AWS
 * call (the trigger_id lives 3 seconds); its submission is an ordinary /ami submission, a new job.
 */
import type { AllMiddlewareArgs, BlockAction, ButtonAction, SlackActionMiddlewareArgs } from "@slack/bolt";
import { allowedPlaces, deniedMessage, placeKey } from "../../domain/access.js";
import type { Job } from "../../domain/job.js";
import type { Target } from "../../domain/target.js";
import { copyOffer, createImageModal, type ModalState, placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { showRetriedJobExtras } from "../views/retry-form.js";
import { clicked, findJob, jobIdOf, tellClicker } from "./job-click.js";

type Args = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

export const UNKNOWN_JOB =
  "That image request no longer exists, so it cannot be tried again. Type `/ami` to start a new one.";
export const STILL_RUNNING = "This image is still being made; see the thread.";

// Slack's own limit on a plain_text_input's initial_value.
const MAX_INITIAL_VALUE = 3000;

export function createTryAgain(deps: SlackDeps) {
  return async ({ ack, body, action, client }: Args): Promise<void> => {
    await ack();
    const userId = body.user.id;
    const job = await findJob(deps, jobIdOf(action));
    const channelId = body.channel?.id ?? job?.rootChannelId ?? job?.channelId;
    const where = { ...clicked(body), channelId };
    const tell = (text: string) => tellClicker(deps, client, where, text);
    if (!job) {
      audit(deps, { user: userId, action: "try_again", allowed: false, reason: "unknown job" });
      await tell(UNKNOWN_JOB);
      return;
    }
    const who = await principalOf(deps, userId, channelId);
    const target = deps.config.targets.find((t) => t.name === job.targetName);
    // A target renamed onto another role is another account: the job's place is gone.
    const allowed =
      target !== undefined &&
      target.roleArn === job.roleArn &&
      allowedPlaces(deps.config.targets, who).has(placeKey(job.targetName, job.region));
    audit(deps, {
      user: userId,
      action: "try_again",
      allowed,
      reason: allowed ? "place allowed" : "place not allowed for this user",
      target: job.targetName,
      region: job.region,
      jobId: job.id,
    });
    if (!allowed || !target) {
      await tell(deniedMessage(who));
      return;
    }
    const refusal = stateRefusal(job);
    if (refusal) {
      await tell(refusal);
      return;
    }
    const places = placesFor(deps, who);
    const state: ModalState = {
      places,
      selectedPlace: placeValue(job),
      instance: { id: job.instanceId, label: instanceLabel(job) },
      imageName: job.imageName,
      nameVersion: 0,
      channelId: job.channelId,
      description: job.description,
      tagsText: tagLines(job),
      reboot: target.reboot === "ask" && !job.noReboot,
      ...earlierChoices(job, target),
    };
    // The origin is where the button was clicked: the submission decides access from there, as checked here.
    const origin = channelId ?? job.channelId;
    const view = createImageModal(
      state,
      deps.metadata.encode({ origin, nameVersion: 0, autoName: undefined }),
    );
    const opened = await client.views.open({ trigger_id: body.trigger_id, view });
    // The form is open: now AWS may be asked, for the instance's volumes and whether the name is free.
    await showRetriedJobExtras(deps, client, opened.view, { job, target, userId, origin, state });
  };
}

/** What a click on an old button is told when the job is not one to try again. */
function stateRefusal(job: Job): string | undefined {
  switch (job.state) {
    case "awaiting_approval":
    case "queued":
    case "pending":
    case "cancelling":
      return STILL_RUNNING;
    case "cancelled":
      return "That image request was cancelled. Type `/ami` to start a new one.";
    case "denied":
      return "That image request was denied. Type `/ami` to ask again, with the approver's reason in mind.";
    case "finishing":
    case "available":
      return `That image was made: \`${job.imageId ?? ""}\` is available. Type \`/ami\` to make another.`;
    case "failed":
    case "refused":
    case "timed_out":
    case "expired":
      return undefined;
  }
}

/**
 * The copy regions and accounts the job had ticked, those its target still offers from the job's region
 * (the form shows only those; anything no longer offered is left out, never ticked by surprise).
 */
function earlierChoices(job: Job, target: Target): Pick<ModalState, "copyTo" | "shareWith"> {
  const regions = new Set(copyOffer(target.after.copyTo, job.region).map((d) => d.region));
  const accounts = new Set(target.after.shareWith);
  return {
    copyTo: (job.after?.copies ?? []).map((c) => c.region).filter((r) => regions.has(r)),
    shareWith: (job.after?.shareWith ?? []).filter((a) => accounts.has(a)),
  };
}

/** "web-1 (i-0abc…)" as the picker writes it (the form reads the name back from it), within 75 characters. */
function instanceLabel(job: Job): string {
  const tail = ` (${job.instanceId})`;
  const name = job.instanceName?.trim().slice(0, 75 - tail.length);
  return name ? `${name}${tail}` : job.instanceId;
}

/** The tags as key=value lines, as many whole lines as the field takes. */
function tagLines(job: Job): string {
  const lines: string[] = [];
  let length = 0;
  for (const tag of job.tags) {
    const line = `${tag.key}=${tag.value}`;
    if (length + line.length + 1 > MAX_INITIAL_VALUE) break;
    lines.push(line);
    length += line.length + 1;
  }
  return lines.join("\n");
}
