/** Every callback_id, block_id and action_id, defined once. */
export const COMMAND = "/ami";
export const CREATE_VIEW = "ami_create";
/** The small form asking why a job is denied. */
export const DENY_VIEW = "ami_deny";

export const BLOCK = {
  where: "where",
  instance: "instance",
  /** Versioned: changing the block id is the only way to replace a value the user has not typed. */
  imageName: "image_name",
  description: "description",
  reboot: "reboot",
  /** Suffixed with the instance id (`volumes.i-…`): the list belongs to that instance, and a new one starts fresh. */
  volumes: "volumes",
  /** Says the volumes could not be listed, so the whole instance is imaged. */
  volumesNote: "volumes_note",
  tags: "tags",
  /**
   * The steps after the image, suffixed with the place (`copy_to.prod|eu-west-1`): each place offers its own,
   * and choosing another starts them unticked. Accounts come ten to a block (Slack's limit on checkboxes):
   * `share_with.prod|eu-west-1`, then `share_with.prod|eu-west-1.2`.
   */
  copyTo: "copy_to",
  shareWith: "share_with",
  channel: "channel",
  check: "check",
  checkResult: "check_result",
  /** The "Try again" button under a failed, refused or timed-out job's final reply. */
  tryAgain: "try_again",
  /** In the form: this target's jobs wait for an approval. */
  approvalNote: "approval_note",
  /** Approve / Deny / Cancel under a job's root message (and in an approver's DM and Home tab). */
  jobActions: "job_actions",
  denyReason: "deny_reason",
  /** The Home tab's "Create image" button. */
  homeCreate: "home_create",
} as const;

export const ACTION = {
  where: "where_select",
  instance: "instance_select",
  imageName: "image_name_input",
  description: "description_input",
  reboot: "reboot_choice",
  volumes: "volumes_choice",
  tags: "tags_input",
  copyTo: "copy_to_choice",
  shareWith: "share_with_choice",
  channel: "channel_select",
  check: "check_access",
  /** Its value is the job id: untrusted, looked up and checked like every other action. */
  tryAgain: "try_again",
  /** Values are job ids, untrusted like tryAgain's: each click is checked against the job and the rules now. */
  approve: "job_approve",
  deny: "job_deny",
  cancel: "job_cancel",
  denyReason: "deny_reason_input",
  homeCreate: "home_create_image",
} as const;

/** Slack message metadata type: lets the bot find its own posts after a crash. */
export const METADATA_EVENT = "ami_bot_update";
