/**
 * Which regions exist, per partition (aws, aws-cn, aws-us-gov, …), from the SDK's own partitions data, so
 * the list grows with the SDK rather than by hand. The SDK exports only a lookup by region name (its
 * endpoint resolver's `partition`), not the table itself, so regions can be checked but not enumerated.
 */
import { partition as lookUpPartition } from "@aws-sdk/core/client";

/**
 * The partition that lists `region`, or undefined when none does. A region launched after the installed
 * SDK is unknown until the SDK is updated.
 */
export function partitionOf(region: string): string | undefined {
  // aws-global, aws-cn-global, …: endpoint pseudo-regions, not places that hold instances.
  if (region.endsWith("-global")) return undefined;
  const info: object & { name: string } = lookUpPartition(region);
  // For a name it does not list, the SDK still answers, with the partition whose pattern the name fits
  // (eu-fake-1 fits aws). Only a listed region comes back with its description.
  return "description" in info ? info.name : undefined;
}

/** True when `region` is a real region of `partition` (cn-north-1 is one of aws-cn, not of aws). */
export function isKnownRegion(partition: string, region: string): boolean {
  return partitionOf(region) === partition;
}
