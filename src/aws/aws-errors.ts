import { AwsRefusedError } from "../errors.js";

interface SdkError {
  name?: string;
  message?: string;
  code?: string;
  $fault?: string;
  $metadata?: { httpStatusCode?: number };
}

/**
 * EC2's answers for an image it does not have (any more): deregistered already, or never made. For a
 * cancel that is the goal reached, not a failure. Malformed ids are not among them: those are our bug.
 */
const IMAGE_GONE: ReadonlySet<string> = new Set(["InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"]);

/** True when EC2 answered that the image does not exist (see IMAGE_GONE). */
export function isImageGone(error: unknown): boolean {
  return IMAGE_GONE.has((error as SdkError | undefined)?.name ?? "");
}

/** Turns an EC2 SDK error into what a person can act on. Already-translated errors pass through. */
export function translateEc2Error(
  error: unknown,
  context: { instanceId?: string; imageName?: string; deniedMessage?: string } = {},
): AwsRefusedError {
  if (error instanceof AwsRefusedError) return error;
  const e = (error ?? {}) as SdkError;
  const name = e.name ?? "";
  const refused = (
    code: ConstructorParameters<typeof AwsRefusedError>[0],
    message: string,
    retryable = false,
  ) => new AwsRefusedError(code, message, retryable, { cause: error });
  switch (name) {
    case "DryRunOperation":
      return refused("dry_run_ok", "AWS would allow this request.");
    case "InvalidAMIName.Duplicate":
      return refused(
        "name_taken",
        `An image named “${context.imageName ?? ""}” already exists in this account and region. Run /ami again with another name.`,
      );
    // Not name_taken: nothing exists under this name, so there is no image of ours to look for.
    case "InvalidAMIName.Malformed":
      return refused(
        "name_malformed",
        "AWS rejected the image name: it must be 3–128 characters, using only letters, digits, spaces and ( ) [ ] . / - ' @ _. Run /ami again with another name.",
      );
    case "InvalidInstanceID.NotFound":
    case "InvalidInstanceID.Malformed":
      return refused(
        "instance_not_found",
        `Instance ${context.instanceId ?? ""} was not found in this account and region. Check the account, region and id, then run /ami again.`,
      );
    case "IncorrectState":
    case "IncorrectInstanceState":
      return refused(
        "instance_state",
        `Instance ${context.instanceId ?? ""} is not in a state AWS can image (it must be running or stopped). Wait for it to settle, then run /ami again.`,
      );
    // A volume to leave out is not (or no longer) attached to the instance.
    case "InvalidBlockDeviceMapping":
      return refused(
        "volumes_invalid",
        `AWS refused the volumes to leave out: they are not all attached to instance ${context.instanceId ?? ""} now. Run /ami again and choose from its volumes as they are.`,
      );
    case "UnauthorizedOperation":
    case "AccessDenied":
    case "AccessDeniedException":
      return refused(
        "access_denied",
        context.deniedMessage ??
          "AWS denied the request: the target role (or ami-bot's session policy) does not allow imaging this instance. If it should, ask the people who run ami-bot to check the role's permissions and opt-in tag.",
      );
    // An account to share with that AWS does not know (closed, mistyped in the settings).
    case "InvalidAMIAttributeItemValue":
    case "InvalidUserID.Malformed":
      return refused(
        "account_unknown",
        "AWS does not know one of the accounts to share with (closed, or mistyped in ami-bot's settings), so the image was not shared. Ask the people who run ami-bot to check the target's shareWith list.",
      );
    case "RequestLimitExceeded":
    case "Throttling":
    case "ThrottlingException":
      return refused(
        "throttled",
        "AWS is throttling requests in this account; ami-bot will keep retrying.",
        true,
      );
    case "RequestExpired":
    case "ExpiredToken":
    case "ExpiredTokenException":
      return refused(
        "credentials_expired",
        "The AWS session expired; ami-bot will retry with fresh credentials.",
        true,
      );
  }
  // A KMS key the role may not use, disabled, or pending deletion (EC2 names these InvalidKMSKey.*, KMS.*).
  if (/kms/i.test(name))
    return refused(
      "kms_key_unusable",
      `AWS could not use the KMS key to encrypt the copy (${name}): the target role may not use it, or it is disabled. Ask the people who run ami-bot to check the key's policy.`,
    );
  // Our own limits (connection, request, the per-call deadline) or a shutdown cut the call short.
  if (name === "TimeoutError" || name === "AbortError" || e.code === "ETIMEDOUT")
    return refused("aws_unavailable", "AWS did not answer in time; ami-bot will retry.", true);
  const status = e.$metadata?.httpStatusCode ?? 0;
  // No HTTP answer at all (reset, DNS, timeout): nothing was refused, so it is worth trying again.
  if (status === 0 && name !== "CredentialsProviderError")
    return refused("aws_unavailable", "AWS could not be reached; ami-bot will retry.", true);
  if (
    status >= 500 ||
    e.$fault === "server" ||
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT"].includes(e.code ?? "") ||
    name === "TimeoutError"
  )
    return refused("aws_unavailable", "AWS did not answer properly; ami-bot will retry.", true);
  return refused("unknown", `AWS refused the request (${name || "unknown error"}).`);
}
