/**
 * What the modal carries between Slack and the bot. It comes back from Slack, so it is parsed defensively
 * and only used for convenience (where /ami was typed, which default name was offered), never for access.
 */
export interface ModalMetadata {
  /** The channel /ami was typed in. */
  readonly origin: string;
  /** The image-name field's version and the default name it was given. */
  readonly nameVersion: number;
  readonly autoName: string | undefined;
}

const MAX_LENGTH = 3000;

export function encodeMetadata(m: ModalMetadata): string {
  return JSON.stringify({ o: m.origin, n: m.nameVersion, a: m.autoName });
}

export function decodeMetadata(text: string | undefined): ModalMetadata | undefined {
  if (!text || text.length > MAX_LENGTH) return undefined;
  try {
    const raw = JSON.parse(text) as { o?: unknown; n?: unknown; a?: unknown };
    if (typeof raw.o !== "string" || !/^[CGD][A-Z0-9]{2,20}$/.test(raw.o)) return undefined;
    const n = typeof raw.n === "number" && Number.isInteger(raw.n) && raw.n >= 0 && raw.n < 1000 ? raw.n : 0;
    const a = typeof raw.a === "string" && raw.a.length <= 128 ? raw.a : undefined;
    return { origin: raw.o, nameVersion: n, autoName: a };
  } catch {
    return undefined;
  }
}
