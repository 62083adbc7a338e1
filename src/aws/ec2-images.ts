import {
  CopyImageCommand,
  CreateImageCommand,
  DeregisterImageCommand,
  type DeregisterImageCommandOutput,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Filter,
  type Image,
  type Instance,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  type Snapshot,
} from "@aws-sdk/client-ec2";
import type { ImageState } from "../domain/job.js";
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
} from "../domain/ports.js";
import type { Target } from "../domain/target.js";
import { sortVolumes } from "../domain/volumes.js";
import { AwsRefusedError, PartialShareError } from "../errors.js";
import { isImageGone, translateEc2Error } from "./aws-errors.js";
import { SessionCache } from "./scoped-credentials.js";
import {
  BAD_SESSION,
  chunk,
  type Ec2Options,
  placeKey,
  policyScope,
  READ_ATTEMPTS,
  ScopedEc2,
} from "./scoped-ec2.js";
import {
  cancelImagePolicy,
  copyImagePolicy,
  createImagePolicy,
  type PolicyDocument,
  pickerPolicy,
  shareImagePolicy,
  watcherPolicy,
} from "./session-policy.js";

/** Built from the options every EC2 adapter takes (see ScopedEc2). */
export type Ec2ImagesOptions = Ec2Options;
export { defaultEc2ClientFactory, type Ec2ClientFactory, type Ec2ClientSettings } from "./scoped-ec2.js";

// Filter values per call: EC2 caps the number of values in one filter.
const FILTER_CHUNK = 200;
/** The tag every image and snapshot the bot makes carries; the watcher lists pending ones by it. */
const JOB_ID_TAG = "ami-bot:job-id";
/** On a copy: the image it copies, so a restart finds the copy it may have made (with the job id). */
const SOURCE_IMAGE_TAG = "ami-bot:source-image";
/** EC2's largest page for DescribeImages and DescribeSnapshots. */
const LIST_PAGE = 1000;
/** At most this many pages of pending images (or snapshots) per check: 50,000 of them. */
const LIST_MAX_PAGES = 50;
const PICKER_PAGE = 50;
// EC2 may return pages with few or no matches (it pages before filtering); ten pages bound one search.
const PICKER_MAX_PAGES = 10;

/** Read-only sessions kept per person (picker) or place (watcher); see SessionCache. */
const SESSION_CACHE_LIMITS = { maxEntries: 500, idleMs: 10 * 60_000 };

function scopeTagFilters(target: Target): Filter[] {
  return Object.entries(target.instanceScope.requiredTags).map(([key, value]) => ({
    Name: `tag:${key}`,
    Values: [value],
  }));
}

function inScope(target: Target, instance: Instance): boolean {
  return Object.entries(target.instanceScope.requiredTags).every(([key, value]) =>
    (instance.Tags ?? []).some((t) => t.Key === key && t.Value === value),
  );
}

function summarize(instance: Instance): InstanceSummary {
  return {
    instanceId: instance.InstanceId ?? "",
    name: instance.Tags?.find((t) => t.Key === "Name")?.Value,
    state: instance.State?.Name ?? "unknown",
    instanceType: instance.InstanceType,
  };
}

/** The summary with the root device and the EBS volumes (instance store volumes are not in the mapping). */
function details(instance: Instance): InstanceDetails {
  return {
    ...summarize(instance),
    rootDeviceName: instance.RootDeviceName,
    blockDevices: (instance.BlockDeviceMappings ?? []).flatMap((m) =>
      m.DeviceName && m.Ebs ? [{ deviceName: m.DeviceName, volumeId: m.Ebs.VolumeId }] : [],
    ),
  };
}

/**
 * A step's session policy, or a refusal in plain words when it cannot be made (an image with so many
 * snapshots or accounts that the policy would pass AWS's 2,048 characters): trying again would not help.
 */
function stepPolicy(build: () => PolicyDocument): PolicyDocument {
  try {
    return build();
  } catch (error) {
    throw new AwsRefusedError(
      "unknown",
      "ami-bot cannot scope a session to this image (too many snapshots or accounts for one AWS session policy), so it did not try. Do this step in the EC2 console.",
      false,
      { cause: error },
    );
  }
}

/** CopyImage's idempotency token (at most 64 ASCII characters): one copy per job and destination region. */
export function copyClientToken(jobId: string, region: string): string {
  return `${jobId}:${region}`.slice(0, 64);
}

/** One page of a listing, for lookUpWatched. */
interface ListPage<T> {
  readonly items: readonly T[];
  readonly nextToken: string | undefined;
}

/**
 * Finds the watched ids in one place in as few calls as it can. Looking them up by id costs one call per
 * 200 (EC2's limit on a filter's values); listing everything of ours still pending (by the job-id tag, 1,000
 * a page) costs one call per 1,000 pending in the place, whichever of them are asked. So: up to 200 ids, one
 * call by id; beyond that, the pending listing, then by id whatever it did not show (those that left
 * pending since the last check, or that EC2 does not list yet: few per tick). The listing stops once what
 * is left fits in one by-id call, and never reads more pages than a by-id lookup would have cost, so a place
 * with far more pending than asked costs at most twice the by-id calls. Returns the items found, by id.
 */
async function lookUpWatched<T>(
  ids: readonly string[],
  idOf: (item: T) => string | undefined,
  listPending: (nextToken: string | undefined) => Promise<ListPage<T>>,
  byIds: (ids: string[]) => Promise<readonly T[]>,
): Promise<Map<string, T>> {
  const wanted = new Set(ids);
  const found = new Map<string, T>();
  const keep = (items: readonly T[]) => {
    for (const item of items) {
      const id = idOf(item);
      if (id !== undefined && wanted.has(id)) found.set(id, item);
    }
  };
  if (wanted.size > FILTER_CHUNK) {
    const maxPages = Math.min(LIST_MAX_PAGES, Math.ceil(wanted.size / FILTER_CHUNK));
    let nextToken: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      const out = await listPending(nextToken);
      keep(out.items);
      nextToken = out.nextToken;
      if (!nextToken || wanted.size - found.size <= FILTER_CHUNK) break;
    }
  }
  const rest = [...wanted].filter((id) => !found.has(id));
  for (const part of chunk(rest, FILTER_CHUNK)) keep(await byIds(part));
  return found;
}

/**
 * EC2 through scoped sessions: CreateImage under a per-request policy naming the instance; the picker's
 * reads under a DescribeInstances/DescribeVolumes-only session per person and place; the watcher's under a
 * DescribeImages/DescribeSnapshots-only session per place. Read-only sessions are reused as long as they
 * work: the client keeps the SDK's memoized credentials, which it refreshes before they expire.
 */
export class Ec2Images implements ImageService {
  private readonly ec2: ScopedEc2;
  private readonly watcherIdentity: string;
  private readonly pickerClients: SessionCache<EC2Client>;
  private readonly watchClients: SessionCache<EC2Client>;

  constructor(options: Ec2ImagesOptions = {}) {
    this.ec2 = new ScopedEc2(options);
    this.watcherIdentity = options.watcherIdentity ?? "ami-bot-watcher";
    const clock = options.clock ?? { now: () => Date.now() };
    const limits = { ...SESSION_CACHE_LIMITS, now: () => clock.now() };
    this.pickerClients = new SessionCache(limits);
    this.watchClients = new SessionCache(limits);
  }

  /** Ends every call in flight (they fail as "did not answer in time") and refuses new ones. */
  close(): void {
    this.ec2.close();
  }

  private call(): { abortSignal: AbortSignal } {
    return this.ec2.call();
  }

  private client(...args: Parameters<ScopedEc2["client"]>): EC2Client {
    return this.ec2.client(...args);
  }

  private placeKey(place: Place): string {
    return placeKey(place);
  }

  /** Keyed by person, not channel: the session's slack-channel tag is that of their first search. */
  private pickerKey(place: Place, requester: Requester): string {
    return `${requester.userId}|${this.placeKey(place)}`;
  }

  private pickerClient(place: Place, requester: Requester): EC2Client {
    return this.pickerClients.get(this.pickerKey(place, requester), () =>
      this.client(place, requester, pickerPolicy(this.policyScope(place))),
    );
  }

  private watchClient(place: Place): EC2Client {
    return this.watchClients.get(this.placeKey(place), () =>
      this.client(
        place,
        { userId: this.watcherIdentity, channelId: "none" },
        watcherPolicy(this.policyScope(place)),
      ),
    );
  }

  /**
   * When AWS says the session is no good (expired, denied), the cached client is dropped so the next call
   * assumes the role afresh instead of reusing credentials AWS now refuses.
   */
  private dropIfBadSession(
    cache: SessionCache<EC2Client>,
    key: string,
    translated: AwsRefusedError,
  ): AwsRefusedError {
    if (BAD_SESSION.has(translated.code)) cache.delete(key);
    return translated;
  }

  private watchError(place: Place, error: unknown): AwsRefusedError {
    return this.dropIfBadSession(this.watchClients, this.placeKey(place), translateEc2Error(error));
  }

  private policyScope(place: Place) {
    return policyScope(place);
  }

  async findInstances(place: Place, requester: Requester, query: string): Promise<InstanceSummary[]> {
    const q = query.trim().replace(/[*?\\]/g, "");
    const filters: Filter[] = [
      { Name: "instance-state-name", Values: ["running", "stopped", "stopping", "pending"] },
      ...scopeTagFilters(place.target),
    ];
    if (/^i-[0-9a-f]*$/.test(q)) filters.push({ Name: "instance-id", Values: [`${q}*`] });
    else if (q) filters.push({ Name: "tag:Name", Values: [`*${q}*`] });
    const client = this.pickerClient(place, requester);
    // One deadline for the whole search, however many pages it reads.
    const call = this.call();
    const found: InstanceSummary[] = [];
    try {
      let nextToken: string | undefined;
      for (let page = 0; page < PICKER_MAX_PAGES; page++) {
        const out = await client.send(
          new DescribeInstancesCommand({
            Filters: filters,
            MaxResults: PICKER_PAGE,
            ...(nextToken && { NextToken: nextToken }),
          }),
          call,
        );
        found.push(...(out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map(summarize));
        nextToken = out.NextToken;
        if (found.length >= PICKER_PAGE || !nextToken) break;
      }
    } catch (error) {
      throw this.dropIfBadSession(
        this.pickerClients,
        this.pickerKey(place, requester),
        translateEc2Error(error),
      );
    }
    return found.slice(0, PICKER_PAGE);
  }

  async describeInstance(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceDetails | undefined> {
    try {
      const out = await this.pickerClient(place, requester).send(
        new DescribeInstancesCommand({ InstanceIds: [instanceId] }),
        this.call(),
      );
      const instance = (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])[0];
      if (!instance) return undefined;
      if (!inScope(place.target, instance))
        throw new AwsRefusedError(
          "instance_out_of_scope",
          `Instance ${instanceId} is not one that target ${place.target.name} allows imaging (it lacks the required tags ${Object.entries(
            place.target.instanceScope.requiredTags,
          )
            .map(([k, v]) => `${k}=${v}`)
            .join(", ")}).`,
          false,
        );
      return details(instance);
    } catch (error) {
      const translated = translateEc2Error(error, { instanceId });
      if (translated.code === "instance_not_found") return undefined;
      throw this.dropIfBadSession(this.pickerClients, this.pickerKey(place, requester), translated);
    }
  }

  /**
   * DescribeInstances names the volumes (and checks the instance is in scope); DescribeVolumes gives their
   * size and type. A filter, not VolumeIds: a volume detached meanwhile must not fail the whole list.
   */
  async describeVolumes(
    place: Place,
    requester: Requester,
    instanceId: string,
  ): Promise<InstanceVolume[] | undefined> {
    const instance = await this.describeInstance(place, requester, instanceId);
    if (!instance) return undefined;
    const mapped = instance.blockDevices.flatMap((d) =>
      d.volumeId ? [{ deviceName: d.deviceName, volumeId: d.volumeId }] : [],
    );
    if (mapped.length === 0) return [];
    const found = new Map<string, { size: number | undefined; type: string | undefined }>();
    try {
      const client = this.pickerClient(place, requester);
      for (const ids of chunk(
        mapped.map((m) => m.volumeId),
        FILTER_CHUNK,
      )) {
        const out = await client.send(
          new DescribeVolumesCommand({ Filters: [{ Name: "volume-id", Values: ids }] }),
          this.call(),
        );
        for (const v of out.Volumes ?? [])
          if (v.VolumeId) found.set(v.VolumeId, { size: v.Size, type: v.VolumeType });
      }
    } catch (error) {
      throw this.dropIfBadSession(
        this.pickerClients,
        this.pickerKey(place, requester),
        translateEc2Error(error, { instanceId }),
      );
    }
    return sortVolumes(
      mapped.map((m) => ({
        ...m,
        sizeGiB: found.get(m.volumeId)?.size,
        volumeType: found.get(m.volumeId)?.type,
        root: m.deviceName === instance.rootDeviceName,
      })),
    );
  }

  private createCommand(params: CreateImageParams, requester: Requester, dryRun: boolean) {
    const tags = [
      { Key: "Name", Value: params.imageName },
      { Key: JOB_ID_TAG, Value: params.jobId },
      { Key: "ami-bot:requested-by", Value: requester.userId },
      { Key: "ami-bot:channel", Value: requester.channelId },
      ...params.tags.map((t) => ({ Key: t.key, Value: t.value })),
    ];
    return new CreateImageCommand({
      InstanceId: params.instanceId,
      Name: params.imageName,
      Description: params.description,
      NoReboot: params.noReboot,
      DryRun: dryRun || undefined,
      // The console's "Delete" on a volume: NoDevice (an empty string) leaves that device out of the image.
      ...(params.excludedDevices.length > 0 && {
        BlockDeviceMappings: params.excludedDevices.map((d) => ({ DeviceName: d, NoDevice: "" })),
      }),
      TagSpecifications: [
        { ResourceType: "image", Tags: tags },
        { ResourceType: "snapshot", Tags: tags },
      ],
    });
  }

  async createImage(place: Place, requester: Requester, params: CreateImageParams): Promise<string> {
    // An answer lost to a timeout may hide an image AWS did make: the SDK resends only calls AWS answered,
    // and the job looks for its image by tag before trying again. Never cached: the session's policy names
    // this one instance, and a session that can create must not outlive its request.
    const client = this.client(
      place,
      requester,
      createImagePolicy(place.target, place.region, params.instanceId),
      { maxAttempts: READ_ATTEMPTS, answeredOnly: true },
    );
    try {
      const out = await client.send(this.createCommand(params, requester, false), this.call());
      if (!out.ImageId)
        throw new AwsRefusedError("unknown", "AWS accepted the request but returned no image id.", true);
      return out.ImageId;
    } catch (error) {
      throw translateEc2Error(error, params);
    }
  }

  async checkCreateImage(place: Place, requester: Requester, params: CreateImageParams): Promise<void> {
    const client = this.client(
      place,
      requester,
      createImagePolicy(place.target, place.region, params.instanceId),
    );
    try {
      await client.send(this.createCommand(params, requester, true), this.call());
    } catch (error) {
      const translated = translateEc2Error(error, params);
      if (translated.code === "dry_run_ok") return;
      throw translated;
    }
    throw new AwsRefusedError(
      "unknown",
      "AWS answered a dry run as if it were real; nothing should have been created.",
      false,
    );
  }

  /**
   * DeregisterImage with DeleteAssociatedSnapshots, under a session allowed only this image and this job's
   * snapshots. Never cached, like CreateImage's. Resending is harmless (a second call finds the image gone),
   * so the SDK's standard retry applies. An image AWS no longer has counts as done. AWS deregisters even when
   * it may not delete a snapshot, and says so per snapshot: that is refused here, naming what is left.
   */
  async deregisterImage(
    place: Place,
    requester: Requester,
    params: DeregisterParams,
  ): Promise<DeregisterOutcome> {
    const client = this.client(
      place,
      requester,
      cancelImagePolicy(this.policyScope(place), params.imageId, params.jobId),
    );
    let out: DeregisterImageCommandOutput;
    try {
      out = await client.send(
        new DeregisterImageCommand({ ImageId: params.imageId, DeleteAssociatedSnapshots: true }),
        this.call(),
      );
    } catch (error) {
      if (isImageGone(error)) return { leftBehind: undefined, notFound: true };
      throw translateEc2Error(error);
    }
    // "skipped" means another image still uses the snapshot: keeping it is right.
    const kept = (out.DeleteSnapshotResults ?? []).filter(
      (r) => r.ReturnCode !== "success" && r.ReturnCode !== "skipped",
    );
    if (kept.length === 0) return { leftBehind: undefined };
    // The image is gone either way: the cancel succeeded, and the thread says what is left to delete.
    const ids = kept.map((r) => r.SnapshotId ?? "?").join(", ");
    const denied = kept.some((r) => r.ReturnCode === "missing-permissions");
    return {
      leftBehind: `It was deregistered, but AWS kept the snapshots ${ids}${
        denied ? " (the target role does not allow ami-bot to delete them)" : ""
      }; delete them in the EC2 console, or they will go on costing storage.`,
    };
  }

  /**
   * CopyImage in the destination region under a session allowed only this source image (while it carries
   * the job's tag) and tagging only what the copy makes. The ClientToken is the job and region: AWS answers a
   * repeat with the first call's copy, so the SDK's retries and a restart's second call make no second copy.
   */
  async copyImage(destination: Place, requester: Requester, params: CopyImageParams): Promise<string> {
    const client = this.client(
      destination,
      requester,
      stepPolicy(() =>
        copyImagePolicy(
          this.policyScope(destination),
          { region: params.sourceRegion, imageId: params.sourceImageId },
          params.jobId,
          params.kmsKeyId,
        ),
      ),
    );
    const tags = [
      { Key: "Name", Value: params.imageName },
      { Key: JOB_ID_TAG, Value: params.jobId },
      { Key: SOURCE_IMAGE_TAG, Value: params.sourceImageId },
      { Key: "ami-bot:instance-id", Value: params.instanceId },
      { Key: "ami-bot:requested-by", Value: requester.userId },
      { Key: "ami-bot:channel", Value: requester.channelId },
      ...params.tags.map((t) => ({ Key: t.key, Value: t.value })),
    ];
    try {
      const out = await client.send(
        new CopyImageCommand({
          SourceRegion: params.sourceRegion,
          SourceImageId: params.sourceImageId,
          Name: params.imageName,
          Description: params.description,
          ClientToken: copyClientToken(params.jobId, destination.region),
          // Without a key, an encrypted source's copy stays encrypted with EBS's default key in that region.
          ...(params.kmsKeyId && { Encrypted: true, KmsKeyId: params.kmsKeyId }),
          TagSpecifications: [
            { ResourceType: "image", Tags: tags },
            { ResourceType: "snapshot", Tags: tags },
          ],
        }),
        this.call(),
      );
      if (!out.ImageId)
        throw new AwsRefusedError("unknown", "AWS accepted the copy but returned no image id.", true);
      return out.ImageId;
    } catch (error) {
      const translated = translateEc2Error(error, {
        imageName: params.imageName,
        deniedMessage: `AWS denied the copy into ${destination.region}: the target role does not allow ami-bot to copy images there. Ask the people who run ami-bot to turn on copies in the target role (AllowCopy).`,
      });
      // The name is taken in the destination, not where the person asked: say where, and what to do there.
      if (translated.code === "name_taken")
        throw new AwsRefusedError(
          "name_taken",
          `An image named “${params.imageName}” already exists in ${destination.region}, so AWS refused the copy. Rename or deregister that image there, then copy this one from the EC2 console.`,
          false,
          { cause: error },
        );
      throw translated;
    }
  }

  /** Through the watcher's session in the destination: the copy carries the job's and the source's tags. */
  async findCopy(destination: Place, jobId: string, sourceImageId: string): Promise<string | undefined> {
    try {
      const out = await this.watchClient(destination).send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [
            { Name: `tag:${JOB_ID_TAG}`, Values: [jobId] },
            { Name: `tag:${SOURCE_IMAGE_TAG}`, Values: [sourceImageId] },
          ],
        }),
        this.call(),
      );
      return out.Images?.[0]?.ImageId;
    } catch (error) {
      throw this.watchError(destination, error);
    }
  }

  /**
   * Launch permission on the image, then create-volume permission on each of its snapshots, for exactly
   * the chosen accounts: never the `all` group (public), which the session policy refuses as well. Adding a
   * permission that is already there changes nothing, so a repeat after a crash is harmless.
   */
  async shareImage(place: Place, requester: Requester, params: ShareImageParams): Promise<void> {
    if (params.accounts.some((a) => !/^\d{12}$/.test(a)))
      throw new AwsRefusedError("unknown", "Only 12-digit account ids can be shared with.", false);
    const client = this.client(
      place,
      requester,
      stepPolicy(() =>
        shareImagePolicy(
          this.policyScope(place),
          params.imageId,
          params.snapshotIds,
          params.jobId,
          params.accounts,
        ),
      ),
    );
    const denied = `AWS denied sharing image ${params.imageId}: the target role does not allow ami-bot to share images. Ask the people who run ami-bot to turn on sharing in the target role (AllowShare).`;
    const add = params.accounts.map((UserId) => ({ UserId }));
    try {
      await client.send(
        new ModifyImageAttributeCommand({ ImageId: params.imageId, LaunchPermission: { Add: add } }),
        this.call(),
      );
    } catch (error) {
      throw translateEc2Error(error, { deniedMessage: denied });
    }
    for (const snapshotId of params.snapshotIds) {
      try {
        await client.send(
          new ModifySnapshotAttributeCommand({
            SnapshotId: snapshotId,
            Attribute: "createVolumePermission",
            OperationType: "add",
            CreateVolumePermission: { Add: add },
          }),
          this.call(),
        );
      } catch (error) {
        // The accounts can launch the image already: the thread must not say it was not shared at all.
        throw new PartialShareError(translateEc2Error(error, { deniedMessage: denied }), snapshotId);
      }
    }
  }

  /** Through the watcher's session: finding the image is the watcher's kind of read, not the person's. */
  async findImageByJob(place: Place, _requester: Requester, jobId: string): Promise<string | undefined> {
    try {
      const out = await this.watchClient(place).send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: [{ Name: `tag:${JOB_ID_TAG}`, Values: [jobId] }],
        }),
        this.call(),
      );
      return out.Images?.[0]?.ImageId;
    } catch (error) {
      throw this.watchError(place, error);
    }
  }

  /** DescribeImages by name, ours only; the filter's `*` and `?` are wildcards, so the match is checked too. */
  async imageNameTaken(place: Place, name: string): Promise<boolean> {
    try {
      const out = await this.watchClient(place).send(
        new DescribeImagesCommand({ Owners: ["self"], Filters: [{ Name: "name", Values: [name] }] }),
        this.call(),
      );
      return (out.Images ?? []).some((i) => i.Name === name);
    } catch (error) {
      throw this.watchError(place, error);
    }
  }

  /**
   * The watcher's check: see lookUpWatched. Ours only (`self`), by filters, never ImageIds: one missing image
   * must not fail the whole batch; an id EC2 shows neither way is left out of the map.
   */
  async describeImages(place: Place, imageIds: readonly string[]): Promise<Map<string, ImageStatus>> {
    const client = this.watchClient(place);
    // Given a page, one page of a listing (EC2 allows MaxResults only without ids).
    const describe = async (filters: Filter[], page?: { nextToken: string | undefined }) => {
      const out = await client.send(
        new DescribeImagesCommand({
          Owners: ["self"],
          Filters: filters,
          ...(page && { MaxResults: LIST_PAGE }),
          ...(page?.nextToken && { NextToken: page.nextToken }),
        }),
        this.call(),
      );
      return { items: out.Images ?? [], nextToken: out.NextToken };
    };
    let found: Map<string, Image>;
    try {
      found = await lookUpWatched(
        imageIds,
        (image) => image.ImageId,
        (nextToken) =>
          describe(
            [
              { Name: "tag-key", Values: [JOB_ID_TAG] },
              { Name: "state", Values: ["pending"] },
            ],
            { nextToken },
          ),
        async (ids) => (await describe([{ Name: "image-id", Values: ids }])).items,
      );
    } catch (error) {
      throw this.watchError(place, error);
    }
    const result = new Map<string, ImageStatus>();
    for (const [imageId, image] of found)
      result.set(imageId, {
        imageId,
        state: (image.State ?? "pending") as ImageState,
        reason: image.StateReason?.Message,
        snapshotIds: (image.BlockDeviceMappings ?? []).flatMap((m) =>
          m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [],
        ),
      });
    return result;
  }

  /**
   * Progress of snapshots, looked up as describeImages does (pending ones by the job-id tag). A snapshot the
   * pending listing does not show is looked up by id rather than taken as complete: EC2 may not list one
   * made moments ago, and counting it as 100% would post a milestone the image has not reached.
   */
  async snapshotProgress(place: Place, snapshotIds: readonly string[]): Promise<Map<string, number>> {
    const client = this.watchClient(place);
    // Given a page, one page of a listing (EC2 allows MaxResults only without ids).
    const describe = async (filters: Filter[], page?: { nextToken: string | undefined }) => {
      const out = await client.send(
        new DescribeSnapshotsCommand({
          OwnerIds: ["self"],
          Filters: filters,
          ...(page && { MaxResults: LIST_PAGE }),
          ...(page?.nextToken && { NextToken: page.nextToken }),
        }),
        this.call(),
      );
      return { items: out.Snapshots ?? [], nextToken: out.NextToken };
    };
    let found: Map<string, Snapshot>;
    try {
      found = await lookUpWatched(
        snapshotIds,
        (snapshot) => snapshot.SnapshotId,
        (nextToken) =>
          describe(
            [
              { Name: "tag-key", Values: [JOB_ID_TAG] },
              { Name: "status", Values: ["pending"] },
            ],
            { nextToken },
          ),
        async (ids) => (await describe([{ Name: "snapshot-id", Values: ids }])).items,
      );
    } catch (error) {
      throw this.watchError(place, error);
    }
    return new Map([...found].map(([id, s]) => [id, Number.parseInt(s.Progress ?? "0", 10) || 0] as const));
  }
}
