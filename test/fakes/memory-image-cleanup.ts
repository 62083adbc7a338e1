/** An in-memory ImageCleanup: images per region, launch templates' images, and failures on demand. */
import type { BotImage } from "../../src/domain/keep-rule.js";
import type { CleanupOutcome, ImageCleanup, Place, Requester } from "../../src/domain/ports.js";
import { AwsRefusedError } from "../../src/errors.js";

export class MemoryImageCleanup implements ImageCleanup {
  readonly images = new Map<string, BotImage>();
  /** Image ids a launch template uses. */
  readonly inTemplates = new Set<string>();
  readonly deregistered: { region: string; imageId: string; requester: Requester }[] = [];
  /** The snapshot ids each deregister call was given (the ones its session may delete), by image id. */
  readonly snapshotIdsGiven = new Map<string, readonly string[]>();
  readonly calls: string[] = [];
  /** Regions whose listing fails, with the error. */
  readonly listFails = new Map<string, Error>();
  /** Regions whose launch template check fails. */
  readonly templateFails = new Map<string, Error>();
  /** Images whose DeregisterImage fails. */
  readonly deregisterFails = new Map<string, Error>();
  /** Snapshots AWS keeps when this image is deregistered. */
  readonly keepsSnapshots = new Map<string, { snapshotId: string; code: string }[]>();
  /** When set, each call waits for it first (a slow AWS). */
  gate: Promise<void> | undefined;

  add(image: BotImage): BotImage {
    this.images.set(image.imageId, image);
    return image;
  }

  async listBotImages(place: Place): Promise<BotImage[]> {
    await this.gate;
    this.calls.push(`list ${place.region}`);
    const fail = this.listFails.get(place.region);
    if (fail) throw fail;
    return [...this.images.values()].filter((i) => i.region === place.region && i.jobId !== undefined);
  }

  async inLaunchTemplates(place: Place, imageIds: readonly string[]): Promise<Set<string>> {
    await this.gate;
    this.calls.push(`templates ${place.region} ${imageIds.length}`);
    const fail = this.templateFails.get(place.region);
    if (fail) throw fail;
    return new Set(imageIds.filter((id) => this.inTemplates.has(id)));
  }

  async deregister(
    place: Place,
    requester: Requester,
    imageId: string,
    snapshotIds: readonly string[],
  ): Promise<CleanupOutcome> {
    await this.gate;
    this.calls.push(`deregister ${place.region} ${imageId}`);
    this.snapshotIdsGiven.set(imageId, snapshotIds);
    const fail = this.deregisterFails.get(imageId);
    if (fail) throw fail;
    const image = this.images.get(imageId);
    if (!image || image.region !== place.region) return { notFound: true, snapshotsLeft: [] };
    this.images.delete(imageId);
    this.deregistered.push({ region: place.region, imageId, requester });
    return { notFound: false, snapshotsLeft: this.keepsSnapshots.get(imageId) ?? [] };
  }
}

export const denied = (what: string) => new AwsRefusedError("access_denied", `AWS denied ${what}.`, false);
