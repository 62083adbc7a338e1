/**
 * The ImageService port in memory: instances (with their EBS volumes) and images per place (target +
 * region), every call recorded, and failures that a test arms per method (and optionally per place).
 */
import { placeKey } from "../../src/domain/access.js";
import type { Tag } from "../../src/domain/image-request.js";
import type { ImageState } from "../../src/domain/job.js";
import type {
  CopyImageParams,
  CreateImageParams,
  DeregisterOutcome,
  DeregisterParams,
  ImageService,
  ImageStatus,
  InstanceDetails,
  InstanceSummary,
  InstanceVolume,
  Place,
  Requester,
  ShareImageParams,
} from "../../src/domain/ports.js";
import { sortVolumes } from "../../src/domain/volumes.js";
import { AwsRefusedError } from "../../src/errors.js";

export type ImageMethod = keyof ImageService;

export interface RecordedCall {
  readonly method: ImageMethod;
  /** "target|region" */
  readonly place: string;
  readonly requester: Requester | undefined;
  readonly args: readonly unknown[];
}

export interface MemoryImage {
  readonly imageId: string;
  readonly name: string;
  readonly instanceId: string;
  state: ImageState;
  reason: string | undefined;
  readonly snapshotIds: string[];
  readonly tags: Tag[];
  readonly noReboot: boolean;
  readonly description: string | undefined;
  /** Devices CreateImage was asked to leave out. */
  readonly excludedDevices: readonly string[];
  /** Accounts given launch permission (shareImage). */
  readonly sharedWith: string[];
}

interface MemoryInstance {
  readonly details: InstanceDetails;
  readonly volumes: readonly InstanceVolume[];
}

interface ArmedFailure {
  readonly method: ImageMethod;
  readonly place: string | undefined;
  readonly error: Error;
  /** Remaining uses; Infinity for "until cleared". */
  remaining: number;
}

type PlaceRef = Place | string;

const keyOf = (place: PlaceRef): string =>
  typeof place === "string" ? place : placeKey(place.target.name, place.region);

export const JOB_ID_TAG = "ami-bot:job-id";

/** What EC2 accepts as an image name; anything else is refused as InvalidAMIName.Malformed. */
const VALID_IMAGE_NAME = /^[A-Za-z0-9()[\] ./\-'@_]{3,128}$/;

export class MemoryImageService implements ImageService {
  readonly calls: RecordedCall[] = [];
  private readonly instances = new Map<string, Map<string, MemoryInstance>>();
  private readonly images = new Map<string, Map<string, MemoryImage>>();
  private readonly progress = new Map<string, number>();
  private failures: ArmedFailure[] = [];
  private holds: { method: ImageMethod; place: string | undefined; released: Promise<void> }[] = [];
  private nextId = 1;

  // ---- arranging ----

  /** An instance; without `volumes`, one 8 GiB gp3 root volume at /dev/xvda. */
  addInstance(
    place: PlaceRef,
    instance: Partial<InstanceSummary> & { instanceId: string; volumes?: readonly InstanceVolume[] },
  ): this {
    const byId = this.instances.get(keyOf(place)) ?? new Map<string, MemoryInstance>();
    const { volumes: given, ...summary } = instance;
    const volumes = given ?? [
      { deviceName: "/dev/xvda", volumeId: this.newId("vol"), sizeGiB: 8, volumeType: "gp3", root: true },
    ];
    byId.set(instance.instanceId, {
      details: {
        name: undefined,
        state: "running",
        instanceType: "t3.micro",
        ...summary,
        rootDeviceName: volumes.find((v) => v.root)?.deviceName,
        blockDevices: volumes.map((v) => ({ deviceName: v.deviceName, volumeId: v.volumeId })),
      },
      volumes,
    });
    this.instances.set(keyOf(place), byId);
    return this;
  }

  /** Puts an image in a place as if created earlier (by us when `jobId` is given). */
  addImage(
    place: PlaceRef,
    image: Partial<Omit<MemoryImage, "imageId" | "name">> & {
      imageId?: string;
      name: string;
      jobId?: string;
    },
  ): MemoryImage {
    const imageId = image.imageId ?? this.newId("ami");
    const stored: MemoryImage = {
      imageId,
      name: image.name,
      instanceId: image.instanceId ?? "i-0123456789abcdef0",
      state: image.state ?? "pending",
      reason: image.reason,
      snapshotIds: image.snapshotIds ?? [this.newId("snap")],
      tags: [...(image.tags ?? []), ...(image.jobId ? [{ key: JOB_ID_TAG, value: image.jobId }] : [])],
      noReboot: image.noReboot ?? false,
      description: image.description,
      excludedDevices: image.excludedDevices ?? [],
      sharedWith: image.sharedWith ?? [],
    };
    this.placeImages(keyOf(place)).set(imageId, stored);
    return stored;
  }

  setImageState(imageId: string, state: ImageState, reason?: string): void {
    const image = this.findImage(imageId);
    if (!image) throw new Error(`no image ${imageId}`);
    image.state = state;
    image.reason = reason;
  }

  removeImage(imageId: string): void {
    for (const byId of this.images.values()) byId.delete(imageId);
  }

  setSnapshotProgress(snapshotId: string, percent: number): void {
    this.progress.set(snapshotId, percent);
  }

  /** Every image's snapshots at `percent`. */
  setAllProgress(percent: number): void {
    for (const image of this.allImages()) for (const s of image.snapshotIds) this.progress.set(s, percent);
  }

  /** Makes the next call(s) to `method` (in `place`, if given) throw `error`. */
  failNext(method: ImageMethod, error: Error, options: { place?: PlaceRef; times?: number } = {}): void {
    this.failures.push({
      method,
      place: options.place === undefined ? undefined : keyOf(options.place),
      error,
      remaining: options.times ?? 1,
    });
  }

  /** Makes every call to `method` (in `place`, if given) throw `error` until `clearFailures`. */
  failAlways(method: ImageMethod, error: Error, place?: PlaceRef): void {
    this.failNext(method, error, {
      ...(place === undefined ? {} : { place }),
      times: Number.POSITIVE_INFINITY,
    });
  }

  clearFailures(): void {
    this.failures = [];
  }

  /**
   * Calls to `method` (in `place`, if given) are recorded and then left unanswered, as by an endpoint that
   * accepts and never answers, until the returned function is called.
   */
  hold(method: ImageMethod, place?: PlaceRef): () => void {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const hold = { method, place: place === undefined ? undefined : keyOf(place), released };
    this.holds.push(hold);
    return () => {
      this.holds = this.holds.filter((h) => h !== hold);
      release();
    };
  }

  /** Waits while a hold covers this call. */
  private async held(method: ImageMethod, place: Place): Promise<void> {
    const key = keyOf(place);
    const hold = this.holds.find((h) => h.method === method && (h.place === undefined || h.place === key));
    if (hold) await hold.released;
  }

  // ---- inspecting ----

  callsTo(method: ImageMethod, place?: PlaceRef): RecordedCall[] {
    const key = place === undefined ? undefined : keyOf(place);
    return this.calls.filter((c) => c.method === method && (key === undefined || c.place === key));
  }

  imagesIn(place: PlaceRef): MemoryImage[] {
    return [...this.placeImages(keyOf(place)).values()];
  }

  allImages(): MemoryImage[] {
    return [...this.images.values()].flatMap((byId) => [...byId.values()]);
  }

  // ---- the port ----

  async findInstances(place: Place, requester: Requester, query: string): Promise<InstanceSummary[]> {
    this.record("findInstances", place, requester, [query]);
    const q = query.toLowerCase();
    return [...(this.instances.get(keyOf(place))?.values() ?? [])]
      .map(({ details: { instanceId, name, state, instanceType } }) => ({
        instanceId,
        name,
        state,
        instanceType,
      }))
      .filter((i) => i.instanceId.includes(q) || (i.name ?? "").toLowerCase().includes(q));
  }

  async describeInstance(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceDetails | undefined> {
    this.record("describeInstance", place, requester, [instanceId]);
    return this.instances.get(keyOf(place))?.get(instanceId)?.details;
  }

  async describeVolumes(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceVolume[] | undefined> {
    this.record("describeVolumes", place, requester, [instanceId]);
    await this.held("describeVolumes", place);
    const volumes = this.instances.get(keyOf(place))?.get(instanceId)?.volumes;
    return volumes ? sortVolumes(volumes) : undefined;
  }

  async createImage(place: Place, requester: Requester, params: CreateImageParams): Promise<string> {
    this.record("createImage", place, requester, [params]);
    await this.held("createImage", place);
    this.refuseUnlessCreatable(place, params);
    const volumes = this.instances.get(keyOf(place))?.get(params.instanceId)?.volumes ?? [];
    return this.addImage(place, {
      name: params.imageName,
      instanceId: params.instanceId,
      description: params.description,
      noReboot: params.noReboot,
      tags: [...params.tags],
      jobId: params.jobId,
      excludedDevices: [...params.excludedDevices],
      // One snapshot per volume the image keeps.
      snapshotIds: volumes
        .filter((v) => !params.excludedDevices.includes(v.deviceName))
        .map(() => this.newId("snap")),
    }).imageId;
  }

  async checkCreateImage(place: Place, requester: Requester, params: CreateImageParams): Promise<void> {
    this.record("checkCreateImage", place, requester, [params]);
    this.refuseUnlessCreatable(place, params);
  }

  async findImageByJob(place: Place, requester: Requester, jobId: string): Promise<string | undefined> {
    this.record("findImageByJob", place, requester, [jobId]);
    return this.imagesIn(place).find((i) => i.tags.some((t) => t.key === JOB_ID_TAG && t.value === jobId))
      ?.imageId;
  }

  async imageNameTaken(place: Place, name: string): Promise<boolean> {
    this.record("imageNameTaken", place, undefined, [name]);
    await this.held("imageNameTaken", place);
    return this.imagesIn(place).some((i) => i.name === name && i.state !== "deregistered");
  }

  async describeImages(place: Place, imageIds: readonly string[]): Promise<Map<string, ImageStatus>> {
    this.record("describeImages", place, undefined, [[...imageIds]]);
    await this.held("describeImages", place);
    const byId = this.placeImages(keyOf(place));
    const result = new Map<string, ImageStatus>();
    for (const id of imageIds) {
      const image = byId.get(id);
      if (image)
        result.set(id, {
          imageId: id,
          state: image.state,
          reason: image.reason,
          snapshotIds: [...image.snapshotIds],
        });
    }
    return result;
  }

  /**
   * As DeregisterImage with DeleteAssociatedSnapshots under the job's cancel session: the image turns
   * "deregistered" and its snapshots go; an image the place does not have resolves (already gone); an image
   * without this job's id tag is refused, as the session policy would.
   */
  async deregisterImage(
    place: Place,
    requester: Requester,
    params: DeregisterParams,
  ): Promise<DeregisterOutcome> {
    this.record("deregisterImage", place, requester, [params]);
    await this.held("deregisterImage", place);
    const image = this.placeImages(keyOf(place)).get(params.imageId);
    // As EC2 answers InvalidAMIID.NotFound for an image it has not (or no longer) got.
    if (!image || image.state === "deregistered") return { leftBehind: undefined, notFound: true };
    if (!image.tags.some((t) => t.key === JOB_ID_TAG && t.value === params.jobId))
      throw new AwsRefusedError(
        "access_denied",
        `AWS denied the request: image ${params.imageId} is not job ${params.jobId}'s.`,
        false,
      );
    image.state = "deregistered";
    image.reason = undefined;
    for (const s of image.snapshotIds) this.progress.delete(s);
    image.snapshotIds.length = 0;
    return { leftBehind: undefined };
  }

  async snapshotProgress(place: Place, snapshotIds: readonly string[]): Promise<Map<string, number>> {
    this.record("snapshotProgress", place, undefined, [[...snapshotIds]]);
    return new Map(snapshotIds.map((s) => [s, this.progress.get(s) ?? 0]));
  }

  /**
   * As CopyImage with its ClientToken: a copy in the destination tagged with the job and source image; a
   * repeat for the same job and destination returns the first copy.
   */
  async copyImage(destination: Place, requester: Requester, params: CopyImageParams): Promise<string> {
    this.record("copyImage", destination, requester, [params]);
    await this.held("copyImage", destination);
    const source = this.placeImages(placeKey(destination.target.name, params.sourceRegion)).get(
      params.sourceImageId,
    );
    if (!source)
      throw new AwsRefusedError("unknown", `AWS has no image ${params.sourceImageId} to copy.`, false);
    const earlier = this.copyIn(destination, params.jobId, params.sourceImageId);
    if (earlier) return earlier.imageId;
    return this.addImage(destination, {
      name: params.imageName,
      instanceId: params.instanceId,
      description: params.description,
      tags: [...params.tags, { key: "ami-bot:source-image", value: params.sourceImageId }],
      jobId: params.jobId,
      snapshotIds: source.snapshotIds.map(() => this.newId("snap")),
    }).imageId;
  }

  async findCopy(destination: Place, jobId: string, sourceImageId: string): Promise<string | undefined> {
    this.record("findCopy", destination, undefined, [jobId, sourceImageId]);
    return this.copyIn(destination, jobId, sourceImageId)?.imageId;
  }

  async shareImage(place: Place, requester: Requester, params: ShareImageParams): Promise<void> {
    this.record("shareImage", place, requester, [params]);
    await this.held("shareImage", place);
    const image = this.placeImages(keyOf(place)).get(params.imageId);
    if (!image) throw new AwsRefusedError("unknown", `AWS has no image ${params.imageId}.`, false);
    for (const account of params.accounts)
      if (!image.sharedWith.includes(account)) image.sharedWith.push(account);
  }

  private copyIn(destination: Place, jobId: string, sourceImageId: string): MemoryImage | undefined {
    return this.imagesIn(destination).find(
      (i) =>
        i.tags.some((t) => t.key === JOB_ID_TAG && t.value === jobId) &&
        i.tags.some((t) => t.key === "ami-bot:source-image" && t.value === sourceImageId),
    );
  }

  // ---- internals ----

  private refuseUnlessCreatable(place: Place, params: CreateImageParams): void {
    if (!VALID_IMAGE_NAME.test(params.imageName))
      throw new AwsRefusedError(
        "name_malformed",
        "AWS rejected the image name. Use 3–128 letters, digits, spaces and ( ) [ ] . / - ' @ _",
        false,
      );
    const instance = this.instances.get(keyOf(place))?.get(params.instanceId);
    if (!instance)
      throw new AwsRefusedError("instance_not_found", `Instance ${params.instanceId} was not found.`, false);
    // As EC2 (InvalidBlockDeviceMapping): a device to leave out must be one the instance has.
    const foreign = params.excludedDevices.find(
      (d) => !instance.details.blockDevices.some((b) => b.deviceName === d),
    );
    if (foreign !== undefined)
      throw new AwsRefusedError(
        "volumes_invalid",
        `Instance ${params.instanceId} has no volume ${foreign}.`,
        false,
      );
    if (this.imagesIn(place).some((i) => i.name === params.imageName && i.state !== "deregistered"))
      throw new AwsRefusedError(
        "name_taken",
        `An image named ${params.imageName} already exists in this account and region.`,
        false,
      );
  }

  private record(method: ImageMethod, place: Place, requester: Requester | undefined, args: unknown[]): void {
    const key = keyOf(place);
    this.calls.push({ method, place: key, requester, args });
    const armed = this.failures.find(
      (f) => f.method === method && (f.place === undefined || f.place === key) && f.remaining > 0,
    );
    if (!armed) return;
    armed.remaining--;
    throw armed.error;
  }

  private placeImages(key: string): Map<string, MemoryImage> {
    const byId = this.images.get(key) ?? new Map<string, MemoryImage>();
    this.images.set(key, byId);
    return byId;
  }

  private findImage(imageId: string): MemoryImage | undefined {
    return this.allImages().find((i) => i.imageId === imageId);
  }

  private newId(prefix: string): string {
    return `${prefix}-${(this.nextId++).toString(16).padStart(17, "0")}`;
  }
}
