// What an environment deploys and how it moves to the next one: image pins (`swarmform:images`), the pin
// policy of each environment, the promotion order, and network encryption of the app stacks' own networks.
// Pure functions over the parsed config and the imported stacks.
import { parseImageRef } from "./compose-values";
import { keyOrigin } from "./errors";
import { ConfigIssue, Environment, NetworkSpec, StackSpec } from "./types";

/** Environments in promotion order: a promotion goes one step to the right (unless forced). */
export const PROMOTION_ORDER: readonly Environment[] = ["dev", "staging", "prod"];

/** Environments that deploy only pinned images: a pin in `swarmform:images`, or a stack-file image that obeys the policy. */
export const PINNED_ENVIRONMENTS: readonly Environment[] = ["staging", "prod"];

/** A pin: `TAG`, or `TAG@sha256:<64 hex>`. */
export const IMAGE_PIN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}(@sha256:[a-f0-9]{64})?$/;

/** `images.<stack>.<service>` pins, as `swarmform:images` holds them (stack name -> service key -> pin). */
export type ImagePins = Readonly<Record<string, Readonly<Record<string, string>>>>;

/** The config key of one pin, without namespace: `images.maxime.api`. */
export function pinKey(stack: string, service: string): string {
  return `images.${stack}.${service}`;
}

/** The pins as a flat list of `[key, stack, service, pin]`, in file order. */
export function flattenPins(
  images: ImagePins,
): { key: string; stack: string; service: string; pin: string }[] {
  return Object.entries(images).flatMap(([stack, services]) =>
    Object.entries(services).map(([service, pin]) => ({ key: pinKey(stack, service), stack, service, pin })),
  );
}

/**
 * Why a pin is not allowed in an environment, or undefined when it is: prod takes only pins with a digest
 * (`TAG@sha256:...`), staging takes no `latest`.
 */
export function pinProblem(pin: string, environment: Environment): string | undefined {
  if (!IMAGE_PIN.test(pin))
    return `must be TAG or TAG@sha256:<64 hex digits>, e.g. alpha-1.1.11@sha256:0123...; got ${JSON.stringify(pin)}`;
  const [tag, digest] = pin.split("@");
  if (environment === "prod" && !digest)
    return `prod accepts only digests: "${pin}" has none; pin TAG@sha256:<digest> (promote it from staging)`;
  if (environment === "staging" && tag === "latest")
    return `staging does not accept latest; pin a version tag (and its digest)`;
  return undefined;
}

/** `registry:5000/popcubeapi:alpha-1.0@sha256:...` with the tag and digest of `pin` in place of the ref's own. */
export function imageWithPin(ref: string, pin: string): string {
  const parsed = parseImageRef(ref);
  if (!parsed.ok) return ref;
  const { registry, repository } = parsed.value;
  return `${registry ? `${registry}/` : ""}${repository}:${pin}`;
}

/**
 * Applies `swarmform:images` to the imported stacks: a pinned service deploys the stack file's repository
 * at the pinned tag (and digest). A pin for a stack or service that does not exist, a pin that the
 * environment's policy refuses, and (in staging and prod) a service whose image is not pinned enough are
 * issues at the pin's key.
 */
export function applyImagePins(
  stacks: readonly StackSpec[],
  images: ImagePins,
  environment: Environment,
): { stacks: StackSpec[]; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  for (const { key, stack, service, pin } of flattenPins(images)) {
    const s = stacks.find((x) => x.name === stack);
    if (!s) {
      const known = stacks.map((x) => x.name).join(", ") || "(none)";
      issues.push({ origin: keyOrigin(key), message: `no stack "${stack}" is deployed; stacks: ${known}` });
    } else if (!s.services.some((x) => x.key === service)) {
      const known = s.services.map((x) => x.key).join(", ");
      issues.push({
        origin: keyOrigin(key),
        message: `stack "${stack}" has no service "${service}"; services: ${known}`,
      });
    }
    const problem = pinProblem(pin, environment);
    if (problem) issues.push({ origin: keyOrigin(key), message: problem });
  }
  const out = stacks.map((s) => ({
    ...s,
    services: s.services.map((svc) => {
      const pin = images[s.name]?.[svc.key];
      if (pin === undefined) {
        const problem = unpinnedProblem(svc.image, environment);
        if (problem)
          issues.push({
            origin: keyOrigin(pinKey(s.name, svc.key)),
            message: `${svc.name} runs ${svc.image}, unpinned: ${problem}; pin it here (swarmform promote copies pins)`,
          });
        return svc;
      }
      return IMAGE_PIN.test(pin) ? { ...svc, image: imageWithPin(svc.image, pin) } : svc;
    }),
  }));
  return { stacks: out, issues };
}

/**
 * Why a service without a pin may not run its stack file's image in `environment`, or undefined: staging
 * and prod deploy only pinned images, so the image must itself satisfy the pin policy (a digest for prod,
 * a tag other than latest, or a digest, for staging).
 */
export function unpinnedProblem(image: string, environment: Environment): string | undefined {
  if (!PINNED_ENVIRONMENTS.includes(environment)) return undefined;
  const parsed = parseImageRef(image);
  if (!parsed.ok) return undefined; // reported at the image's own line
  const { tag, digest } = parsed.value;
  if (environment === "prod" && !digest) return "prod accepts only digests";
  if (environment === "staging" && !digest && (tag === undefined || tag === "latest"))
    return "staging does not accept latest (or no tag)";
  return undefined;
}

/** Whether overlay networks are encrypted by default: `encryptNetworks`, else true in prod only. */
export function encryptByDefault(encryptNetworks: boolean | undefined, environment: Environment): boolean {
  return encryptNetworks ?? environment === "prod";
}

/**
 * Encrypts the app stacks' own networks when the environment encrypts by default, except those listed in
 * `plaintextNetworks` (by physical name, e.g. `maxime_backend`). A stack file's `driver_opts: encrypted`
 * always wins.
 */
export function encryptStackNetworks(
  stacks: readonly StackSpec[],
  encrypt: boolean,
  plaintext: readonly string[],
): StackSpec[] {
  const enc = (n: NetworkSpec): NetworkSpec => ({
    ...n,
    encrypted: n.encrypted || (encrypt && !plaintext.includes(n.physicalName)),
  });
  return stacks.map((s) => ({ ...s, networks: s.networks.map(enc) }));
}

/** Names in `plaintextNetworks` that match no platform network (logical name) and no stack network (physical). */
export function checkPlaintextNetworks(
  plaintext: readonly string[],
  platform: readonly NetworkSpec[],
  stacks: readonly StackSpec[],
): ConfigIssue[] {
  const known = [
    ...platform.map((n) => n.name),
    ...stacks.flatMap((s) => s.networks.map((n) => n.physicalName)),
  ];
  return plaintext.flatMap((name, i) =>
    known.includes(name)
      ? []
      : [
          {
            origin: keyOrigin(`plaintextNetworks[${i}]`),
            message: `no network "${name}"; networks: ${known.join(", ") || "(none)"} (platform networks by name, stack networks as <stack>_<network>)`,
          },
        ],
  );
}

/**
 * Why promoting from `from` to `to` is refused, or undefined when it may go: both must be in the
 * promotion order, `to` after `from`, and (unless forced) the very next one.
 */
export function promotionProblem(from: Environment, to: Environment, force: boolean): string | undefined {
  const i = PROMOTION_ORDER.indexOf(from);
  const j = PROMOTION_ORDER.indexOf(to);
  const order = PROMOTION_ORDER.join(" -> ");
  if (i < 0) return `environment "${from}" is not in the promotion order ${order}`;
  if (j < 0) return `environment "${to}" is not in the promotion order ${order}`;
  if (j <= i) return `${from} -> ${to} goes backwards; the promotion order is ${order}`;
  if (j > i + 1 && !force)
    return `${from} -> ${to} skips ${PROMOTION_ORDER.slice(i + 1, j).join(", ")}; promote one step at a time (${order}), or pass --force`;
  return undefined;
}
