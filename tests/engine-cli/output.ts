// Pure parsers for what the Pulumi CLI prints: the engine event stream of `--json` (up/refresh/destroy) and
// the property diff of `pulumi preview --diff` (the engine's own rendering of what changes).

/** One resource event of the engine's JSON stream: a step starting (`pre`) or done (`done`). */
export interface StepEvent {
  readonly seq: number;
  readonly kind: "pre" | "done" | "failed";
  readonly op: string;
  readonly urn: string;
  readonly type: string;
}

export interface EngineEvents {
  readonly steps: StepEvent[];
  readonly summary?: { resourceChanges: Record<string, number>; result?: string };
  readonly diagnostics: { severity: string; message: string; urn?: string }[];
}

type Json = Record<string, unknown>;

/** Parses the line-per-event JSON that `pulumi up|refresh|destroy --json` prints. */
export function parseEvents(stdout: string): StepEvent[] & { summary?: EngineEvents["summary"] } {
  const steps: StepEvent[] & { summary?: EngineEvents["summary"] } = [];
  for (const line of stdout.split("\n")) {
    if (!line.trim().startsWith("{")) continue;
    const e = JSON.parse(line) as Json;
    const seq = Number(e.sequence ?? steps.length);
    const kinds: [string, StepEvent["kind"]][] = [
      ["resourcePreEvent", "pre"],
      ["resOutputsEvent", "done"],
      ["resOpFailedEvent", "failed"],
    ];
    for (const [key, kind] of kinds) {
      const ev = e[key] as { metadata?: Json } | undefined;
      if (ev?.metadata) {
        const m = ev.metadata;
        steps.push({ seq, kind, op: String(m.op), urn: String(m.urn), type: String(m.type) });
      }
    }
    if (e.summaryEvent) {
      const s = e.summaryEvent as Json;
      steps.summary = {
        resourceChanges: (s.resourceChanges ?? {}) as Record<string, number>,
        result: s.result as string | undefined,
      };
    }
  }
  return steps;
}

export function summaryOf(events: ReturnType<typeof parseEvents>): {
  resourceChanges: Record<string, number>;
  result?: string;
} {
  if (!events.summary) throw new Error("the engine printed no summary event");
  return events.summary;
}

/** One resource of `pulumi preview --diff`: its operation and the top-level properties marked as changed. */
export interface PlannedResource {
  readonly op: string;
  readonly type: string;
  readonly urn: string;
  /** Top-level input properties the engine marks with ~, + or - (in its order). */
  readonly changed: string[];
}

const HEADER = /^(\s*)(?:([~+-]|\+-|-\+|<=|=>)\s+)?([\w:/.-]+): \(([\w-]+)\)\s*$/;
const URN = /^\s*\[urn=(.+)\]\s*$/;
const PROPERTY = /^(\s*)([~+-]) ([\w.-]+)\s*:/;

/**
 * Parses `pulumi preview --diff` output: each resource block starts with `<op-sign> <type>: (<op>)`, then
 * `[urn=...]`, then its properties; a changed top-level property is `<sign> name:` two columns left of the
 * plain ones.
 */
export function parsePreviewDiff(stdout: string): PlannedResource[] {
  const out: { op: string; type: string; urn: string; changed: string[]; nameColumn: number }[] = [];
  for (const raw of stdout.split("\n")) {
    const line = raw.replace(/\r$/, "");
    const h = HEADER.exec(line);
    if (h) {
      // Property names sit 4 columns right of the header's sign (or of where the type starts, minus 2).
      const signColumn = h[2] ? h[1].length : h[1].length - 2;
      out.push({ op: h[4], type: h[3], urn: "", changed: [], nameColumn: signColumn + 4 });
      continue;
    }
    const cur = out[out.length - 1];
    if (!cur) continue;
    const u = URN.exec(line);
    if (u && !cur.urn) {
      cur.urn = u[1];
      continue;
    }
    const p = PROPERTY.exec(line);
    if (p && p[1].length + 2 === cur.nameColumn) cur.changed.push(p[3]);
  }
  return out.map(({ op, type, urn, changed }) => ({ op, type, urn, changed }));
}
