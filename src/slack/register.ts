import type { App, BlockAction, ButtonAction, ExternalSelectAction, StaticSelectAction } from "@slack/bolt";
import { createCheckAccess } from "./actions/check-access.js";
import { createInstanceSelected } from "./actions/instance-selected.js";
import { createDenyButton, createDenySubmission, createJobButton } from "./actions/job-decisions.js";
import { createPlaceSelected } from "./actions/place-selected.js";
import { createTryAgain } from "./actions/try-again.js";
import { createAmiCommand } from "./commands/ami.js";
import type { SlackDeps } from "./deps.js";
import { createHomeCreate, createHomeOpened } from "./home/home-listeners.js";
import { ACTION, COMMAND, CREATE_VIEW, DENY_VIEW } from "./ids.js";
import { createInstanceOptions } from "./options/instance-options.js";
import { createImageSubmission } from "./views/create-image.js";

/** Every listener of the bot, one line each. */
export function registerListeners(app: App, deps: SlackDeps): void {
  const hooks = { onJobChanged: deps.onJobChanged };
  app.command(COMMAND, createAmiCommand(deps));
  app.options({ type: "block_suggestion", action_id: ACTION.instance }, createInstanceOptions(deps));
  app.action<BlockAction<ExternalSelectAction>>(ACTION.instance, createInstanceSelected(deps));
  app.action<BlockAction<StaticSelectAction>>(ACTION.where, createPlaceSelected(deps));
  app.action<BlockAction<ButtonAction>>(ACTION.check, createCheckAccess(deps));
  app.action<BlockAction<ButtonAction>>(ACTION.tryAgain, createTryAgain(deps));
  app.action<BlockAction<ButtonAction>>(ACTION.approve, createJobButton(deps, hooks, "approve"));
  app.action<BlockAction<ButtonAction>>(ACTION.cancel, createJobButton(deps, hooks, "cancel"));
  app.action<BlockAction<ButtonAction>>(ACTION.deny, createDenyButton(deps));
  app.view({ type: "view_submission", callback_id: CREATE_VIEW }, createImageSubmission(deps));
  app.view({ type: "view_submission", callback_id: DENY_VIEW }, createDenySubmission(deps, hooks));
  app.event("app_home_opened", createHomeOpened(deps));
  app.action<BlockAction<ButtonAction>>(ACTION.homeCreate, createHomeCreate(deps));
}
