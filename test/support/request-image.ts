/**
 * One /ami request driven through the bot's real endpoint, as a person makes it: the signed slash command,
 * the modal the bot opens, its submission. Resolves once the job's root message is posted and AWS has been
 * asked for the image, with what a test needs to follow the job (its thread, image id and job id).
 */
import type { FakeRequest } from "../fakes/fake-aws.js";
import type { StoredMessage } from "../fakes/fake-slack.js";
import { CHANNEL, eventually, type Harness } from "./bot-harness.js";

export interface RequestedImage {
  /** The job's root message: its ts is the thread_ts of every update. */
  readonly root: StoredMessage;
  /** The CreateImage call the watcher made for the job (failed or not). */
  readonly createImage: FakeRequest;
  /** The job id, as tagged on the image (`ami-bot:job-id`). */
  readonly jobId: string;
  /** The new image's id; undefined when AWS refused to make it. */
  readonly imageId: string | undefined;
}

let views = 0;

/** The thread key a bot message carries in its metadata ("pending", "available", …). */
export function keyOf(m: { metadata?: { event_payload?: Record<string, unknown> } | undefined }): string {
  return String(m.metadata?.event_payload?.key ?? "");
}

/** The value of a tag in a CreateImage request's first TagSpecification. */
function tagOf(request: FakeRequest, key: string): string | undefined {
  for (let i = 1; request.params[`TagSpecification.1.Tag.${i}.Key`] !== undefined; i++)
    if (request.params[`TagSpecification.1.Tag.${i}.Key`] === key)
      return request.params[`TagSpecification.1.Tag.${i}.Value`];
  return undefined;
}

export async function requestImage(
  h: Harness,
  request: { instanceId: string; imageName: string },
): Promise<RequestedImage> {
  const opened = h.slack.callsTo("views.open").length;
  const rootsIn = () => h.slack.messages.filter((m) => !m.threadTs && m.channel === CHANNEL);
  const roots = rootsIn().length;
  const command = await h.command({});
  if (command.status !== 200) throw new Error(`/ami answered ${command.status}`);
  await eventually(() => h.slack.callsTo("views.open").length > opened, 15_000, "views.open");
  // Each submission is its own modal: the bot takes a view id once only.
  const submitted = await h.interaction(
    h.submission(
      { instanceId: request.instanceId, imageName: request.imageName, reboot: "no_reboot" },
      { viewId: `V0VIEW${String(++views).padStart(4, "0")}` },
    ),
  );
  if (submitted.status !== 200) throw new Error(`the submission answered ${submitted.status}`);
  const root = await eventually(() => rootsIn()[roots], 15_000, "root message");
  const createImage = await eventually(
    () => h.aws.calls("CreateImage").find((c) => c.params.Name === request.imageName),
    15_000,
    "CreateImage",
  );
  const jobId = tagOf(createImage, "ami-bot:job-id");
  if (!jobId) throw new Error("CreateImage carried no ami-bot:job-id tag");
  const imageId = [...h.aws.images.values()].find((i) => i.name === request.imageName)?.imageId;
  return { root, createImage, jobId, imageId };
}
