/**
 * The Home tab's listeners: app_home_opened publishes the person's tab, and its "Create image" button opens
 * the same form as `/ami`, with the person's App Home DM (the view's private_metadata) as where they asked.
 */
import type {
  AllMiddlewareArgs,
  BlockAction,
  ButtonAction,
  SlackActionMiddlewareArgs,
  SlackEventMiddlewareArgs,
} from "@slack/bolt";
import { deniedMessage } from "../../domain/access.js";
import { audit, placesFor, principalOf, type SlackDeps } from "../deps.js";
import { openCreateForm } from "../views/open-create-form.js";
import { isHomeChannel } from "./home-tabs.js";

type EventArgs = SlackEventMiddlewareArgs<"app_home_opened"> & AllMiddlewareArgs;
type ActionArgs = SlackActionMiddlewareArgs<BlockAction<ButtonAction>> & AllMiddlewareArgs;

export const NO_HOME_CHANNEL_TEXT =
  "ami-bot could not tell which conversation this Home tab belongs to. Open ami-bot's Home tab again and click *Create image*, or type `/ami` in a channel.";

/** app_home_opened: only the Home tab (not the Messages tab) is drawn by ami-bot. */
export function createHomeOpened(deps: SlackDeps) {
  return async ({ event }: EventArgs): Promise<void> => {
    if (event.tab !== "home" || !deps.homes) return;
    await deps.homes.opened(event.user, event.channel);
  };
}

/** "Create image" on the Home tab: the /ami form, for the places the person may use now. */
export function createHomeCreate(deps: SlackDeps) {
  return async ({ ack, body, client }: ActionArgs): Promise<void> => {
    await ack();
    const userId = body.user.id;
    // private_metadata comes back as the bot published it; only a DM id is taken (a DM grants nothing).
    const given = body.view?.type === "home" ? body.view.private_metadata : undefined;
    const remembered = deps.homes?.channelOf?.(userId);
    const channelId = isHomeChannel(given) ? given : isHomeChannel(remembered) ? remembered : undefined;
    const who = await principalOf(deps, userId, channelId);
    const places = placesFor(deps, who);
    audit(deps, {
      user: userId,
      action: "open_modal_home",
      allowed: places.length > 0,
      reason: places.length > 0 ? `${places.length} places allowed` : "no target allows this user",
    });
    if (places.length === 0 || !channelId) {
      await tellByDm(deps, client, userId, places.length === 0 ? deniedMessage(who) : NO_HOME_CHANNEL_TEXT);
      return;
    }
    await openCreateForm(deps, client, { triggerId: body.trigger_id, userId, channelId, places });
  };
}

/** A click on the Home tab has no channel to answer in: the answer goes to the person's DM with ami-bot. */
async function tellByDm(
  deps: SlackDeps,
  client: ActionArgs["client"],
  userId: string,
  text: string,
): Promise<void> {
  try {
    await client.chat.postMessage({ channel: userId, text });
  } catch (error) {
    deps.logger.warn({ err: error, user: userId }, "could not answer a Home tab click");
  }
}
