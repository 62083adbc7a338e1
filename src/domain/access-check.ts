/**
 * "Would AWS let me image this instance?" without creating anything: the instance must exist and be in
 * the target's scope, and CreateImage with DryRun must pass under the same scoped session a real request
 * would use. Shared by the modal's button, `/ami check` and the operators' doctor.
 */
import { AwsRefusedError } from "../errors.js";
import type { ImageService, InstanceSummary, Place, Requester } from "./ports.js";

/** States CreateImage accepts. */
const IMAGEABLE_STATES: ReadonlySet<string> = new Set(["running", "stopped"]);

/** Why an instance cannot be imaged (missing, or in a state AWS refuses), or undefined when it can. */
export function instanceProblem(
  instance: InstanceSummary | undefined,
  instanceId: string,
  place: Place,
): string | undefined {
  if (!instance)
    return `Instance ${instanceId} was not found in ${place.target.name} (${place.region}). Check the account, region and id, then run /ami again.`;
  if (!IMAGEABLE_STATES.has(instance.state))
    return `Instance ${instanceId} is ${instance.state}: AWS can image only running or stopped instances.`;
  return undefined;
}

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
    const problem = instanceProblem(instance, instanceId, place);
    if (problem) return { allowed: false, message: problem };
    await images.checkCreateImage(place, requester, {
      jobId: "dry-run",
      instanceId,
      imageName: "ami-bot access check",
      description: undefined,
      noReboot: true,
      tags: [],
      excludedDevices: [],
    });
    const label = instance.name ? `${instance.name} (${instanceId})` : instanceId;
    return {
      allowed: true,
      message: `AWS would allow an image of ${label} in ${where}. Nothing was created.${
        place.target.approval ? " Here an image also needs an approver's approval before it is made." : ""
      }`,
    };
  } catch (error) {
    const why = error instanceof AwsRefusedError ? error.userMessage : "AWS did not answer.";
    return { allowed: false, message: `Not allowed in ${where}: ${why}` };
  }
}
