// Shared pieces of the `swarmform` commands: output, argument parsing, and issue printing.
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import { ConfigError, formatIssue } from "../components/config/errors";
import { ConfigIssue } from "../components/config/types";

/** Where a command writes: one line at a time. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/** Context of a command: output and the project root (where Pulumi.yaml and stacks/ are). */
export interface CliContext {
  readonly io: CliIo;
  readonly root: string;
  /** Variables for `${VAR}` in stack files. */
  readonly env: Record<string, string | undefined>;
}

/** Exit codes: 0 valid, 1 invalid input, 2 usage error. */
export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

/** A bad command line; the caller prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

/** Parsed options of a command: `--stack NAME`, `--help`, and positionals. */
export interface CommandArgs {
  readonly stack?: string;
  readonly help: boolean;
  /** `--strict`: keys that swarm ignores are errors. */
  readonly strict: boolean;
  /** `--name NAME`: the stack name of the single file given to render. */
  readonly name?: string;
  readonly positionals: string[];
}

/** Parses `[--stack NAME] [--help] [positionals...]`; throws a UsageError on anything else. */
export function parseCommandArgs(args: readonly string[], withPositionals: boolean): CommandArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: {
        stack: { type: "string" },
        help: { type: "boolean", short: "h" },
        strict: { type: "boolean" },
        name: { type: "string" },
      },
      allowPositionals: withPositionals,
      strict: true,
    });
    if (values.stack !== undefined && !/^[A-Za-z0-9_.-]+$/.test(values.stack)) {
      throw new UsageError(`--stack: "${values.stack}" is not a stack name`);
    }
    return {
      ...(values.stack !== undefined ? { stack: values.stack } : {}),
      help: !!values.help,
      strict: !!values.strict,
      ...(values.name !== undefined ? { name: values.name } : {}),
      positionals,
    };
  } catch (e) {
    throw e instanceof UsageError ? e : new UsageError((e as Error).message);
  }
}

/** Path of the config file of a Pulumi stack. */
export function stackConfigPath(root: string, stack: string): string {
  return path.join(root, `Pulumi.${stack}.yaml`);
}

/** Names of the stacks that have a `Pulumi.<stack>.yaml` in the project root, sorted. */
export function listStacks(root: string): string[] {
  return fs
    .readdirSync(root)
    .flatMap((f) => {
      const m = /^Pulumi\.(.+)\.yaml$/.exec(f);
      return m ? [m[1]] : [];
    })
    .sort();
}

/** Prints issues on stderr, one per line: `<origin>: <message>`. */
export function printIssues(io: CliIo, issues: readonly ConfigIssue[]): void {
  for (const issue of issues) io.err(formatIssue(issue));
}

/** Runs `fn`; a ConfigError becomes its issues on stderr and exit code 1. */
export function reportConfigErrors(io: CliIo, fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    printIssues(io, e.issues);
    return EXIT.invalid;
  }
}
