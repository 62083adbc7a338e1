/**
 * What the modal carries between Slack and the bot: where /ami was typed, and which default name was
 * offered. It comes back inside requests anyone holding a view could forge, and the origin channel can
 * grant access (channel rules), so it is signed with an HMAC and anything unsigned or altered is ignored.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface ModalMetadata {
  /** The channel /ami was typed in. */
  readonly origin: string;
  /** The image-name field's version and the default name it was given. */
  readonly nameVersion: number;
  readonly autoName: string | undefined;
}

export interface MetadataCodec {
  encode(m: ModalMetadata): string;
  /** The metadata, or undefined when it is missing, malformed, too long or not signed by this bot. */
  decode(text: string | undefined): ModalMetadata | undefined;
}

// Slack's own limit on private_metadata.
const MAX_LENGTH = 3000;

export function createMetadataCodec(secret: string): MetadataCodec {
  const mac = (payload: string) => createHmac("sha256", secret).update(payload).digest("base64url");
  return {
    encode(m) {
      const payload = JSON.stringify({ o: m.origin, n: m.nameVersion, a: m.autoName });
      return JSON.stringify({ p: payload, s: mac(payload) });
    },
    decode(text) {
      if (!text || text.length > MAX_LENGTH) return undefined;
      try {
        const outer = JSON.parse(text) as { p?: unknown; s?: unknown };
        if (typeof outer.p !== "string" || typeof outer.s !== "string") return undefined;
        const expected = Buffer.from(mac(outer.p));
        const given = Buffer.from(outer.s);
        if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
        const raw = JSON.parse(outer.p) as { o?: unknown; n?: unknown; a?: unknown };
        if (typeof raw.o !== "string" || !/^[CGD][A-Z0-9]{2,20}$/.test(raw.o)) return undefined;
        const n =
          typeof raw.n === "number" && Number.isInteger(raw.n) && raw.n >= 0 && raw.n < 1000 ? raw.n : 0;
        const a = typeof raw.a === "string" && raw.a.length <= 128 ? raw.a : undefined;
        return { origin: raw.o, nameVersion: n, autoName: a };
      } catch {
        return undefined;
      }
    },
  };
}
