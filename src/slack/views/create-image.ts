/**
 * The modal's submission. Everything in it is checked again (rules may have changed since the modal opened,
 * and a payload can be forged); errors go back under their field; a valid request is stored as a job
 * before the modal closes, so nothing accepted is lost.
 */
import { createHash } from "node:crypto";
import type { AllMiddlewareArgs, SlackViewMiddlewareArgs, ViewSubmitAction, webApi } from "@slack/bolt";
import { allowedPlaces, deniedMessage, mayPostTo } from "../../domain/access.js";
import { instanceProblem } from "../../domain/access-check.js";
import {
  defaultImageName,
  type ImageRequest,
  type RequestField,
  validateImageRequest,
} from "../../domain/image-request.js";
import type { Job } from "../../domain/job.js";
import type { Admission, InstanceDetails, InstanceSummary, Place } from "../../domain/ports.js";
import type { Target } from "../../domain/target.js";
import { checkDeviceNames, excludedDevicesProblem } from "../../domain/volumes.js";
import { AwsRefusedError } from "../../errors.js";
import { copyOffer, placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import {
  type AfterChoices,
  findElement,
  readAfterChoices,
  readRequestInput,
  readVolumeChoice,
  type StateValues,
  type VolumeChoice,
} from "../form-values.js";
import { ACTION, BLOCK } from "../ids.js";
import { threadPermalinks } from "../thread-links.js";

type Args = SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs;

/** The request's fields, and the volume choice (checked here, against AWS, not by the domain's form rules). */
type FormField = RequestField | "volumes";

const FIELD_ACTION: Record<FormField, string> = {
  where: ACTION.where,
  instance: ACTION.instance,
  image_name: ACTION.imageName,
  description: ACTION.description,
  reboot: ACTION.reboot,
  volumes: ACTION.volumes,
  tags: ACTION.tags,
  channel: ACTION.channel,
};

const FIELD_BLOCK: Record<FormField, string> = {
  where: BLOCK.where,
  instance: BLOCK.instance,
  image_name: BLOCK.imageName,
  description: BLOCK.description,
  reboot: BLOCK.reboot,
  volumes: BLOCK.volumes,
  tags: BLOCK.tags,
  channel: BLOCK.channel,
};

export function createImageSubmission(deps: SlackDeps) {
  return async ({ body, view, ack, client }: Args): Promise<void> => {
    const userId = body.user.id;
    const values = view.state.values as StateValues;
    const metadata = deps.metadata.decode(view.private_metadata);
    const origin = metadata?.origin;
    const who = await principalOf(deps, userId, origin);
    const places = placesFor(deps, who);
    const input = readRequestInput(
      values,
      places.length === 1 && places[0] ? placeValue(places[0]) : undefined,
    );
    const allowedHere = allowedPlaces(deps.config.targets, who);
    const result = validateImageRequest(input, allowedHere, new Date(deps.clock.now()), (name) =>
      deps.config.targets.find((t) => t.name === name),
    );

    const target = result.ok
      ? deps.config.targets.find((t) => t.name === result.request.targetName)
      : undefined;
    const problems: Partial<Record<FormField, string>> = result.ok ? {} : { ...result.errors };
    const volumeChoice = readVolumeChoice(values, view.blocks);
    const excludedDevices = volumeChoice?.excluded ?? [];
    const choiceProblem = volumeChoice && volumeChoiceProblem(volumeChoice, input.instanceId);
    if (choiceProblem) problems.volumes = choiceProblem;
    // Someone no rule allows is told so, and whom to ask, whatever the form claims.
    const placeClaimed = input.targetName !== undefined && input.region !== undefined;
    const placeAllowed = placeClaimed && allowedHere.has(`${input.targetName}|${input.region}`);
    if (places.length === 0 || (placeClaimed && !placeAllowed)) problems.where = deniedMessage(who);
    // Copies and sharing: only what the chosen place offers, checked before AWS is asked anything.
    const choices = afterChoices(
      values,
      placeAllowed ? deps.config.targets.find((t) => t.name === input.targetName) : undefined,
      input.region,
    );
    const choicesRefused = Object.keys(choices.errors).length > 0;
    let instance: InstanceDetails | undefined;
    if (result.ok && target) {
      const request = result.request;
      if (request.channelId.startsWith("D") && request.channelId !== origin)
        problems.channel =
          "Choose a channel for the updates: ami-bot can post only in channels, or in the direct message you typed /ami in.";
      else if (!mayPostTo(target, who, request.channelId))
        problems.channel =
          "You may use ami-bot here because of this channel's rule, so the updates must stay in a channel that rule lists. Choose one of those.";
      // Refused choices are reported without asking AWS about the instance: the form goes back as it is.
      else if (!choicesRefused) {
        const checked = await precheckInstance(
          deps,
          { target, region: request.region },
          userId,
          origin ?? request.channelId,
          request.instanceId,
        );
        if (checked.problem) problems.instance = checked.problem;
        instance = checked.instance;
        // Every device to leave out must be one of this instance's volumes, and not its root, as AWS says
        // now. When AWS did not answer in time, the watcher checks the same before CreateImage.
        const volumesProblem =
          instance && excludedDevices.length > 0 && !problems.volumes
            ? excludedDevicesProblem(excludedDevices, instance)
            : undefined;
        if (volumesProblem) problems.volumes = volumesProblem;
      }
    }

    if (!result.ok || !target || choicesRefused || Object.keys(problems).length > 0) {
      // The choices' errors are keyed by their blocks already (several hold accounts).
      const errors: Record<string, string> = { ...choices.errors };
      for (const [field, message] of Object.entries(problems) as [FormField, string][]) {
        // Errors are keyed by the block the field is really in (the name's block id is versioned).
        const blockId = findElement(values, FIELD_ACTION[field])?.blockId ?? FIELD_BLOCK[field];
        errors[blockId] = message;
      }
      // A field not on the form (the place, when there is only one) has nowhere to show: use the instance's.
      if (errors[BLOCK.where] && !findElement(values, ACTION.where)) {
        errors[BLOCK.instance] = errors[BLOCK.instance] ?? (errors[BLOCK.where] as string);
        delete errors[BLOCK.where];
      }
      if (problems.where || problems.channel)
        audit(deps, {
          user: userId,
          action: "submit",
          allowed: false,
          reason: problems.where
            ? "place not allowed for this user"
            : "updates channel not allowed by a channel rule",
          ...(input.targetName ? { target: input.targetName } : {}),
        });
      else if (choicesRefused)
        audit(deps, {
          user: userId,
          action: "submit",
          allowed: false,
          reason: "copy or share choices the target does not offer",
          ...(input.targetName ? { target: input.targetName } : {}),
          ...(input.region ? { region: input.region } : {}),
        });
      else if (result.ok && target)
        audit(deps, {
          user: userId,
          action: "submit",
          allowed: true,
          reason: `rules allow it, but the instance check refused: ${problems.instance ?? problems.volumes ?? "invalid form"}`,
          target: target.name,
          region: result.request.region,
        });
      await ack({ response_action: "errors", errors });
      return;
    }

    const request = withAwsName(result.request, instance, new Date(deps.clock.now()));
    const jobId = deps.newJobId();
    let admission: Admission;
    try {
      admission = await deps.store.admit(
        {
          id: jobId,
          // One job per view: a submission delivered twice, or a double click, creates one image.
          idempotencyKey: `view:${view.id}`,
          requestHash: requestHash(request, excludedDevices, choices),
          requestedBy: userId,
          originChannelId: origin ?? request.channelId,
          targetName: target.name,
          roleArn: target.roleArn,
          region: request.region,
          instanceId: request.instanceId,
          instanceName: request.instanceName,
          imageName: request.imageName,
          description: request.description,
          noReboot: request.noReboot,
          tags: request.tags,
          excludedDevices,
          channelId: request.channelId,
          copyTo: choices.copyTo,
          shareWith: choices.shareWith,
          // The two-person rule: the job waits, and nothing is asked of AWS, until an approver decides.
          ...(target.approval && {
            approvalExpiresAt: deps.clock.now() + target.approval.expiresAfterMs,
            // The requester may be an approver too, but never of their own job: they are not asked.
            approverDms: target.approval.approvers.users.filter((u) => u !== userId),
          }),
        },
        { jobsPerHour: target.jobsPerHour },
        deps.clock.now(),
      );
    } catch (error) {
      deps.logger.error({ err: error, user: userId }, "could not store the job");
      await ack({
        response_action: "errors",
        errors: {
          [BLOCK.instance]:
            "ami-bot could not save your request (database error). Nothing was created; try again in a minute.",
        },
      });
      return;
    }
    const refusal = await admissionRefusal(admission, client, deps);
    if (refusal) {
      audit(deps, {
        user: userId,
        action: "submit",
        allowed: false,
        reason: `refused by a guardrail: ${admission.status}${admission.status === "duplicate" ? " with other values" : ""}`,
        target: target.name,
        region: request.region,
      });
      const blockId = findElement(values, ACTION.instance)?.blockId ?? BLOCK.instance;
      await ack({ response_action: "errors", errors: { [blockId]: refusal } });
      return;
    }
    const inserted = admission.status === "accepted";
    deps.onStep("job_stored");
    audit(deps, {
      user: userId,
      action: "submit",
      allowed: true,
      reason: inserted
        ? target.approval
          ? "job stored, awaiting approval"
          : "job stored"
        : "duplicate submission of the same form (no new job)",
      target: target.name,
      region: request.region,
      ...(inserted ? { jobId } : {}),
    });
    await ack();
    deps.onStep("submission_acked");
    if (inserted) {
      deps.logger.info(
        {
          jobId,
          user: userId,
          target: target.name,
          region: request.region,
          instance: request.instanceId,
          ...(choices.copyTo.length > 0 && { copyTo: choices.copyTo }),
          ...(choices.shareWith.length > 0 && { shareWith: choices.shareWith }),
        },
        "job accepted",
      );
      deps.onJobAccepted();
    }
  };
}

/**
 * What is wrong with the volumes to leave out before AWS is asked: a name that cannot be a device, or a list
 * drawn for another instance than the one chosen (its redraw lost), whose unticked boxes were not meant for
 * this one. Nothing unticked is never wrong: the whole instance is imaged.
 */
function volumeChoiceProblem(choice: VolumeChoice, instanceId: string | undefined): string | undefined {
  if (choice.excluded.length === 0) return undefined;
  const names = checkDeviceNames(choice.excluded);
  if (names) return names;
  if (instanceId !== undefined && choice.instanceId !== instanceId)
    return "These volumes were listed for another instance. Pick the instance again to list its volumes.";
  return undefined;
}

/**
 * The request with the instance's Name tag as AWS reports it (never the picker's option text, which the
 * client sends), and a default image name made from it when none was typed.
 */
function withAwsName(request: ImageRequest, instance: InstanceSummary | undefined, now: Date): ImageRequest {
  const name = instance?.name;
  return {
    ...request,
    instanceName: name,
    imageName: request.imageNameDefaulted
      ? defaultImageName(name, request.instanceId, now)
      : request.imageName,
  };
}

/**
 * What was asked, as a hash: a second submission of one view must ask for the same thing. A default name
 * counts as "none typed" (it carries the minute), so a genuine redelivery a minute later still matches.
 */
function requestHash(
  r: ImageRequest,
  excludedDevices: readonly string[],
  choices: Pick<AfterChoices, "copyTo" | "shareWith">,
): string {
  const asked = {
    target: r.targetName,
    region: r.region,
    instance: r.instanceId,
    name: r.imageNameDefaulted ? "" : r.imageName,
    description: r.description ?? "",
    noReboot: r.noReboot,
    tags: r.tags,
    channel: r.channelId,
    // Only when some are left out, so the hash of a whole-instance request is what it always was.
    ...(excludedDevices.length > 0 && { excluded: [...excludedDevices].sort() }),
    // Likewise only when ticked: a replay of the view with other ticks is another request.
    ...(choices.copyTo.length > 0 && { copyTo: [...choices.copyTo].sort() }),
    ...(choices.shareWith.length > 0 && { shareWith: [...choices.shareWith].sort() }),
  };
  return createHash("sha256").update(JSON.stringify(asked)).digest("hex");
}

/**
 * The copy regions and accounts ticked, against what the chosen place's target offers now (the settings may
 * have changed since the form opened). Without a place the person may use, nothing is chosen: the place's
 * own error says why.
 */
function afterChoices(
  values: StateValues,
  target: Target | undefined,
  region: string | undefined,
): AfterChoices {
  if (!target || region === undefined) return { copyTo: [], shareWith: [], errors: {} };
  return readAfterChoices(values, {
    place: placeValue({ targetName: target.name, region }),
    region,
    copyTo: copyOffer(target.after.copyTo, region).map((d) => d.region),
    shareWith: target.after.shareWith,
  });
}

/** The words under the form's instance field when a guardrail refuses the job, or undefined when accepted. */
async function admissionRefusal(
  admission: Admission,
  client: webApi.WebClient,
  deps: SlackDeps,
): Promise<string | undefined> {
  switch (admission.status) {
    case "accepted":
      return undefined;
    case "duplicate":
      return admission.sameRequest
        ? undefined
        : "This form was already sent with other values, and that request stands. Close the form and type /ami again to ask for another image.";
    case "instance_busy": {
      const job = admission.job;
      const link = await threadLink(client, job, deps);
      return (
        `${job.instanceId} already has an image in progress (“${job.imageName}”): ` +
        `${link}. You can ask again once it has finished.`
      );
    }
    case "rate_limited": {
      const at = new Date(admission.retryAt);
      const minutes = Math.max(1, Math.ceil((admission.retryAt - deps.clock.now()) / 60_000));
      return (
        `You have started ${admission.limit} images in this account in the last hour, the most allowed. ` +
        `You can start the next at ${at.toISOString().slice(11, 16)} UTC (in ${minutes} min).`
      );
    }
  }
}

/** A link to the job's thread (chat.getPermalink), or where it will appear when its root is not posted yet. */
async function threadLink(client: webApi.WebClient, job: Job, deps: SlackDeps): Promise<string> {
  const link = (await threadPermalinks(client, [job], deps.logger, deps.budgets.permalinkMs)).get(job.id);
  return link
    ? `see its thread: ${link}`
    : `its updates are in the thread about “${job.imageName}” in the channel it was asked for`;
}

/**
 * Checks the instance while the form is still open, so a missing, out-of-scope or terminated instance is
 * an error under the field rather than a refusal in the channel. Read-only, under the person's scoped session.
 * If AWS is slow (past the instance-check budget) or failing, the request is accepted and the watcher
 * checks again before CreateImage.
 */
async function precheckInstance(
  deps: SlackDeps,
  place: Place,
  userId: string,
  channelId: string,
  instanceId: string,
): Promise<{ problem?: string; instance?: InstanceDetails }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), deps.budgets.instanceCheckMs);
  });
  try {
    const found = await Promise.race([
      deps.images.describeInstance(place, { userId, channelId }, instanceId),
      timeout,
    ]);
    if (found === "timeout") return {};
    const problem = instanceProblem(found, instanceId, place);
    return problem ? { problem } : found ? { instance: found } : {};
  } catch (error) {
    if (error instanceof AwsRefusedError && !error.retryable) return { problem: error.userMessage };
    deps.logger.warn({ err: error, user: userId }, "instance pre-check failed; the watcher will check again");
    return {};
  } finally {
    clearTimeout(timer);
  }
}
