import { describe, expect, it } from "vitest";
import type { InstanceVolume } from "../../../src/domain/ports.js";
import {
  checkDeviceNames,
  excludedDevicesProblem,
  MAX_CHOOSABLE_VOLUMES,
  sortVolumes,
} from "../../../src/domain/volumes.js";

const instance = {
  instanceId: "i-0123456789abcdef0",
  rootDeviceName: "/dev/xvda",
  blockDevices: [
    { deviceName: "/dev/xvda", volumeId: "vol-0aaa" },
    { deviceName: "/dev/sdf", volumeId: "vol-0bbb" },
    { deviceName: "/dev/sdg", volumeId: "vol-0ccc" },
  ],
};

describe("excludedDevicesProblem", () => {
  it("accepts devices that are the instance's volumes other than its root", () => {
    expect(excludedDevicesProblem(["/dev/sdf"], instance)).toBeUndefined();
    expect(excludedDevicesProblem(["/dev/sdf", "/dev/sdg"], instance)).toBeUndefined();
    expect(excludedDevicesProblem([], instance)).toBeUndefined();
  });

  it("refuses a device the instance does not have, naming it and the instance", () => {
    expect(excludedDevicesProblem(["/dev/sdf", "/dev/sdz"], instance)).toBe(
      "/dev/sdz is not a volume of i-0123456789abcdef0. Pick the instance again to see its volumes now.",
    );
  });

  it("refuses the root device, which an image always includes", () => {
    expect(excludedDevicesProblem(["/dev/xvda"], instance)).toBe(
      "/dev/xvda is the root volume of i-0123456789abcdef0: an image always includes it.",
    );
  });

  it("refuses the root device even when its mapping is missing from the instance's list", () => {
    const rootless = { ...instance, blockDevices: instance.blockDevices.slice(1) };
    expect(excludedDevicesProblem(["/dev/xvda"], rootless)).toMatch(/root volume/);
  });

  it("refuses what cannot be a device name before comparing anything", () => {
    expect(excludedDevicesProblem(["/dev/sdf<@U1>"], instance)).toMatch(/is not a device name/);
    expect(excludedDevicesProblem([""], instance)).toMatch(/is not a device name/);
  });
});

describe("checkDeviceNames", () => {
  it("accepts the device names EC2 uses, on Linux and on Windows", () => {
    expect(checkDeviceNames(["/dev/sda1", "/dev/xvdba", "/dev/nvme1n1", "xvdf"])).toBeUndefined();
  });

  it("refuses more devices than the form can offer", () => {
    const many = Array.from({ length: MAX_CHOOSABLE_VOLUMES + 1 }, (_, i) => `/dev/sd${i}`);
    expect(checkDeviceNames(many)).toBe("11 volumes to leave out is more than the form offers (10).");
    expect(checkDeviceNames(many.slice(1))).toBeUndefined();
  });

  it("refuses control characters, spaces and over-long names", () => {
    for (const bad of ["/dev/sd f", "/dev/sdf\n", "x".repeat(65), "/dev/sdf`"])
      expect(checkDeviceNames([bad])).toMatch(/is not a device name/);
  });
});

describe("sortVolumes", () => {
  const volume = (deviceName: string, root = false): InstanceVolume => ({
    deviceName,
    volumeId: `vol-${deviceName.length}`,
    sizeGiB: 8,
    volumeType: "gp3",
    root,
  });

  it("puts the root first and the rest in device order", () => {
    const sorted = sortVolumes([volume("/dev/sdg"), volume("/dev/sdf"), volume("/dev/xvda", true)]);
    expect(sorted.map((v) => v.deviceName)).toEqual(["/dev/xvda", "/dev/sdf", "/dev/sdg"]);
  });
});
