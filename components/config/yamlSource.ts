// YAML with line positions: parse a document into a small positioned tree that the stack importer
// walks. Aliases are resolved and `<<` merge keys are applied, so the importer sees plain data, but
// every node still knows the line (1-based) it came from.
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Node,
  parseDocument,
  Document,
  Scalar,
} from "yaml";

/** A scalar value with its line. `raw` is the source text of a plain scalar (e.g. `0440`), when known. */
export interface YScalar {
  readonly kind: "scalar";
  readonly line: number;
  readonly value: string | number | boolean | null;
  readonly raw?: string;
}

/** One `key: value` entry of a mapping; `line` is the key's line. */
export interface YEntry {
  readonly key: string;
  readonly line: number;
  readonly value: YNode;
}

export interface YMap {
  readonly kind: "map";
  readonly line: number;
  readonly entries: readonly YEntry[];
}

export interface YSeq {
  readonly kind: "seq";
  readonly line: number;
  readonly items: readonly YNode[];
}

/** A positioned YAML node. */
export type YNode = YScalar | YMap | YSeq;

/** A YAML syntax problem at a line. */
export interface YamlProblem {
  readonly line: number;
  readonly message: string;
}

/** Result of {@link parseYamlSource}: the root node (absent for an empty document) and syntax problems. */
export interface YamlSource {
  readonly root?: YNode;
  readonly problems: readonly YamlProblem[];
}

/** Parses one YAML document (YAML 1.2 core schema) into a positioned tree; never throws. */
export function parseYamlSource(text: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: YamlProblem[] = doc.errors.map((e) => ({
    line: e.linePos?.[0]?.line ?? lineCounter.linePos(e.pos[0]).line,
    message: e.message.split("\n")[0],
  }));
  if (problems.length > 0) return { problems };
  const lineOf = (node: { range?: [number, number, number] | null } | null | undefined): number =>
    node?.range ? lineCounter.linePos(node.range[0]).line : 1;
  const converter = new Converter(doc, lineOf, problems);
  try {
    const root = doc.contents ? converter.convert(doc.contents as Node, 0) : undefined;
    return { root, problems };
  } catch (e) {
    return { problems: [...problems, { line: 1, message: (e as Error).message }] };
  }
}

class Converter {
  constructor(
    private readonly doc: Document,
    private readonly lineOf: (n: { range?: [number, number, number] | null } | null | undefined) => number,
    private readonly problems: YamlProblem[],
  ) {}

  convert(node: Node | null | undefined, depth: number, fallbackLine = 1): YScalar | YMap | YSeq {
    if (depth > 200) throw new Error("YAML nesting too deep (alias loop?)");
    if (node === null || node === undefined) return { kind: "scalar", line: fallbackLine, value: null };
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (!target) {
        this.problems.push({ line: this.lineOf(node), message: `unresolved alias *${node.source}` });
        return { kind: "scalar", line: this.lineOf(node), value: null };
      }
      return this.convert(target as Node, depth + 1);
    }
    if (isScalar(node)) return this.scalar(node);
    if (isSeq(node)) {
      return {
        kind: "seq",
        line: this.lineOf(node),
        items: node.items.map((i) => this.convert(i as Node, depth + 1)),
      };
    }
    if (isMap(node)) return this.map(node.items, this.lineOf(node), depth);
    return { kind: "scalar", line: this.lineOf(node), value: null };
  }

  private scalar(node: Scalar): YScalar {
    const v = node.value;
    const value =
      v === null || v === undefined
        ? null
        : typeof v === "string" || typeof v === "number" || typeof v === "boolean"
          ? v
          : String(v);
    const raw = node.type === "PLAIN" && typeof node.source === "string" ? node.source : undefined;
    return { kind: "scalar", line: this.lineOf(node), value, ...(raw !== undefined ? { raw } : {}) };
  }

  private map(items: readonly unknown[], line: number, depth: number): YMap {
    const own: YEntry[] = [];
    const merged: YEntry[] = [];
    for (const pair of items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const keyLine = this.lineOf(keyNode as Node);
      const key = isScalar(keyNode) ? String(keyNode.value) : keyNode === null ? "" : String(keyNode);
      if (key === "<<" && isScalar(keyNode) && keyNode.type === "PLAIN") {
        const src = this.convert(pair.value as Node, depth + 1);
        const sources = src.kind === "seq" ? src.items : [src];
        for (const s of sources) {
          if (s.kind !== "map") {
            this.problems.push({
              line: keyLine,
              message: "merge key `<<` needs a mapping or a list of mappings",
            });
            continue;
          }
          for (const e of s.entries) if (!merged.some((m) => m.key === e.key)) merged.push(e);
        }
        continue;
      }
      own.push({ key, line: keyLine, value: this.convert(pair.value as Node, depth + 1, keyLine) });
    }
    const entries = [...own, ...merged.filter((m) => !own.some((o) => o.key === m.key))];
    return { kind: "map", line, entries };
  }
}
