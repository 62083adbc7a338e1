import { describe, expect, it } from "vitest";
import { isKnownRegion, partitionOf } from "../../../src/aws/regions.js";

describe("partitionOf", () => {
  it("names the partition that lists a region", () => {
    expect(partitionOf("eu-west-1")).toBe("aws");
    expect(partitionOf("cn-north-1")).toBe("aws-cn");
    expect(partitionOf("us-gov-west-1")).toBe("aws-us-gov");
    expect(partitionOf("eusc-de-east-1")).toBe("aws-eusc");
  });

  it("returns undefined when a name only fits a partition's pattern", () => {
    expect(partitionOf("eu-fake-1")).toBeUndefined();
    expect(partitionOf("cn-fake-9")).toBeUndefined();
  });

  it("returns undefined when the name is an endpoint pseudo-region or not a region at all", () => {
    expect(partitionOf("aws-global")).toBeUndefined();
    expect(partitionOf("aws-cn-global")).toBeUndefined();
    expect(partitionOf("Ireland")).toBeUndefined();
  });
});

describe("isKnownRegion", () => {
  it("accepts cn-north-1 and refuses eu-west-1 when the partition is aws-cn", () => {
    expect(isKnownRegion("aws-cn", "cn-north-1")).toBe(true);
    expect(isKnownRegion("aws-cn", "eu-west-1")).toBe(false);
  });

  it("refuses a region of another partition or a made-up one when the partition is aws", () => {
    expect(isKnownRegion("aws", "us-east-1")).toBe(true);
    expect(isKnownRegion("aws", "cn-north-1")).toBe(false);
    expect(isKnownRegion("aws", "eu-fake-1")).toBe(false);
  });
});
