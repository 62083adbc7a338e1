/**
 * "Would AWS let me image this instance?" without creating anything: the instance must exist and be in
 * the target's scope, and CreateImage with DryRun must pass under the same scoped session a real request
 * would use. Shared by the modal's button, `/ami check` and the operators' doctor.
 */
import { AwsRefusedError } from "../errors.js";
import type { ImageService, Place, Requester } from "./ports.js";

export interface AccessCheckResult {
  readonly allowed: boolean;
  /** Plain words for the person who asked. */
  readonly message: string;
}

export async function checkImageAccess(
  images: ImageService,
  place: Place,
  requester: Requester,
  instanceId: string,
): Promise<AccessCheckResult> {
  const where = `${place.target.name} (${place.target.accountId}) · ${place.region}`;
  try {
    const instance = await images.describeInstance(place, requester, instanceId);
    if (!instance) return { allowed: false, message: `Instance ${instanceId} was not found in ${where}.` };
    await images.checkCreateImage(place, requester, {
      jobId: "dry-run",
      instanceId,
      imageName: "ami-bot access check",
      description: undefined,
      noReboot: true,
      tags: [],
    });
    const label = instance.name ? `${instance.name} (${instanceId})` : instanceId;
    return {
      allowed: true,
      message: `AWS would allow an image of ${label} in ${where}. Nothing was created.`,
    };
  } catch (error) {
    const why = error instanceof AwsRefusedError ? error.userMessage : "AWS did not answer.";
    return { allowed: false, message: `Not allowed in ${where}: ${why}` };
  }
}
