// The facts the tests check against, derived from other projects' references into tests/fixtures/oracles/
// (by scripts/derive-fixtures.ts, `npm run fixtures:derive`; each fixture names its source and version).
import * as fs from "fs";
import * as path from "path";

/**
 * A node of the Compose key tree: the JSON types a key takes, its keys (`keys`), keys by pattern (`patterns`),
 * whether other keys are allowed (`other`), list items (`items`), allowed values (`enum`), a named definition
 * (`ref`), or alternatives (`anyOf`). Descriptions, formats, ranges and `required` are left out.
 */
export interface KeyNode {
  type?: string[];
  keys?: Record<string, KeyNode>;
  patterns?: Record<string, KeyNode>;
  other?: boolean | KeyNode;
  items?: KeyNode;
  enum?: unknown[];
  ref?: string;
  anyOf?: KeyNode[];
}

const DIR = path.resolve(__dirname, "..", "fixtures", "oracles");

function fixture<T>(name: string): T & { sources: string[] } {
  return JSON.parse(fs.readFileSync(path.join(DIR, name), "utf8")) as T & { sources: string[] };
}

/** Every label key Traefik v3 understands (its generated Docker/Swarm label references), as written there. */
export function traefikLabelKeys(): string[] {
  return fixture<{ keys: string[] }>("traefik-labels.json").keys;
}

/** The options of Traefik v3's swarm provider: `providers.swarm.endpoint`, ... */
export function traefikSwarmProviderOptions(): string[] {
  return fixture<{ options: string[] }>("traefik-swarm-provider.json").options;
}

/** The `__meta_dockerswarm_*` labels of Prometheus' swarm discovery (`..._label_<labelname>` for label maps). */
export function dockerswarmMetaLabels(): string[] {
  return fixture<{ metaLabels: string[] }>("prometheus-dockerswarm-sd.json").metaLabels;
}

/** The JSON Schema (draft-07) of a key tree node, for ajv. */
function toSchema(n: KeyNode): Record<string, unknown> {
  const map = (o: Record<string, KeyNode>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toSchema(v)]));
  const s: Record<string, unknown> = {};
  if (n.ref !== undefined) s.$ref = `#/definitions/${n.ref}`;
  if (n.type) s.type = n.type.length === 1 ? n.type[0] : n.type;
  if (n.keys) s.properties = map(n.keys);
  if (n.patterns) s.patternProperties = map(n.patterns);
  if (n.other !== undefined)
    s.additionalProperties = typeof n.other === "boolean" ? n.other : toSchema(n.other);
  if (n.items) s.items = toSchema(n.items);
  if (n.enum) s.enum = n.enum;
  if (n.anyOf) s.anyOf = n.anyOf.map(toSchema);
  return s;
}

/**
 * The keys of a Compose file and their types, as a JSON Schema: every key a Compose file may hold, with the
 * JSON types and allowed values of each (no ranges, formats or required keys).
 */
export function composeKeysSchema(): Record<string, unknown> {
  const f = fixture<{ root: KeyNode; definitions: Record<string, KeyNode> }>("compose-keys.json");
  return {
    ...toSchema(f.root),
    definitions: Object.fromEntries(Object.entries(f.definitions).map(([k, v]) => [k, toSchema(v)])),
  };
}
