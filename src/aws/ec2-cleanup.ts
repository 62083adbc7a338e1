/**
 * The keep rule's EC2 calls: listing the images ami-bot made, asking which a launch template uses, and
 * deregistering one with its snapshots. Reads run under a DescribeImages/DescribeLaunchTemplateVersions-only
 * session per place (reused, like the watcher's); each DeregisterImage under a session of its own whose
 * policy names that one image and its snapshots, each only while it carries the job-id tag.
 */
import {
  DeregisterImageCommand,
  type DeregisterImageCommandOutput,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  type EC2Client,
  type Image,
} from "@aws-sdk/client-ec2";
import { type BotImage, INSTANCE_ID_TAG, JOB_ID_TAG } from "../domain/keep-rule.js";
import type { CleanupOutcome, ImageCleanup, Place, Requester } from "../domain/ports.js";
import { AwsRefusedError } from "../errors.js";
import { isImageGone, translateEc2Error } from "./aws-errors.js";
import { SessionCache } from "./scoped-credentials.js";
import { BAD_SESSION, chunk, type Ec2Options, placeKey, policyScope, ScopedEc2 } from "./scoped-ec2.js";
import { cleanupImagePolicy, cleanupReadPolicy } from "./session-policy.js";

/** Built like Ec2Images, from the same options; `watcherIdentity` names the reads' sessions here too. */
export type Ec2CleanupOptions = Ec2Options;

/** EC2's largest DescribeImages page. */
const IMAGE_PAGE = 1000;
/**
 * At most this many pages of images per place (100,000). Stopping early only keeps more: an image is
 * beyond the newest N only when N newer ones were listed, and age is judged image by image.
 */
const IMAGE_MAX_PAGES = 100;
/** EC2's limits: 200 values in one filter, 200 versions a page. */
const FILTER_CHUNK = 200;
const TEMPLATE_PAGE = 200;
const TEMPLATE_MAX_PAGES = 100;
const SESSION_CACHE_LIMITS = { maxEntries: 100, idleMs: 10 * 60_000 };

/** The protection flag reads `disabled` when off; any other value (on, or in its cooldown) protects. */
function isProtected(value: string | undefined): boolean {
  return value !== undefined && value !== "" && value !== "disabled";
}

export function toBotImage(image: Image, region: string): BotImage | undefined {
  if (!image.ImageId) return undefined;
  const tag = (key: string) => image.Tags?.find((t) => t.Key === key)?.Value;
  const created = image.CreationDate ? Date.parse(image.CreationDate) : Number.NaN;
  return {
    imageId: image.ImageId,
    region,
    name: image.Name,
    createdAt: Number.isFinite(created) ? created : undefined,
    instanceId: tag(INSTANCE_ID_TAG) || image.SourceInstanceId || undefined,
    jobId: tag(JOB_ID_TAG) || undefined,
    state: image.State ?? "unknown",
    protected: isProtected(image.DeregistrationProtection),
    snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) =>
      m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
    ),
  };
}

export class Ec2Cleanup implements ImageCleanup {
  private readonly ec2: ScopedEc2;
  private readonly identity: string;
  private readonly readClients: SessionCache<EC2Client>;

  constructor(options: Ec2CleanupOptions = {}) {
    this.ec2 = new ScopedEc2(options);
    // Not the daily removals' ami-bot-keep-rule: the target role's BotReadersNeverDelete Deny still covers
    // this name, so a read session can never delete, even with AllowCleanup on.
    this.identity = options.watcherIdentity ?? "ami-bot-cleanup";
    const clock = options.clock ?? { now: () => Date.now() };
    this.readClients = new SessionCache({ ...SESSION_CACHE_LIMITS, now: () => clock.now() });
  }

  /** Ends every call in flight (they fail as "did not answer in time") and refuses new ones. */
  close(): void {
    this.ec2.close();
  }

  private readClient(place: Place): EC2Client {
    return this.readClients.get(placeKey(place), () =>
      this.ec2.client(
        place,
        { userId: this.identity, channelId: "none" },
        cleanupReadPolicy(policyScope(place)),
      ),
    );
  }

  private readError(place: Place, error: unknown): AwsRefusedError {
    const translated = translateEc2Error(error, {
      deniedMessage: `AWS denied ami-bot's read of images or launch templates in ${place.region}: the target role must allow ec2:DescribeImages and ec2:DescribeLaunchTemplateVersions.`,
    });
    if (BAD_SESSION.has(translated.code)) this.readClients.delete(placeKey(place));
    return translated;
  }

  /** DescribeImages, ours only, by the job-id tag: every page, up to IMAGE_MAX_PAGES. */
  async listBotImages(place: Place): Promise<BotImage[]> {
    const client = this.readClient(place);
    const found: BotImage[] = [];
    try {
      let nextToken: string | undefined;
      for (let page = 0; page < IMAGE_MAX_PAGES; page++) {
        const out = await client.send(
          new DescribeImagesCommand({
            Owners: ["self"],
            Filters: [{ Name: "tag-key", Values: [JOB_ID_TAG] }],
            MaxResults: IMAGE_PAGE,
            ...(nextToken && { NextToken: nextToken }),
          }),
          this.ec2.call(),
        );
        for (const image of out.Images ?? []) {
          const bot = toBotImage(image, place.region);
          if (bot) found.push(bot);
        }
        nextToken = out.NextToken;
        if (!nextToken) break;
      }
    } catch (error) {
      throw this.readError(place, error);
    }
    return found;
  }

  /**
   * DescribeLaunchTemplateVersions over every template's $Latest and $Default version, filtered by image
   * id, 200 ids a call. A template naming its image through an SSM parameter is not seen.
   */
  async inLaunchTemplates(place: Place, imageIds: readonly string[]): Promise<Set<string>> {
    const wanted = new Set(imageIds);
    const used = new Set<string>();
    if (wanted.size === 0) return used;
    const client = this.readClient(place);
    try {
      for (const ids of chunk([...wanted], FILTER_CHUNK)) {
        let nextToken: string | undefined;
        for (let page = 0; page < TEMPLATE_MAX_PAGES; page++) {
          const out = await client.send(
            new DescribeLaunchTemplateVersionsCommand({
              Versions: ["$Latest", "$Default"],
              Filters: [{ Name: "image-id", Values: ids }],
              MaxResults: TEMPLATE_PAGE,
              ...(nextToken && { NextToken: nextToken }),
            }),
            this.ec2.call(),
          );
          for (const version of out.LaunchTemplateVersions ?? []) {
            const id = version.LaunchTemplateData?.ImageId;
            if (id && wanted.has(id)) used.add(id);
          }
          nextToken = out.NextToken;
          if (!nextToken) break;
        }
      }
    } catch (error) {
      throw this.readError(place, error);
    }
    return used;
  }

  /**
   * As Ec2Images.deregisterImage for a cancel: a fresh session, never cached, whose policy allows exactly
   * this image and exactly these snapshots (the image's, as listed), each while it carries the job-id tag.
   * An image AWS no longer has counts as done; snapshots AWS kept (one not listed, say) are reported, not
   * thrown: the image is gone either way.
   */
  async deregister(
    place: Place,
    requester: Requester,
    imageId: string,
    snapshotIds: readonly string[],
  ): Promise<CleanupOutcome> {
    const client = this.ec2.client(
      place,
      requester,
      cleanupImagePolicy(policyScope(place), imageId, snapshotIds),
    );
    let out: DeregisterImageCommandOutput;
    try {
      out = await client.send(
        new DeregisterImageCommand({ ImageId: imageId, DeleteAssociatedSnapshots: true }),
        this.ec2.call(),
      );
    } catch (error) {
      if (isImageGone(error)) return { notFound: true, snapshotsLeft: [] };
      const translated = translateEc2Error(error, {
        deniedMessage: `AWS denied deregistering ${imageId}: the target role must allow ec2:DeregisterImage and ec2:DeleteSnapshot on what ami-bot made (tagged ${JOB_ID_TAG}).`,
      });
      // A refusal ami-bot has no words for (protection turned on since the listing, say): AWS's own say.
      const said = (error as { message?: string } | undefined)?.message;
      if (translated.code === "unknown" && said)
        throw new AwsRefusedError(
          "unknown",
          `${translated.userMessage.replace(/\.$/, "")}: “${said.slice(0, 300)}”.`,
          false,
          { cause: error },
        );
      throw translated;
    }
    // "skipped": another image still uses the snapshot, so keeping it is right.
    const snapshotsLeft = (out.DeleteSnapshotResults ?? [])
      .filter((r) => r.ReturnCode !== "success" && r.ReturnCode !== "skipped")
      .map((r) => ({ snapshotId: r.SnapshotId ?? "?", code: r.ReturnCode ?? "unknown" }));
    return { notFound: false, snapshotsLeft };
  }
}
