/**
 * What the modal carries between Slack and the bot: where /ami was typed, and which default name was
 * offered. It comes back inside requests anyone holding a view could forge, and the origin channel can
 * grant access (channel rules), so it is signed with an HMAC and anything unsigned or altered is ignored.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { isInstanceId } from "../domain/image-request.js";
import type { InstanceVolume } from "../domain/ports.js";
import { isDeviceName, MAX_CHOOSABLE_VOLUMES } from "../domain/volumes.js";
import type { VolumeField } from "./blocks/volumes.js";

export interface ModalMetadata {
  /** The channel /ami was typed in. */
  readonly origin: string;
  /** The image-name field's version and the default name it was given. */
  readonly nameVersion: number;
  readonly autoName: string | undefined;
  /** The chosen instance's volumes as the form shows them, so a redraw (a check, say) keeps the field. */
  readonly volumes?: VolumeField | undefined;
}

export interface MetadataCodec {
  encode(m: ModalMetadata): string;
  /** The metadata, or undefined when it is missing, malformed, too long or not signed by this bot. */
  decode(text: string | undefined): ModalMetadata | undefined;
  /** Any other small form's metadata (the deny form's job id), signed the same way under its own kind. */
  seal(kind: string, value: string): string;
  /** The value sealed under `kind`, or undefined when anything about it is not as this bot wrote it. */
  unseal(kind: string, text: string | undefined): string | undefined;
}

// Slack's own limit on private_metadata.
const MAX_LENGTH = 3000;

export function createMetadataCodec(secret: string): MetadataCodec {
  const mac = (payload: string) => createHmac("sha256", secret).update(payload).digest("base64url");
  const verified = (text: string | undefined): string | undefined => {
    if (!text || text.length > MAX_LENGTH) return undefined;
    try {
      const outer = JSON.parse(text) as { p?: unknown; s?: unknown };
      if (typeof outer.p !== "string" || typeof outer.s !== "string") return undefined;
      const expected = Buffer.from(mac(outer.p));
      const given = Buffer.from(outer.s);
      return expected.length === given.length && timingSafeEqual(expected, given) ? outer.p : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    seal(kind, value) {
      const payload = JSON.stringify({ k: kind, v: value });
      return JSON.stringify({ p: payload, s: mac(payload) });
    },
    unseal(kind, text) {
      const payload = verified(text);
      if (payload === undefined) return undefined;
      const raw = JSON.parse(payload) as { k?: unknown; v?: unknown };
      return raw.k === kind && typeof raw.v === "string" ? raw.v : undefined;
    },
    encode(m) {
      const payload = JSON.stringify({
        o: m.origin,
        n: m.nameVersion,
        a: m.autoName,
        ...(m.volumes && { v: encodeVolumes(m.volumes) }),
      });
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
        const raw = JSON.parse(outer.p) as { o?: unknown; n?: unknown; a?: unknown; v?: unknown };
        if (typeof raw.o !== "string" || !/^[CGD][A-Z0-9]{2,20}$/.test(raw.o)) return undefined;
        const n =
          typeof raw.n === "number" && Number.isInteger(raw.n) && raw.n >= 0 && raw.n < 1000 ? raw.n : 0;
        const a = typeof raw.a === "string" && raw.a.length <= 128 ? raw.a : undefined;
        return { origin: raw.o, nameVersion: n, autoName: a, volumes: decodeVolumes(raw.v) };
      } catch {
        return undefined;
      }
    },
  };
}

/** A volume as [device, volume id, size, type]: short, as the metadata has 3,000 characters in all. */
type PackedVolume = [string, string, number | null, string | null];

function packVolume(v: InstanceVolume): PackedVolume {
  return [v.deviceName, v.volumeId, v.sizeGiB ?? null, v.volumeType ?? null];
}

function encodeVolumes(field: VolumeField): unknown {
  if (!field.listed) return { i: field.instanceId };
  return {
    i: field.instanceId,
    r: field.root ? packVolume(field.root) : null,
    c: field.choosable.map(packVolume),
    x: field.notShown,
  };
}

function unpackVolume(raw: unknown, root: boolean): InstanceVolume | undefined {
  if (!Array.isArray(raw) || raw.length !== 4) return undefined;
  const [device, id, size, type] = raw as unknown[];
  if (typeof device !== "string" || !isDeviceName(device)) return undefined;
  if (typeof id !== "string" || !/^vol-[0-9a-f]{1,32}$/.test(id)) return undefined;
  if (size !== null && !(typeof size === "number" && Number.isInteger(size) && size >= 0)) return undefined;
  if (type !== null && !(typeof type === "string" && /^[a-z0-9-]{1,16}$/.test(type))) return undefined;
  return {
    deviceName: device,
    volumeId: id,
    sizeGiB: size ?? undefined,
    volumeType: type ?? undefined,
    root,
  };
}

/** The volume field, or undefined when absent or not in the shape encodeVolumes writes. */
function decodeVolumes(raw: unknown): VolumeField | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const v = raw as { i?: unknown; r?: unknown; c?: unknown; x?: unknown };
  if (typeof v.i !== "string" || !isInstanceId(v.i)) return undefined;
  if (v.c === undefined) return { instanceId: v.i, listed: false };
  if (!Array.isArray(v.c) || v.c.length > MAX_CHOOSABLE_VOLUMES) return undefined;
  const choosable = v.c.map((c) => unpackVolume(c, false));
  const root = v.r === null ? undefined : unpackVolume(v.r, true);
  const notShown = typeof v.x === "number" && Number.isInteger(v.x) && v.x >= 0 && v.x < 1000 ? v.x : -1;
  if ((v.r !== null && !root) || notShown < 0 || choosable.some((c) => c === undefined)) return undefined;
  return {
    instanceId: v.i,
    listed: true,
    root,
    choosable: choosable as InstanceVolume[],
    notShown,
  };
}
