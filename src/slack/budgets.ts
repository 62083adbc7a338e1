/**
 * How long Slack handlers wait for AWS or Slack before answering with what they have. Slack wants an
 * answer within 3 s, so production keeps these short; tests against in-process fakes on a busy machine
 * relax them, so a cold first call does not send a test down the "too slow" path by accident.
 */
export interface SlackBudgets {
  /** Submit: the instance check, then the request is accepted and the watcher checks again. */
  readonly instanceCheckMs: number;
  /** The form: listing the picked instance's volumes, else the whole instance is imaged. */
  readonly volumeListMs: number;
  /** Try again: looking for a free image name, else the job's name stays. */
  readonly nameCheckMs: number;
  /** chat.getPermalink for links to jobs' threads, which are left out past it. */
  readonly permalinkMs: number;
  /** Each of Slack's answers about a person or channel before an ack; past it, it grants nothing. */
  readonly peopleLookupMs: number;
  /** The picker's typing pause: only the newest keystroke of a burst within it is searched. */
  readonly pickerSettleMs: number;
  /** A picker search from its arrival (Slack's 3 s for options, less the trip back); AWS gets at least 1 s. */
  readonly pickerAnswerMs: number;
}

export const DEFAULT_SLACK_BUDGETS: SlackBudgets = Object.freeze({
  instanceCheckMs: 1_000,
  volumeListMs: 2_000,
  nameCheckMs: 2_000,
  permalinkMs: 1_000,
  peopleLookupMs: 1_500,
  pickerSettleMs: 250,
  pickerAnswerMs: 2_700,
});

/** The defaults with `overrides` over them; a field left undefined keeps its default. */
export function slackBudgets(overrides: Partial<SlackBudgets> = {}): SlackBudgets {
  const given = Object.entries(overrides).filter(([, ms]) => ms !== undefined);
  return { ...DEFAULT_SLACK_BUDGETS, ...Object.fromEntries(given) };
}
