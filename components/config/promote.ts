// Promotion: copies what the source environment pins (`swarmform:images`, the only promotable key) into the
// stack file of the next environment. The target file is edited as a YAML document (comments, key order
// and every other key are kept), never re-dumped. Pure: text in, text out.
import { isMap, isScalar, parse as parseYaml, parseDocument, Document, Scalar } from "yaml";
import { flattenPins, pinKey, pinProblem, promotionProblem } from "./environments";
import { ConfigIssue, Environment, ENVIRONMENTS } from "./types";

/** The config keys that promotion copies (without namespace). */
export const PROMOTABLE_KEYS = ["images"] as const;

/** One stack config file, as text. */
export interface PromotionFile {
  /** Pulumi stack name, e.g. `dev`. */
  readonly stack: string;
  /** Path shown in messages, e.g. `Pulumi.dev.yaml`. */
  readonly file: string;
  readonly text: string;
}

/** One pin that changes (old undefined: the target had none). */
export interface PromotionChange {
  readonly key: string;
  readonly old?: string;
  readonly new: string;
}

export interface PromotionPlan {
  /** The target file's new text (the old text when nothing changes or there are issues). */
  readonly text: string;
  readonly changes: PromotionChange[];
  /** When not empty, the promotion is refused and nothing may be written. */
  readonly issues: ConfigIssue[];
}

const IMAGES = ["config", "swarmform:images"];

function parse(f: PromotionFile, issues: ConfigIssue[]): Document | undefined {
  // failsafe: every scalar is a string, so a tag such as 1.10 is read as written, not as a number.
  const doc = parseDocument(f.text, { schema: "failsafe" });
  if (doc.errors.length > 0) {
    for (const e of doc.errors)
      issues.push({
        origin: { file: f.file, line: e.linePos?.[0].line ?? 1 },
        message: `YAML: ${e.message}`,
      });
    return undefined;
  }
  return doc;
}

function environmentOf(doc: Document, f: PromotionFile, issues: ConfigIssue[]): Environment | undefined {
  const env = doc.getIn(["config", "swarmform:environment"]);
  if (typeof env === "string" && (ENVIRONMENTS as readonly string[]).includes(env)) return env as Environment;
  issues.push({
    origin: { key: "swarmform:environment" },
    message: `${f.file} must set swarmform:environment to one of ${ENVIRONMENTS.join(", ")}; got ${JSON.stringify(env)}`,
  });
  return undefined;
}

/** The pins of a document: stack -> service -> pin (strings only). */
function pinsOf(doc: Document): Record<string, Record<string, string>> {
  const node = doc.getIn(IMAGES);
  if (!isMap(node)) return {};
  const json = node.toJSON() as Record<string, unknown>;
  const out: Record<string, Record<string, string>> = {};
  for (const [stack, services] of Object.entries(json)) {
    if (services === null || typeof services !== "object") continue;
    out[stack] = Object.fromEntries(
      Object.entries(services as Record<string, unknown>).filter(
        (e): e is [string, string] => typeof e[1] === "string",
      ),
    );
  }
  return out;
}

/**
 * Plans (and renders) the promotion of `from`'s pins into `to`. `deployed` lists the `[stack, service]` pairs
 * that the target deploys: each needs a pin in the source, as does every pin the target already has.
 * Refusals (order, a pin missing from the source, a pin the target's environment does not accept) are
 * issues that name the key.
 */
export function planPromotion(
  from: PromotionFile,
  to: PromotionFile,
  opts: { readonly force: boolean; readonly deployed: readonly (readonly [string, string])[] },
): PromotionPlan {
  const issues: ConfigIssue[] = [];
  const refuse = (): PromotionPlan => ({ text: to.text, changes: [], issues });
  const src = parse(from, issues);
  const dst = parse(to, issues);
  if (!src || !dst) return refuse();
  const fromEnv = environmentOf(src, from, issues);
  const toEnv = environmentOf(dst, to, issues);
  if (!fromEnv || !toEnv) return refuse();
  const order = promotionProblem(fromEnv, toEnv, opts.force);
  if (order) {
    issues.push({ origin: { key: "swarmform:environment" }, message: `refused: ${order}` });
    return refuse();
  }
  const source = pinsOf(src);
  const target = pinsOf(dst);
  if (flattenPins(source).length === 0) {
    issues.push({
      origin: { key: "swarmform:images" },
      message: `${from.file} pins no images; there is nothing to promote (see docs/environments.md)`,
    });
    return refuse();
  }
  const wanted = new Map<string, [string, string]>();
  for (const [stack, service] of [...opts.deployed, ...flattenPins(target).map((p) => [p.stack, p.service])])
    wanted.set(pinKey(stack, service), [stack, service]);
  const changes: PromotionChange[] = [];
  for (const [key, [stack, service]] of wanted) {
    const pin = source[stack]?.[service];
    if (pin === undefined) {
      issues.push({
        origin: { key: `swarmform:${key}` },
        message: `${to.stack} deploys this service, but ${from.file} has no pin for it; pin it in ${from.stack} first`,
      });
      continue;
    }
    const problem = pinProblem(pin, toEnv);
    if (problem) {
      issues.push({ origin: { key: `swarmform:${key}` }, message: `refused for ${to.stack}: ${problem}` });
      continue;
    }
    const old = target[stack]?.[service];
    if (old !== pin)
      changes.push({ key: `swarmform:${key}`, ...(old !== undefined ? { old } : {}), new: pin });
  }
  if (issues.length > 0) return refuse();
  for (const c of changes) {
    const [stack, service] = c.key.replace(/^swarmform:images\./, "").split(".");
    setPin(dst, stack, service, c.new);
  }
  return { text: changes.length > 0 ? dst.toString({ lineWidth: 0 }) : to.text, changes, issues };
}

/** Sets one pin, keeping the scalar node (and its comments) when there is one. */
function setPin(doc: Document, stack: string, service: string, pin: string): void {
  const path = [...IMAGES, stack, service];
  const node = doc.getIn(path, true);
  const scalar = isScalar(node) ? node : new Scalar(pin);
  scalar.value = pin;
  // Quoted when plain YAML would read it as something else than this string (e.g. 1.10, a number).
  if (parseYaml(pin) !== pin) scalar.type = Scalar.QUOTE_DOUBLE;
  if (!isScalar(node)) doc.setIn(path, scalar);
}

/** The table that promote prints: KEY, OLD, NEW, aligned. */
export function formatChanges(changes: readonly PromotionChange[]): string[] {
  const rows = [["KEY", "OLD", "NEW"], ...changes.map((c) => [c.key, c.old ?? "(none)", c.new])];
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => [r[0].padEnd(widths[0]), r[1].padEnd(widths[1]), r[2]].join("  "));
}
