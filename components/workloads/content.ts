// Deterministic derivations from content: hashed names for immutable swarm objects, htpasswd lines.
import * as bcrypt from "bcryptjs";
import { createHash } from "crypto";

/** First 10 hex digits of the SHA-256 of `content`. */
export function contentHash(content: string | Buffer): string {
  return createHash("sha256").update(content).digest("hex").slice(0, 10);
}

/**
 * `<base>-<hash>`: swarm configs and secrets are immutable, so a change of content must get a new name
 * (a new object, then a rolling update of the services that use it) instead of an in-place update.
 */
export function hashedName(base: string, content: string | Buffer): string {
  return `${base}-${contentHash(content)}`;
}

/** bcrypt cost of generated htpasswd lines. */
export const BCRYPT_COST = 10;

/**
 * The bcrypt salt for `user`/`password`, derived from both (never random), so the same password always gives
 * the same hash and a second `pulumi up` changes nothing.
 */
export function deterministicSalt(user: string, password: string, cost = BCRYPT_COST): string {
  const digest = createHash("sha256").update(`${password}\u0000${user}`).digest();
  return `$2y$${String(cost).padStart(2, "0")}$${bcrypt.encodeBase64(digest.subarray(0, 16), 16)}`;
}

/** One htpasswd line `user:$2y$...` (bcrypt, the only scheme both the registry and Traefik accept). */
export function htpasswdLine(user: string, password: string): string {
  if (user.includes(":")) throw new Error(`htpasswd user "${user}" must not contain ":"`);
  return `${user}:${bcrypt.hashSync(password, deterministicSalt(user, password))}`;
}

/** Standard base64, as the docker provider expects for Secret/ServiceConfig `data`. */
export function base64(content: string | Buffer): string {
  return Buffer.from(content).toString("base64");
}
