/**
 * Choosing the volumes, as the EC2 console does: an image may leave out any of the instance's EBS volumes
 * except its root. The names come back from a form anyone could forge, so each must be a device of the
 * instance as AWS describes it, and never the root, before CreateImage is asked to leave it out.
 */
import type { InstanceDetails, InstanceVolume } from "./ports.js";

/** At most this many volumes are offered for leaving out (Slack's limit on checkboxes); the rest stay in. */
export const MAX_CHOOSABLE_VOLUMES = 10;

// What EC2 calls devices ("/dev/sdf", "/dev/xvda", "xvdf" on Windows); anything else cannot be one.
const DEVICE_NAME = /^[A-Za-z0-9/._-]{1,64}$/;

export function isDeviceName(value: string): boolean {
  return DEVICE_NAME.test(value);
}

/** What is wrong with the names themselves (before AWS is asked), or undefined. */
export function checkDeviceNames(devices: readonly string[]): string | undefined {
  if (devices.length > MAX_CHOOSABLE_VOLUMES)
    return `${devices.length} volumes to leave out is more than the form offers (${MAX_CHOOSABLE_VOLUMES}).`;
  const bad = devices.find((d) => !isDeviceName(d));
  if (bad !== undefined) return `“${bad.slice(0, 40)}” is not a device name. Pick the instance again.`;
  return undefined;
}

/**
 * Why these devices cannot be left out of an image of this instance (one of them is not its volume, or is
 * its root), or undefined when they can.
 */
export function excludedDevicesProblem(
  devices: readonly string[],
  instance: Pick<InstanceDetails, "instanceId" | "rootDeviceName" | "blockDevices">,
): string | undefined {
  const names = checkDeviceNames(devices);
  if (names) return names;
  for (const device of devices) {
    if (device === instance.rootDeviceName)
      return `${device} is the root volume of ${instance.instanceId}: an image always includes it.`;
    if (!instance.blockDevices.some((b) => b.deviceName === device))
      return `${device} is not a volume of ${instance.instanceId}. Pick the instance again to see its volumes now.`;
  }
  return undefined;
}

/** Root first, then by device name: the order the form lists them in. */
export function sortVolumes(volumes: readonly InstanceVolume[]): InstanceVolume[] {
  return [...volumes].sort(
    (a, b) => Number(b.root) - Number(a.root) || a.deviceName.localeCompare(b.deviceName, "en"),
  );
}
