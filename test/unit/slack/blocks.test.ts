import { describe, expect, it } from "vitest";
import type { Job, JobState } from "../../../src/domain/job.js";
import {
  consoleImageUrl,
  EMPTY_VALUE,
  escapeText,
  formatDuration,
  literal,
  prose,
} from "../../../src/slack/blocks/format.js";
import {
  type MessageContext,
  replyMessage,
  requesterNote,
  rootMessage,
  type SlackMessage,
} from "../../../src/slack/blocks/messages.js";
import {
  createImageModal,
  instanceOptionText,
  type ModalState,
  nameBlockId,
  type PlaceOption,
} from "../../../src/slack/blocks/modal.js";
import { ACTION, BLOCK, CREATE_VIEW } from "../../../src/slack/ids.js";
import { CLOCK_START } from "../../fakes/fixed-clock.js";
import { makeJob, testTarget } from "../../fakes/job-fixtures.js";

const MIN = 60_000;
const target = testTarget({ name: "prod", accountId: "123456789012" });
const ctx: MessageContext = {
  target,
  now: CLOCK_START + 30 * MIN,
  watcher: { slowAfterMs: 4 * 60 * MIN, slowPollIntervalMs: 5 * MIN, giveUpAfterMs: 24 * 60 * MIN },
};

function job(overrides: Partial<Job> = {}): Job {
  return makeJob({
    id: "job-42",
    requestedBy: "U0ALICE",
    targetName: "prod",
    region: "eu-west-1",
    instanceId: "i-0123456789abcdef0",
    instanceName: "web-1",
    imageName: "web-1 nightly",
    ...overrides,
  });
}

/** Everything a person could read in a message: its fallback text and every mrkdwn/plain text in its blocks. */
function visible(message: SlackMessage): string {
  const texts: string[] = [message.text];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      const o = value as Record<string, unknown>;
      if (typeof o.text === "string") texts.push(o.text);
      for (const v of Object.values(o)) walk(v);
    }
  };
  walk(message.blocks);
  return texts.join("\n");
}

describe("rootMessage", () => {
  it("shows who asked, for which instance, where, the image name, the reboot choice and the job id", () => {
    const text = visible(rootMessage(job(), ctx));
    expect(text).toContain("<@U0ALICE>");
    expect(text).toContain("`web-1` (`i-0123456789abcdef0`)");
    expect(text).toContain("prod (123456789012) · eu-west-1");
    expect(text).toContain("*Image name*\n`web-1 nightly`");
    expect(text).toContain("*Reboot*\nYes");
    expect(text).toContain("Job `job-42`");
  });

  it("says the instance will not reboot when no-reboot was chosen", () => {
    expect(visible(rootMessage(job({ noReboot: true }), ctx))).toContain("*Reboot*\nNo");
  });

  it("shows the instance id alone when the instance has no name", () => {
    const text = visible(rootMessage(job({ instanceName: undefined }), ctx));
    expect(text).toContain("*AMI of `i-0123456789abcdef0`*");
  });

  it("shows the target name alone when the target is no longer configured", () => {
    const text = visible(rootMessage(job(), { ...ctx, target: undefined }));
    expect(text).toContain("*Account / region*\nprod · eu-west-1");
    expect(text).not.toContain("123456789012");
  });

  it("lists the tags when the job has some", () => {
    const text = visible(
      rootMessage(
        job({
          tags: [
            { key: "team", value: "web" },
            { key: "env", value: "prod" },
          ],
        }),
        ctx,
      ),
    );
    expect(text).toContain("*Tags*\n`team=web`, `env=prod`");
    expect(visible(rootMessage(job(), ctx))).not.toContain("*Tags*");
  });

  it("escapes Slack's control characters when the instance name has them", () => {
    const text = visible(rootMessage(job({ instanceName: "<!channel> & co" }), ctx));
    expect(text).toContain("`&lt;!channel&gt; &amp; co`");
  });

  const STATUS: [JobState, Partial<Job>, RegExp][] = [
    ["queued", {}, /:hourglass_flowing_sand: Creating the image/],
    ["pending", { imageId: "ami-0abc" }, /Image `ami-0abc` is pending/],
    [
      "available",
      { imageId: "ami-0abc", finishedAt: CLOCK_START + 12 * MIN },
      /:white_check_mark: Image <https:\/\/eu-west-1\.console\.aws\.amazon\.com\/ec2\/home\?region=eu-west-1#ImageDetails:imageId=ami-0abc\|`ami-0abc`> is available \(took 12 min 0 s\)/,
    ],
    ["failed", { finalReason: "Disk broke." }, /:x: The image failed: Disk broke\./],
    ["refused", { finalReason: "No access." }, /:no_entry: Not created: No access\./],
    [
      "timed_out",
      { finalReason: "Too slow.", finishedAt: CLOCK_START + 24 * 60 * MIN },
      /:warning: Gave up after 24 h 0 min: Too slow\./,
    ],
  ];

  it.each(STATUS)("shows the %s status when the job is in that state", (state, extra, expected) => {
    expect(visible(rootMessage(job({ state, ...extra }), ctx))).toMatch(expected);
  });

  it("shows the progress reached when a pending image has some", () => {
    expect(visible(rootMessage(job({ state: "pending", imageId: "ami-0abc", progress: 50 }), ctx))).toContain(
      "(snapshots 50%+)",
    );
  });

  it("gives a plain fallback text without the emoji when notifications show it", () => {
    expect(rootMessage(job({ state: "refused", finalReason: "No." }), ctx).text).toBe(
      "<@U0ALICE> asked for an AMI of `web-1`: Not created: No.",
    );
  });
});

describe("replyMessage", () => {
  const pending = job({ state: "pending", imageId: "ami-0abc" });

  it.each([
    ["creating", job(), /will reboot/],
    ["creating", job({ noReboot: true }), /without rebooting/],
    ["pending", pending, /Image `ami-0abc` is pending/],
    ["progress:50", pending, /^Snapshots are 50% done\.$/],
    ["slow", pending, /Still pending after 4 h 0 min.*every 5 min 0 s for up to 24 h 0 min/],
    [
      "checks_failing",
      job({ state: "pending", lastError: "Throttled." }),
      /can't check on the image right now: Throttled\./,
    ],
    ["failed", job({ state: "failed", finalReason: "Disk broke." }), /^:x: The image failed\. Disk broke\.$/],
    [
      "refused",
      job({ state: "refused", finalReason: "No access." }),
      /The image was not created\. No access\./,
    ],
    [
      "timed_out",
      job({ state: "timed_out", finalReason: "Gave up.", imageId: "ami-0abc" }),
      /Gave up\. Check the image in the EC2 console \(<https:/,
    ],
  ])("says the right thing when the notice is %s", (key, j, expected) => {
    const message = replyMessage(j, key, ctx);
    expect(message.text).toMatch(expected);
    expect(message.broadcast).toBe(false);
  });

  it.each([
    ["failed", job({ state: "failed", finalReason: "Disk broke." })],
    ["refused", job({ state: "refused", finalReason: "An image named `web-1 nightly` already exists." })],
    ["timed_out", job({ state: "timed_out", finalReason: "Gave up.", imageId: "ami-0abc" })],
  ])("offers a Try again button carrying the job id under the %s reply, after its text", (key, j) => {
    const message = replyMessage(j, key, ctx);
    expect(message.blocks).toEqual([
      { type: "section", text: { type: "mrkdwn", text: message.text, verbatim: true } },
      {
        type: "actions",
        block_id: BLOCK.tryAgain,
        elements: [
          {
            type: "button",
            action_id: "try_again",
            text: { type: "plain_text", text: "Try again", emoji: true },
            value: "job-42",
          },
        ],
      },
    ]);
  });

  it.each([
    ["creating", job()],
    ["pending", pending],
    ["progress:50", pending],
    ["slow", pending],
    ["checks_failing", job({ state: "pending", lastError: "Throttled." })],
    ["available", job({ state: "available", imageId: "ami-0abc", finishedAt: CLOCK_START })],
  ])("offers no button under the %s reply", (key, j) => {
    const message = replyMessage(j, key, ctx);
    expect(JSON.stringify(message.blocks)).not.toContain("try_again");
    expect(message.blocks?.map((b) => b.type)).toEqual(["section"]);
  });

  it("broadcasts the available reply with a link to the image in the region's EC2 console", () => {
    const done = job({ state: "available", imageId: "ami-0abc", finishedAt: CLOCK_START + 90 * 1000 });
    const message = replyMessage(done, "available", ctx);
    expect(message.broadcast).toBe(true);
    expect(message.text).toBe(
      ":white_check_mark: Image <https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0abc|`ami-0abc`> (`web-1 nightly`) is available, after 1 min 30 s.",
    );
  });

  it("links to the GovCloud console when the target is in that partition", () => {
    const gov = testTarget({ partition: "aws-us-gov", regions: ["us-gov-west-1"] });
    const done = job({
      state: "available",
      region: "us-gov-west-1",
      imageId: "ami-0abc",
      finishedAt: CLOCK_START,
    });
    expect(replyMessage(done, "available", { ...ctx, target: gov }).text).toContain(
      "https://us-gov-west-1.console.amazonaws-us-gov.com/ec2/home?region=us-gov-west-1#ImageDetails:imageId=ami-0abc",
    );
  });
});

describe("requesterNote", () => {
  it("explains the unusable channel and how to invite the bot when the thread moved to a DM", () => {
    const note = requesterNote(job(), "channel_unusable:C0PRIVATE").text;
    expect(note).toContain("I can't post in <#C0PRIVATE>");
    expect(note).toContain("`web-1 nightly`");
    expect(note).toContain("/invite @ami-bot");
  });

  it("says the image failed, or that the bot stopped following it, in those end states", () => {
    expect(
      requesterNote(job({ state: "failed", finalReason: "Snapshot error." }), "requester_note").text,
    ).toBe("The AMI of `web-1` (`web-1 nightly`) failed: Snapshot error.");
    expect(
      requesterNote(job({ state: "timed_out", finalReason: "Still pending." }), "requester_note").text,
    ).toBe("ami-bot stopped following the AMI of `web-1` (`web-1 nightly`): Still pending.");
  });

  it("gives AWS's reason when the request was refused", () => {
    expect(
      requesterNote(job({ state: "refused", finalReason: "Instance is terminated." }), "requester_note").text,
    ).toBe("Your AMI request for `web-1` (`web-1 nightly`) did not go through: Instance is terminated.");
  });
});

/** Every mrkdwn text object in a message's blocks. */
function mrkdwnObjects(message: SlackMessage): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      const o = value as Record<string, unknown>;
      if (o.type === "mrkdwn") found.push(o);
      for (const v of Object.values(o)) walk(v);
    }
  };
  walk(message.blocks);
  return found;
}

describe("user-supplied values in the thread", () => {
  // Each value as someone could set it (an image name, a tag, an instance's Name tag), and what must reach
  // Slack inside the code span: & < > escaped, backticks swapped for a look-alike, line breaks as spaces.
  const HOSTILE: [string, string, string][] = [
    ["@here", "@here", "@here"],
    ["<!channel>", "<!channel>", "&lt;!channel&gt;"],
    ["a user mention", "<@U123>", "&lt;@U123&gt;"],
    ["a URL", "https://evil.example/x", "https://evil.example/x"],
    ["a bare domain", "evil.example", "evil.example"],
    ["formatting", "*b* _i_ ~s~", "*b* _i_ ~s~"],
    ["backticks", "`x`", "ˋxˋ"],
    ["a line break", "a\nb", "a b"],
  ];
  const ID = "i-0123456789abcdef0";
  const CONSOLE =
    "https://eu-west-1.console.aws.amazon.com/ec2/home?region=eu-west-1#ImageDetails:imageId=ami-0abc";

  it.each(HOSTILE)("renders %s literally in the root message", (_, value, inside) => {
    const message = rootMessage(
      job({ instanceName: value, imageName: value, tags: [{ key: "team", value }] }),
      ctx,
    );
    expect(message.text).toBe(`<@U0ALICE> asked for an AMI of \`${inside}\`: Creating the image…`);
    const texts = mrkdwnObjects(message).map((o) => o.text);
    expect(texts).toContain(`*AMI of \`${inside}\` (\`${ID}\`)*, asked by <@U0ALICE>`);
    expect(texts).toContain(`*Image name*\n\`${inside}\``);
    expect(texts).toContain(`*Tags*\n\`team=${inside}\``);
    expect(mrkdwnObjects(message).every((o) => o.verbatim === true)).toBe(true);
  });

  it.each(HOSTILE)("renders %s literally in the available reply", (_, value, inside) => {
    const done = job({
      state: "available",
      imageName: value,
      imageId: "ami-0abc",
      finishedAt: CLOCK_START + 90 * 1000,
    });
    const text = `:white_check_mark: Image <${CONSOLE}|\`ami-0abc\`> (\`${inside}\`) is available, after 1 min 30 s.`;
    expect(replyMessage(done, "available", ctx)).toEqual({
      text,
      blocks: [{ type: "section", text: { type: "mrkdwn", text, verbatim: true } }],
      broadcast: true,
    });
  });

  it.each(HOSTILE)("renders %s literally in both forms of the requester note", (_, value, inside) => {
    const moved = requesterNote(job({ imageName: value }), "channel_unusable:C0PRIVATE");
    const movedText =
      `I can't post in <#C0PRIVATE> (I'm not a member, or it is archived), so I'll keep you updated about ` +
      `\`${inside}\` here. To get updates in the channel next time, invite me there with \`/invite @ami-bot\`.`;
    expect(moved).toEqual({
      text: movedText,
      blocks: [{ type: "section", text: { type: "mrkdwn", text: movedText, verbatim: true } }],
    });
    const refused = requesterNote(
      job({ state: "refused", instanceName: value, imageName: value, finalReason: "No access." }),
      "requester_note",
    );
    const refusedText = `Your AMI request for \`${inside}\` (\`${inside}\`) did not go through: No access.`;
    expect(refused).toEqual({
      text: refusedText,
      blocks: [{ type: "section", text: { type: "mrkdwn", text: refusedText, verbatim: true } }],
    });
  });

  it("escapes a reason and keeps it verbatim when it quotes someone's value", () => {
    const refused = job({ state: "refused", finalReason: "An image named <!here> & co already exists." });
    const reply = replyMessage(refused, "refused", ctx);
    const text =
      ":no_entry: The image was not created. An image named &lt;!here&gt; &amp; co already exists.";
    expect(reply.text).toBe(text);
    expect(reply.blocks?.[0]).toEqual({ type: "section", text: { type: "mrkdwn", text, verbatim: true } });
    expect(mrkdwnObjects(rootMessage(refused, ctx)).map((o) => o.text)).toContain(
      ":no_entry: Not created: An image named &lt;!here&gt; &amp; co already exists.",
    );
  });

  it("gives every reply one verbatim section that repeats its text", () => {
    const pending = job({ state: "pending", imageId: "ami-0abc", lastError: "Throttled." });
    for (const key of [
      "creating",
      "pending",
      "progress:50",
      "slow",
      "checks_failing",
      "failed",
      "timed_out",
    ]) {
      const message = replyMessage(pending, key, ctx);
      // A final failure adds a "Try again" button under the section (see replyMessage's tests).
      expect(message.blocks?.[0]).toEqual({
        type: "section",
        text: { type: "mrkdwn", text: message.text, verbatim: true },
      });
    }
  });

  it("counts the tags that do not fit rather than cutting one when there are too many to show", () => {
    const tags = Array.from({ length: 50 }, (_, i) => ({
      key: `k${String(i).padStart(2, "0")}`,
      value: "v".repeat(256),
    }));
    const field = mrkdwnObjects(rootMessage(job({ tags }), ctx))
      .map((o) => String(o.text))
      .find((t) => t.startsWith("*Tags*"));
    // Each span is 262 characters plus ", ": seven fit in the field's budget.
    expect(field).toBe(
      `*Tags*\n${tags
        .slice(0, 7)
        .map((t) => `\`${t.key}=${t.value}\``)
        .join(", ")} and 43 more`,
    );
    expect(field?.length).toBeLessThanOrEqual(2000);
  });

  it("keeps the status section under Slack's 3,000 characters when the reason is very long", () => {
    const status = mrkdwnObjects(rootMessage(job({ state: "failed", finalReason: "<".repeat(5000) }), ctx))
      .map((o) => String(o.text))
      .find((t) => t.startsWith(":x:"));
    expect(status?.length).toBeLessThanOrEqual(3000);
    expect(status?.endsWith("&lt;…")).toBe(true);
  });
});

describe("createImageModal", () => {
  const eu: PlaceOption = { targetName: "prod", region: "eu-west-1", accountId: "123456789012" };
  const us: PlaceOption = { targetName: "prod", region: "us-east-1", accountId: "123456789012" };

  function modal(overrides: Partial<ModalState> = {}) {
    return createImageModal(
      {
        places: [eu, us],
        selectedPlace: undefined,
        instance: undefined,
        imageName: undefined,
        nameVersion: 0,
        channelId: undefined,
        ...overrides,
      },
      '{"v":1}',
    );
  }

  const block = (view: ReturnType<typeof modal>, blockId: string) =>
    view.blocks.find((b) => "block_id" in b && b.block_id === blockId) as Record<string, unknown> | undefined;
  const element = (view: ReturnType<typeof modal>, blockId: string) =>
    block(view, blockId)?.element as Record<string, unknown> | undefined;

  it("says before anything is sent that the chosen target needs an approval, and from whom", () => {
    const gated: PlaceOption = { ...eu, approvers: "one of <!subteam^S0OPS>, <@U0LEAD>" };
    const view = modal({ places: [gated, us], selectedPlace: "prod|eu-west-1" });
    const note = block(view, "approval_note") as { elements: { text: string; verbatim: boolean }[] };
    expect(note.elements[0]?.text).toContain(
      "Nothing is created until one of <!subteam^S0OPS>, <@U0LEAD> approves",
    );
    expect(note.elements[0]?.verbatim).toBe(true);
    expect(block(modal({ selectedPlace: "prod|eu-west-1" }), "approval_note")).toBeUndefined();
  });

  it("fills in a retried job's description, tags, reboot tick and unticked volumes", () => {
    const ask: PlaceOption = { ...eu, reboot: "ask" };
    const root = { deviceName: "/dev/xvda", volumeId: "vol-0001", sizeGiB: 8, volumeType: "gp3", root: true };
    const sdf = {
      deviceName: "/dev/sdf",
      volumeId: "vol-0002",
      sizeGiB: 100,
      volumeType: "gp3",
      root: false,
    };
    const sdg = { deviceName: "/dev/sdg", volumeId: "vol-0003", sizeGiB: 50, volumeType: "gp3", root: false };
    const view = modal({
      places: [ask],
      instance: { id: "i-0123456789abcdef0", label: "web-1 (i-0123456789abcdef0)" },
      description: "before the upgrade",
      tagsText: "team=web\ncost-center=42",
      reboot: true,
      volumes: { instanceId: "i-0123456789abcdef0", listed: true, root, choosable: [sdf, sdg], notShown: 0 },
      excludedDevices: ["/dev/sdg"],
    });
    expect(element(view, BLOCK.description)?.initial_value).toBe("before the upgrade");
    expect(element(view, BLOCK.tags)?.initial_value).toBe("team=web\ncost-center=42");
    expect(element(view, BLOCK.reboot)?.initial_options).toMatchObject([{ value: "reboot" }]);
    const volumes = element(view, "volumes.i-0123456789abcdef0") as { initial_options?: { value: string }[] };
    expect(volumes.initial_options?.map((o) => o.value)).toEqual(["/dev/sdf"]);
    // Every volume left out: no initial_options at all (Slack refuses an empty list).
    const none = modal({
      instance: { id: "i-0123456789abcdef0", label: "i-0123456789abcdef0" },
      volumes: { instanceId: "i-0123456789abcdef0", listed: true, root, choosable: [sdf], notShown: 0 },
      excludedDevices: ["/dev/sdf"],
    });
    expect(element(none, "volumes.i-0123456789abcdef0")).not.toHaveProperty("initial_options");
    // A form not retried starts empty, unticked and with every volume ticked.
    const fresh = modal({ places: [ask] });
    expect(element(fresh, BLOCK.description)).not.toHaveProperty("initial_value");
    expect(element(fresh, BLOCK.tags)).not.toHaveProperty("initial_value");
    expect(element(fresh, BLOCK.reboot)).not.toHaveProperty("initial_options");
  });

  it("uses the create view's callback id and keeps the private metadata", () => {
    const view = modal();
    expect(view).toMatchObject({ type: "modal", callback_id: CREATE_VIEW, private_metadata: '{"v":1}' });
  });

  it("has one input per field, with the ids the submission handler reads", () => {
    const ids = modal().blocks.map((b) => ("block_id" in b ? b.block_id : b.type));
    expect(ids).toEqual([
      BLOCK.where,
      BLOCK.instance,
      BLOCK.imageName,
      BLOCK.description,
      BLOCK.reboot,
      BLOCK.tags,
      BLOCK.channel,
      BLOCK.check,
    ]);
    expect(element(modal(), BLOCK.tags)).toMatchObject({ action_id: ACTION.tags, multiline: true });
  });

  it("shows the access check's verdict under its button only after a check", () => {
    expect(modal().blocks.some((b) => "block_id" in b && b.block_id === BLOCK.checkResult)).toBe(false);
    const checked = modal({ checkResult: { allowed: false, message: "Not allowed <here>" } });
    expect(checked.blocks.at(-1)).toEqual({
      type: "context",
      block_id: BLOCK.checkResult,
      elements: [{ type: "mrkdwn", text: ":no_entry: Not allowed &lt;here&gt;" }],
    });
  });

  it("offers a place select, defaulting to the first place, when the person may use several", () => {
    expect(element(modal(), BLOCK.where)).toMatchObject({
      type: "static_select",
      action_id: ACTION.where,
      options: [{ value: "prod|eu-west-1" }, { value: "prod|us-east-1" }],
      initial_option: { value: "prod|eu-west-1" },
    });
    expect(element(modal({ selectedPlace: "prod|us-east-1" }), BLOCK.where)).toMatchObject({
      initial_option: { value: "prod|us-east-1", text: { text: "prod (123456789012) · us-east-1" } },
    });
  });

  it("hides the place select and names the place when the person may use only one", () => {
    const view = modal({ places: [eu] });
    expect(block(view, BLOCK.where)).toBeUndefined();
    expect(view.blocks[0]).toEqual({
      type: "context",
      elements: [{ type: "mrkdwn", text: "Account and region: *prod (123456789012) · eu-west-1*" }],
    });
  });

  it("loads instances from the first keystroke and keeps a chosen instance", () => {
    expect(element(modal(), BLOCK.instance)).toMatchObject({
      type: "external_select",
      action_id: ACTION.instance,
      min_query_length: 0,
    });
    expect(element(modal(), BLOCK.instance)).not.toHaveProperty("initial_option");
    expect(
      element(modal({ instance: { id: "i-0123456789abcdef0", label: "web-1" } }), BLOCK.instance),
    ).toMatchObject({ initial_option: { value: "i-0123456789abcdef0", text: { text: "web-1" } } });
    expect(block(modal(), BLOCK.instance)).toMatchObject({ dispatch_action: true });
  });

  it("offers no reboot choice on a target that never reboots, and says why", () => {
    const view = modal({ places: [eu] });
    expect(element(view, BLOCK.reboot)).toBeUndefined();
    expect(block(view, BLOCK.reboot)).toMatchObject({
      type: "context",
      elements: [{ type: "mrkdwn", text: expect.stringContaining("never restarts instances here") }],
    });
  });

  it("on an `ask` target offers an unticked reboot box whose confirm dialog names the instance", () => {
    const ask: PlaceOption = { ...eu, reboot: "ask" };
    const view = modal({
      places: [ask],
      instance: { id: "i-0123456789abcdef0", label: "web-1 (i-0123456789abcdef0) · running · t3.micro" },
    });
    expect(block(view, BLOCK.reboot)).toMatchObject({ type: "input", optional: true });
    const reboot = element(view, BLOCK.reboot);
    expect(reboot).toMatchObject({
      type: "checkboxes",
      action_id: ACTION.reboot,
      options: [{ value: "reboot" }],
      confirm: {
        style: "danger",
        text: { text: expect.stringMatching(/^web-1 \(i-0123456789abcdef0\) will restart/) },
      },
    });
    expect(reboot).not.toHaveProperty("initial_options");
    // Before an instance is chosen the dialog still warns, without a name.
    expect(element(modal({ places: [ask] }), BLOCK.reboot)).toMatchObject({
      confirm: { text: { text: expect.stringMatching(/^The instance you chose will restart/) } },
    });
  });

  it("follows the selected place's reboot policy when the person may use several targets", () => {
    const lab: PlaceOption = {
      targetName: "lab",
      region: "eu-west-1",
      accountId: "210987654321",
      reboot: "ask",
    };
    expect(element(modal({ places: [eu, lab] }), BLOCK.reboot)).toBeUndefined();
    expect(element(modal({ places: [eu, lab], selectedPlace: "lab|eu-west-1" }), BLOCK.reboot)).toMatchObject(
      {
        type: "checkboxes",
      },
    );
    expect(block(modal({ places: [eu, lab] }), BLOCK.where)).toMatchObject({ dispatch_action: true });
  });

  it("lists the tag keys a target allows in the tags hint", () => {
    const view = modal({ places: [{ ...eu, tagKeys: ["team", "app:*"] }] });
    expect(block(view, BLOCK.tags)).toMatchObject({
      hint: { text: expect.stringContaining("Keys allowed here: team, app:*") },
    });
  });

  it("asks for a channel when /ami was typed in a direct message", () => {
    const view = modal({ channelId: "D0DIRECT01" });
    expect(element(view, BLOCK.channel)).not.toHaveProperty("initial_conversation");
    expect(element(view, BLOCK.channel)).not.toHaveProperty("default_to_current_conversation");
    expect(block(view, BLOCK.channel)).toMatchObject({
      hint: {
        text: "Choose a channel for the updates: ami-bot posts them in channels, not in direct messages.",
      },
    });
  });

  it("starts the channel select on the chosen channel when one is known", () => {
    expect(element(modal({ channelId: "C0UPDATES" }), BLOCK.channel)).toMatchObject({
      type: "conversations_select",
      action_id: ACTION.channel,
      initial_conversation: "C0UPDATES",
    });
    expect(element(modal(), BLOCK.channel)).toMatchObject({ default_to_current_conversation: true });
    expect(element(modal(), BLOCK.channel)).not.toHaveProperty("initial_conversation");
  });

  it("gives the name field a new block id when the name is replaced", () => {
    expect(nameBlockId(0)).toBe("image_name");
    expect(nameBlockId(3)).toBe("image_name.3");
    const view = modal({ nameVersion: 2, imageName: "web-1 2026-11-28 0240 UTC" });
    expect(block(view, BLOCK.imageName)).toBeUndefined();
    expect(element(view, "image_name.2")).toMatchObject({
      action_id: ACTION.imageName,
      max_length: 128,
      initial_value: "web-1 2026-11-28 0240 UTC",
    });
    expect(block(view, "image_name.2")).toMatchObject({ optional: true });
  });

  it("limits the description to EC2's 255 characters", () => {
    expect(element(modal(), BLOCK.description)).toMatchObject({
      action_id: ACTION.description,
      max_length: 255,
    });
  });
});

describe("instanceOptionText", () => {
  // Known bug in src/slack/blocks/modal.ts (not ours to edit): a short name keeps its trailing space and the
  // tail starts with one, so the label reads "web-1  (i-…)". Drop `.fails` once instanceOptionText is fixed.
  it("shows the name, id, state and type with single spaces when they fit", () => {
    expect(
      instanceOptionText({
        instanceId: "i-0123456789abcdef0",
        name: "web-1",
        state: "running",
        instanceType: "t3.micro",
      }),
    ).toBe("web-1 (i-0123456789abcdef0) · running · t3.micro");
  });

  it("shortens the name but keeps the id when the text is over 75 characters", () => {
    const text = instanceOptionText({
      instanceId: "i-0123456789abcdef0",
      name: "n".repeat(100),
      state: "stopped",
    });
    expect(text.length).toBeLessThanOrEqual(75);
    expect(text).toContain("(i-0123456789abcdef0) · stopped");
  });

  it("shows the id, state and type when the instance has no name", () => {
    expect(
      instanceOptionText({ instanceId: "i-0123456789abcdef0", state: "running", instanceType: undefined }),
    ).toBe("(i-0123456789abcdef0) · running");
  });
});

describe("format helpers", () => {
  it("escapes &, < and > when text goes into mrkdwn", () => {
    expect(escapeText("a<b>&c")).toBe("a&lt;b&gt;&amp;c");
  });

  it.each([
    ["web-1", "`web-1`"],
    ["a & <b>", "`a &amp; &lt;b&gt;`"],
    ["`code`", "`ˋcodeˋ`"],
    ["line\r\nbreak\tand\u2028more", "`line break and more`"],
    ["  padded  ", "`padded`"],
    ["", EMPTY_VALUE],
    [" \n ", EMPTY_VALUE],
  ])("shows %j as %s when it is a literal value", (value, shown) => {
    expect(literal(value)).toBe(shown);
  });

  it("escapes running text and cuts it at the limit when it is too long", () => {
    expect(prose("a <b> & c")).toBe("a &lt;b&gt; &amp; c");
    expect(prose("abcdef", 4)).toBe("abc…");
    expect(prose("abcd", 4)).toBe("abcd");
    expect(prose("ab<cd", 5)).toBe("ab…");
    expect(prose("<<<", 10)).toBe("&lt;&lt;…");
    expect(prose("ab😀cd", 4)).toBe("ab…");
  });

  it.each([
    [0, "0 s"],
    [59_400, "59 s"],
    [90_000, "1 min 30 s"],
    [3_660_000, "1 h 1 min"],
    [-5, "0 s"],
  ])("formats %i ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("links to the China console when the partition is aws-cn", () => {
    expect(consoleImageUrl("aws-cn", "cn-north-1", "ami-1")).toBe(
      "https://cn-north-1.console.amazonaws.cn/ec2/home?region=cn-north-1#ImageDetails:imageId=ami-1",
    );
  });
});

describe("the thread of a job with approvals and cancel", () => {
  const gated = testTarget({
    name: "prod",
    accountId: "123456789012",
    approval: { approvers: { users: ["U0LEAD"], usergroups: ["S0OPS"] }, expiresAfterMs: 4 * 60 * MIN },
  });
  const gatedCtx: MessageContext = { ...ctx, target: gated };
  const actionIds = (m: SlackMessage) =>
    (m.blocks ?? [])
      .flatMap((b) => ("elements" in b && b.type === "actions" ? b.elements : []))
      .map((e) => (e as { action_id?: string }).action_id);

  it.each([
    ["awaiting_approval", ["job_approve", "job_deny", "job_cancel"]],
    ["queued", ["job_cancel"]],
    ["pending", ["job_cancel"]],
    ["cancelling", []],
    ["available", []],
    ["denied", []],
    ["expired", []],
    ["cancelled", []],
  ] as [JobState, string[]][])("offers on the root of a %s job: %j", (state, ids) => {
    const message = rootMessage(
      job({ state, imageId: "ami-0abc", approvalExpiresAt: CLOCK_START }),
      gatedCtx,
    );
    expect(actionIds(message)).toEqual(ids);
  });

  it("names who must approve and until when on the root, and who decided once decided", () => {
    const waiting = rootMessage(
      job({ state: "awaiting_approval", approvalExpiresAt: Date.UTC(2026, 11, 2, 14, 32) }),
      gatedCtx,
    );
    expect(JSON.stringify(waiting.blocks)).toContain(
      "Waiting for approval by one of <!subteam^S0OPS>, <@U0LEAD>, until Wed 2 Dec 14:32 UTC",
    );
    // On the day itself, the time alone.
    const today = rootMessage(
      job({ state: "awaiting_approval", approvalExpiresAt: CLOCK_START + 60 * MIN }),
      { ...gatedCtx, now: CLOCK_START },
    );
    expect(JSON.stringify(today.blocks)).toContain("until 03:40 UTC.");
    const decided = rootMessage(
      job({
        state: "denied",
        decision: "denied",
        decidedBy: "U0LEAD",
        decidedAt: Date.UTC(2026, 11, 2, 9, 5),
        finalReason: "freeze <!here>",
      }),
      gatedCtx,
    );
    const text = JSON.stringify(decided.blocks);
    expect(text).toContain("Denied by <@U0LEAD> at 09:05 UTC");
    expect(text).toContain("freeze &lt;!here&gt;");
  });

  it("escapes a deny reason in the thread and mentions the requester", () => {
    const reply = replyMessage(
      job({
        state: "denied",
        decidedBy: "U0LEAD",
        decidedAt: CLOCK_START,
        finalReason: "<https://x|click> *now*",
      }),
      "denied",
      gatedCtx,
    );
    expect(reply.text).toContain("<@U0ALICE>, <@U0LEAD> denied this");
    expect(reply.text).toContain("&lt;https://x|click&gt;");
  });

  it("tells what a cancel left behind, and offers Try again after an expiry only", () => {
    const left = replyMessage(
      job({
        state: "cancelled",
        imageId: "ami-0abc",
        cancelledBy: "U0ALICE",
        cancelledAt: CLOCK_START,
        finalReason: "It was deregistered, but AWS kept the snapshots snap-1; delete them.",
      }),
      "cancelled",
      gatedCtx,
    );
    expect(left.text).toContain("Image `ami-0abc`: It was deregistered, but AWS kept the snapshots snap-1");
    expect(actionIds(replyMessage(job({ state: "expired" }), "expired", gatedCtx))).toEqual(["try_again"]);
    expect(actionIds(replyMessage(job({ state: "denied" }), "denied", gatedCtx))).toEqual([]);
  });
});
