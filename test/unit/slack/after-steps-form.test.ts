/**
 * The form's copy and share tick boxes: drawn from the chosen place's offer, unticked unless a retried job
 * had them, and read back with everything not offered refused under its field.
 */
import { describe, expect, it } from "vitest";
import {
  copyToBlockId,
  createImageModal,
  type ModalState,
  type PlaceOption,
  shareWithBlockIds,
} from "../../../src/slack/blocks/modal.js";
import { type AfterOffer, readAfterChoices, type StateValues } from "../../../src/slack/form-values.js";
import { ACTION, BLOCK } from "../../../src/slack/ids.js";

const KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OFFERING: PlaceOption = {
  targetName: "prod",
  region: "eu-west-1",
  accountId: "123456789012",
  copyTo: [
    { region: "eu-west-1", kmsKeyId: undefined },
    { region: "eu-central-1", kmsKeyId: undefined },
    { region: "us-east-1", kmsKeyId: KEY },
  ],
  shareWith: ["210987654321", "111122223333"],
};
const PLAIN: PlaceOption = { targetName: "plain", region: "eu-west-1", accountId: "123456789012" };

function modal(overrides: Partial<ModalState> = {}) {
  return createImageModal(
    {
      places: [OFFERING, PLAIN],
      selectedPlace: "prod|eu-west-1",
      instance: undefined,
      imageName: undefined,
      nameVersion: 0,
      channelId: undefined,
      ...overrides,
    },
    "{}",
  );
}

type View = ReturnType<typeof modal>;
const ids = (view: View) => view.blocks.map((b) => ("block_id" in b && b.block_id ? b.block_id : b.type));
const block = (view: View, id: string) =>
  view.blocks.find((b) => "block_id" in b && b.block_id === id) as
    | {
        optional?: boolean;
        label: { text: string };
        hint?: { text: string };
        element: Record<string, unknown>;
      }
    | undefined;
const optionsOf = (view: View, id: string) =>
  ((block(view, id)?.element.options ?? []) as { text: { text: string }; value: string }[]).map((o) => [
    o.value,
    o.text.text,
  ]);

describe("the form's copy and share fields", () => {
  it("offers each copy region but the place's own, and each account, after the tags and none ticked", () => {
    const view = modal();
    expect(ids(view)).toEqual([
      BLOCK.where,
      BLOCK.instance,
      BLOCK.imageName,
      BLOCK.description,
      BLOCK.reboot,
      BLOCK.tags,
      "copy_to.prod|eu-west-1",
      "share_with.prod|eu-west-1",
      BLOCK.channel,
      BLOCK.check,
    ]);
    const copy = block(view, "copy_to.prod|eu-west-1");
    expect(copy).toMatchObject({
      type: "input",
      optional: true,
      label: { text: "Copy to other regions" },
      element: { type: "checkboxes", action_id: ACTION.copyTo },
    });
    expect(copy?.hint?.text).toContain("Unticked: the image stays in eu-west-1 only.");
    expect(optionsOf(view, "copy_to.prod|eu-west-1")).toEqual([
      ["eu-central-1", "eu-central-1"],
      ["us-east-1", "us-east-1 · encrypted with your key"],
    ]);
    expect(copy?.element).not.toHaveProperty("initial_options");
    const share = block(view, "share_with.prod|eu-west-1");
    expect(share).toMatchObject({
      optional: true,
      label: { text: "Share with accounts" },
      element: { type: "checkboxes", action_id: ACTION.shareWith },
    });
    expect(optionsOf(view, "share_with.prod|eu-west-1")).toEqual([
      ["210987654321", "210987654321"],
      ["111122223333", "111122223333"],
    ]);
    expect(share?.element).not.toHaveProperty("initial_options");
  });

  it("draws neither field for a place whose target offers nothing", () => {
    const view = modal({ selectedPlace: "plain|eu-west-1" });
    expect(ids(view).filter((id) => /^(copy_to|share_with)/.test(id))).toEqual([]);
  });

  it("leaves out the copy field when the only region offered is the place's own", () => {
    const own: PlaceOption = {
      ...OFFERING,
      copyTo: [{ region: "eu-west-1", kmsKeyId: undefined }],
      shareWith: [],
    };
    expect(ids(modal({ places: [own] })).filter((id) => /^(copy_to|share_with)/.test(id))).toEqual([]);
  });

  it("gives each place its own block ids, so choosing another place starts unticked", () => {
    const central: PlaceOption = { ...OFFERING, region: "eu-central-1" };
    const view = modal({ places: [OFFERING, central], selectedPlace: "prod|eu-central-1" });
    expect(optionsOf(view, "copy_to.prod|eu-central-1").map(([v]) => v)).toEqual(["eu-west-1", "us-east-1"]);
    expect(block(view, "copy_to.prod|eu-west-1")).toBeUndefined();
  });

  it("ticks a retried job's choices that are still offered, and nothing else", () => {
    const view = modal({ copyTo: ["us-east-1", "ap-south-1"], shareWith: ["111122223333", "999999999999"] });
    expect(block(view, "copy_to.prod|eu-west-1")?.element.initial_options).toEqual([
      {
        text: { type: "plain_text", text: "us-east-1 · encrypted with your key", emoji: true },
        value: "us-east-1",
      },
    ]);
    expect(block(view, "share_with.prod|eu-west-1")?.element.initial_options).toEqual([
      { text: { type: "plain_text", text: "111122223333", emoji: true }, value: "111122223333" },
    ]);
  });

  it("puts accounts ten to a field, as Slack allows no more tick boxes in one", () => {
    const accounts = Array.from({ length: 20 }, (_, i) => String(200000000000 + i));
    const view = modal({ places: [{ ...OFFERING, shareWith: accounts }] });
    expect(shareWithBlockIds("prod|eu-west-1", 20)).toEqual([
      "share_with.prod|eu-west-1",
      "share_with.prod|eu-west-1.2",
    ]);
    expect(optionsOf(view, "share_with.prod|eu-west-1").map(([v]) => v)).toEqual(accounts.slice(0, 10));
    expect(optionsOf(view, "share_with.prod|eu-west-1.2").map(([v]) => v)).toEqual(accounts.slice(10));
    expect(block(view, "share_with.prod|eu-west-1.2")?.label.text).toBe("Share with more accounts");
  });
});

describe("readAfterChoices", () => {
  const offer: AfterOffer = {
    place: "prod|eu-west-1",
    region: "eu-west-1",
    copyTo: ["eu-central-1", "us-east-1"],
    shareWith: ["210987654321", "111122223333"],
  };
  const copyBlock = copyToBlockId("prod|eu-west-1");
  const shareBlock = "share_with.prod|eu-west-1";
  const ticked = (blockId: string, actionId: string, values: unknown[] | unknown): StateValues => ({
    [blockId]: {
      [actionId]: {
        type: "checkboxes",
        selected_options: Array.isArray(values)
          ? values.map((value) => ({ text: { type: "plain_text", text: String(value) }, value }))
          : values,
      } as never,
    },
  });
  const copies = (...values: unknown[]) => ticked(copyBlock, ACTION.copyTo, values);
  const shares = (...values: unknown[]) => ticked(shareBlock, ACTION.shareWith, values);

  it("chooses nothing when the form has no such fields or nothing is ticked", () => {
    expect(readAfterChoices({}, offer)).toEqual({ copyTo: [], shareWith: [], errors: {} });
    expect(readAfterChoices({ ...copies(), ...shares() }, offer)).toEqual({
      copyTo: [],
      shareWith: [],
      errors: {},
    });
    const unset = { [copyBlock]: { [ACTION.copyTo]: { type: "checkboxes", selected_options: null } } };
    expect(readAfterChoices(unset, offer).errors).toEqual({});
  });

  it("returns the ticked regions and accounts in the offer's order", () => {
    expect(
      readAfterChoices({ ...copies("us-east-1", "eu-central-1"), ...shares("111122223333") }, offer),
    ).toEqual({
      copyTo: ["eu-central-1", "us-east-1"],
      shareWith: ["111122223333"],
      errors: {},
    });
  });

  it.each([
    [
      "a region not offered",
      copies("us-west-2"),
      copyBlock,
      "“us-west-2” is not one of the regions offered for copies here.",
    ],
    [
      "the image's own region",
      copies("eu-west-1"),
      copyBlock,
      "The image is made in eu-west-1: it cannot also be copied there.",
    ],
    ["a region twice", copies("us-east-1", "us-east-1"), copyBlock, "“us-east-1” is ticked twice."],
    [
      "more regions than offered",
      copies("us-east-1", "eu-central-1", "us-east-1"),
      copyBlock,
      "3 choices are ticked, but only 2 are offered here.",
    ],
    [
      "a value that is not text",
      copies(42),
      copyBlock,
      "ami-bot could not read what is ticked here. Untick the boxes and tick them again.",
    ],
    [
      "options that are not a list",
      ticked(copyBlock, ACTION.copyTo, "us-east-1"),
      copyBlock,
      "ami-bot could not read what is ticked here. Untick the boxes and tick them again.",
    ],
    [
      "an account not offered",
      shares("999999999999"),
      shareBlock,
      "“999999999999” is not one of the accounts offered for sharing here.",
    ],
    [
      "all as an account",
      shares("all"),
      shareBlock,
      "“all” would make the image public: ami-bot never shares images publicly.",
    ],
    [
      "a long value with control characters",
      shares(`12\u0000${"9".repeat(100)}`),
      shareBlock,
      `“12?${"9".repeat(37)}” is not one of the accounts offered for sharing here.`,
    ],
  ])("refuses %s under its field, choosing nothing", (_, values, blockId, message) => {
    // With a valid tick in the other field, which is not chosen either.
    const other = blockId === copyBlock ? shares("210987654321") : copies("us-east-1");
    expect(readAfterChoices({ ...other, ...values }, offer)).toEqual({
      copyTo: [],
      shareWith: [],
      errors: { [blockId]: message },
    });
  });

  it("refuses ticks in a field drawn for another place", () => {
    const stale = ticked("copy_to.prod|eu-central-1", ACTION.copyTo, ["us-east-1"]);
    expect(readAfterChoices(stale, offer).errors).toEqual({
      "copy_to.prod|eu-central-1":
        "These were listed for another account or region. Choose the account and region again, then tick what you want.",
    });
  });

  it("refuses any tick when the place offers nothing", () => {
    const none: AfterOffer = { ...offer, copyTo: [], shareWith: [] };
    expect(readAfterChoices(copies("eu-central-1"), none).errors).toEqual({
      [copyBlock]: "“eu-central-1” is not one of the regions offered for copies here.",
    });
  });

  it("reads accounts across their fields, and refuses one ticked in two", () => {
    const accounts = Array.from({ length: 12 }, (_, i) => String(200000000000 + i));
    const many: AfterOffer = { ...offer, shareWith: accounts };
    const second = "share_with.prod|eu-west-1.2";
    const both = { ...shares(accounts[0]), ...ticked(second, ACTION.shareWith, [accounts[11]]) };
    expect(readAfterChoices(both, many).shareWith).toEqual([accounts[0], accounts[11]]);
    const twice = { ...shares(accounts[11]), ...ticked(second, ACTION.shareWith, [accounts[11]]) };
    expect(readAfterChoices(twice, many).errors).toEqual({ [second]: `“${accounts[11]}” is ticked twice.` });
  });
});
