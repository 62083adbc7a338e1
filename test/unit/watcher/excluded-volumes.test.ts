/**
 * The watcher and the volumes a job leaves out: they reach CreateImage as stored (after a restart too), and
 * a device the instance does not have (or its root) is refused before CreateImage, for the jobs the form
 * could not check because AWS did not answer it in time.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { Job } from "../../../src/domain/job.js";
import type { InstanceVolume } from "../../../src/domain/ports.js";
import type { SqliteJobStore } from "../../../src/store/sqlite-job-store.js";
import { createImageWatcher, type ImageWatcher } from "../../../src/watcher/image-watcher.js";
import { FixedClock } from "../../fakes/fixed-clock.js";
import {
  memoryStore,
  newJob,
  placeFor,
  silentLogger,
  testTarget,
  watcherSettings,
} from "../../fakes/job-fixtures.js";
import { MemoryImageService } from "../../fakes/memory-image-service.js";

const prod = testTarget({ name: "prod" });
const PROD = placeFor(prod);
const INSTANCE = "i-0123456789abcdef0";
const VOLUMES: InstanceVolume[] = [
  { deviceName: "/dev/xvda", volumeId: "vol-0a", sizeGiB: 8, volumeType: "gp3", root: true },
  { deviceName: "/dev/sdf", volumeId: "vol-0b", sizeGiB: 100, volumeType: "gp3", root: false },
  { deviceName: "/dev/sdg", volumeId: "vol-0c", sizeGiB: 500, volumeType: "st1", root: false },
];

let clock: FixedClock;
let images: MemoryImageService;
let store: SqliteJobStore;
let watcher: ImageWatcher;

beforeEach(() => {
  clock = new FixedClock();
  images = new MemoryImageService();
  images.addInstance(PROD, { instanceId: INSTANCE, name: "web-1", volumes: VOLUMES });
  store = memoryStore();
  watcher = createImageWatcher({
    store,
    images,
    targets: [prod],
    settings: watcherSettings(),
    clock,
    logger: silentLogger(),
  });
});

function submit(excludedDevices: string[]): Job {
  const job = newJob({ roleArn: prod.roleArn, instanceId: INSTANCE, excludedDevices });
  store.insert(job, clock.now());
  return store.get(job.id) as Job;
}

describe("a job that leaves volumes out", () => {
  it("asks CreateImage to leave out exactly the stored devices", async () => {
    const job = submit(["/dev/sdg"]);
    await watcher.tick();
    expect(images.callsTo("createImage").map((c) => c.args[0])).toEqual([
      expect.objectContaining({ instanceId: INSTANCE, excludedDevices: ["/dev/sdg"] }),
    ]);
    expect(store.get(job.id)?.state).toBe("pending");
    const [image] = images.imagesIn(PROD);
    // One snapshot for each volume kept: the root and /dev/sdf.
    expect(image?.snapshotIds).toHaveLength(2);
    expect(store.outboxForJob(job.id).map((m) => m.key)).toContain("creating");
  });

  it("refuses, without CreateImage, a device the instance does not have", async () => {
    const job = submit(["/dev/sdz"]);
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(store.get(job.id)).toMatchObject({
      state: "refused",
      finalReason: `/dev/sdz is not a volume of ${INSTANCE}. Pick the instance again to see its volumes now.`,
    });
  });

  it("refuses, without CreateImage, a job that would leave out the root volume", async () => {
    const job = submit(["/dev/xvda"]);
    await watcher.tick();
    expect(images.callsTo("createImage")).toHaveLength(0);
    expect(store.get(job.id)?.finalReason).toMatch(/root volume/);
  });
});
