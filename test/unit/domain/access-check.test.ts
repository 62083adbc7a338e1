/** `/ami check` in words: what AWS would allow, and, on a target with approvals, that an approval is needed. */
import { describe, expect, it } from "vitest";
import { checkImageAccess } from "../../../src/domain/access-check.js";
import { placeFor, testTarget } from "../../fakes/job-fixtures.js";
import { MemoryImageService } from "../../fakes/memory-image-service.js";

const INSTANCE = "i-0123456789abcdef0";
const requester = { userId: "U0ALICE", channelId: "C0OPS" };

describe("checkImageAccess", () => {
  it("says an approval is needed where the target asks for one", async () => {
    const gated = placeFor(
      testTarget({ approval: { approvers: { users: ["U0LEAD"], usergroups: [] }, expiresAfterMs: 60_000 } }),
      "eu-west-1",
    );
    const images = new MemoryImageService();
    images.addInstance(gated, { instanceId: INSTANCE, name: "web-1" });
    const result = await checkImageAccess(images, gated, requester, INSTANCE);
    expect(result.allowed).toBe(true);
    expect(result.message).toContain("needs an approver's approval");
    expect(images.callsTo("createImage")).toEqual([]);
  });

  it("says nothing of approvals where none is needed", async () => {
    const open = placeFor(testTarget(), "eu-west-1");
    const images = new MemoryImageService();
    images.addInstance(open, { instanceId: INSTANCE, name: "web-1" });
    const result = await checkImageAccess(images, open, requester, INSTANCE);
    expect(result).toMatchObject({ allowed: true });
    expect(result.message).not.toContain("approval");
  });
});
