/**
 * The modal's submission. Everything in it is checked again (rules may have changed since the modal opened,
 * and a payload can be forged); errors go back under their field; a valid request is stored as a job
 * before the modal closes, so nothing accepted is lost.
 */
import type { AllMiddlewareArgs, SlackViewMiddlewareArgs, ViewSubmitAction } from "@slack/bolt";
import { allowedPlaces } from "../../domain/access.js";
import { type RequestField, validateImageRequest } from "../../domain/image-request.js";
import { placeValue } from "../blocks/modal.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { findElement, readRequestInput, type StateValues } from "../form-values.js";
import { ACTION, BLOCK } from "../ids.js";
import { decodeMetadata } from "../private-metadata.js";

type Args = SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs;

const FIELD_ACTION: Record<RequestField, string> = {
  where: ACTION.where,
  instance: ACTION.instance,
  image_name: ACTION.imageName,
  description: ACTION.description,
  reboot: ACTION.reboot,
  tags: ACTION.tags,
  channel: ACTION.channel,
};

const FIELD_BLOCK: Record<RequestField, string> = {
  where: BLOCK.where,
  instance: BLOCK.instance,
  image_name: BLOCK.imageName,
  description: BLOCK.description,
  reboot: BLOCK.reboot,
  tags: BLOCK.tags,
  channel: BLOCK.channel,
};

export function createImageSubmission(deps: SlackDeps) {
  return async ({ body, view, ack }: Args): Promise<void> => {
    const userId = body.user.id;
    const values = view.state.values as StateValues;
    const metadata = decodeMetadata(view.private_metadata);
    const origin = metadata?.origin;
    const who = await principalOf(deps, userId, origin);
    const places = placesFor(deps, who);
    const input = readRequestInput(
      values,
      places.length === 1 && places[0] ? placeValue(places[0]) : undefined,
    );
    const result = validateImageRequest(
      input,
      allowedPlaces(deps.config.targets, who),
      new Date(deps.clock.now()),
    );

    if (!result.ok) {
      const errors: Record<string, string> = {};
      for (const [field, message] of Object.entries(result.errors) as [RequestField, string][]) {
        // Errors are keyed by the block the field is really in (the name's block id is versioned).
        const blockId = findElement(values, FIELD_ACTION[field])?.blockId ?? FIELD_BLOCK[field];
        errors[blockId] = message;
      }
      // A field not on the form (the place, when there is only one) has nowhere to show: use the instance's.
      if (errors[BLOCK.where] && !findElement(values, ACTION.where)) {
        errors[BLOCK.instance] = errors[BLOCK.instance] ?? (errors[BLOCK.where] as string);
        delete errors[BLOCK.where];
      }
      if (result.errors.where)
        audit(deps, { user: userId, action: "submit", allowed: false, reason: result.errors.where });
      await ack({ response_action: "errors", errors });
      return;
    }

    const request = result.request;
    const target = deps.config.targets.find((t) => t.name === request.targetName);
    if (!target) throw new Error("validated target vanished from config");
    const jobId = deps.newJobId();
    let inserted: boolean;
    try {
      inserted = deps.store.insert(
        {
          id: jobId,
          // One job per view: a submission delivered twice, or a double click, creates one image.
          idempotencyKey: `view:${view.id}`,
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
          channelId: request.channelId,
        },
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
    deps.onStep("job_stored");
    audit(deps, {
      user: userId,
      action: "submit",
      allowed: true,
      reason: inserted ? "job stored" : "duplicate submission of the same form",
      target: target.name,
      region: request.region,
      jobId,
    });
    await ack();
    deps.onStep("submission_acked");
    if (inserted) {
      deps.logger.info(
        { jobId, user: userId, target: target.name, region: request.region, instance: request.instanceId },
        "job accepted",
      );
      deps.onJobAccepted();
    }
  };
}
