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

/** Context of a command: output, the working directory, and the environment. */
export interface CliContext {
  readonly io: CliIo;
  /** Where the command runs: relative FILE arguments and the search for the project start here. */
  readonly cwd: string;
  /** Variables for `${VAR}` in stack files. */
  readonly env: Record<string, string | undefined>;
}

/** Exit codes: 0 valid, 1 invalid input, 2 usage error. */
export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

/** A bad command line; the caller prints the message and the usage, and exits 2. */
export class UsageError extends Error {}

/** No Swarmform project where the command runs: printed without the usage, exit 2. */
export class NoProjectError extends Error {}

/**
 * The project root: the nearest directory at or above `cwd` that holds Pulumi.yaml (so the CLI works on
 * the project it is run in, not on the copy it was installed from). Throws a NoProjectError otherwise.
 */
export function findProjectRoot(cwd: string): string {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, "Pulumi.yaml"))) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new NoProjectError(
    `no Pulumi.yaml in ${path.resolve(cwd)} or any directory above it: run swarmform inside a Swarmform project`,
  );
}

/** Parsed options of a command: every `--stack NAME` in order, boolean flags, and positionals. */
export interface CommandArgs<F extends string = never, O extends string = never> {
  readonly stacks: readonly string[];
  readonly flags: Readonly<Record<F, boolean>>;
  /** String options such as `--name NAME` (undefined when not given). */
  readonly options: Readonly<Record<O, string | undefined>>;
  readonly positionals: string[];
}

/** What a command takes on its command line. */
export interface CommandShape<F extends string = never, O extends string = never> {
  /** Boolean flags, such as `strict` for `--strict`. */
  readonly flags?: readonly F[];
  /** String options, such as `name` for `--name NAME`; each at most once. */
  readonly options?: readonly O[];
  /** What an option's value is called in messages (as in its usage); default its name in capitals. */
  readonly metavars?: Readonly<Partial<Record<O, string>>>;
  /** Whether `--stack NAME` (repeatable) is an option; default true. */
  readonly stack?: boolean;
  /** Whether FILE arguments are taken; default true. */
  readonly positionals?: boolean;
}

/** What a Pulumi stack name may be (in `--stack NAME` and the like). */
export const PULUMI_STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/** `--stack NAME, --format FORMAT, --strict, FILE...`: what a command of this shape takes. */
function allowedOf(shape: CommandShape<string, string>): string {
  return [
    ...(shape.stack === false ? [] : ["--stack NAME"]),
    ...(shape.options ?? []).map((o) => `--${o} ${shape.metavars?.[o] ?? o.toUpperCase()}`),
    ...(shape.flags ?? []).map((f) => `--${f}`),
    ...(shape.positionals === false ? [] : ["FILE..."]),
    "--help",
  ].join(", ");
}

/**
 * Parses the arguments of `command` as `shape` says (`--help`/`-h` are handled by cli/main.ts before);
 * throws a UsageError, naming the argument and what the command takes, on an unknown option or argument,
 * on a bad stack name, and on a stack, option or positional given twice.
 */
export function parseCommandArgs<F extends string = never, O extends string = never>(
  command: string,
  args: readonly string[],
  cwd: string,
  shape: CommandShape<F, O> = {},
): CommandArgs<F, O> {
  const flagNames = shape.flags ?? [];
  const optionNames = shape.options ?? [];
  const allowed = () => `${command} takes ${allowedOf(shape)}`;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        ...(shape.stack === false ? {} : { stack: { type: "string" as const, multiple: true } }),
        ...Object.fromEntries(flagNames.map((f) => [f, { type: "boolean" as const }])),
        ...Object.fromEntries(optionNames.map((o) => [o, { type: "string" as const, multiple: true }])),
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    const unknown = /^Unknown option '([^']+)'/.exec((e as Error).message);
    if (unknown) throw new UsageError(`${command}: unknown option ${unknown[1]}; ${allowed()}`);
    const noValue = /^Option '(--\S+) <value>' argument missing/.exec((e as Error).message);
    if (noValue) throw new UsageError(`${command}: ${noValue[1]} needs a value; ${allowed()}`);
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
  if (shape.positionals === false && parsed.positionals.length > 0)
    throw new UsageError(`${command}: unexpected argument "${parsed.positionals[0]}"; ${allowed()}`);
  const values = parsed.values as Record<string, unknown>;
  const stacks = (values.stack ?? []) as string[];
  for (const s of stacks) {
    if (!PULUMI_STACK_NAME.test(s)) throw new UsageError(`${command}: --stack "${s}" is not a stack name`);
  }
  twiceIn(
    command,
    stacks.map((s) => `--stack ${s}`),
    cwd,
  );
  twiceIn(command, parsed.positionals, cwd);
  const flags = Object.fromEntries(flagNames.map((f) => [f, values[f] === true])) as Record<F, boolean>;
  const options = Object.fromEntries(
    optionNames.map((o) => {
      const given = (values[o] ?? []) as string[];
      if (given.length > 1) throw new UsageError(`${command}: --${o} is given more than once`);
      return [o, given[0]];
    }),
  ) as Record<O, string | undefined>;
  return { stacks, flags, options, positionals: parsed.positionals };
}

/** Throws a UsageError naming the first argument given twice. */
function twiceIn(command: string, args: readonly string[], cwd: string): void {
  const seen = new Set<string>();
  for (const a of args) {
    const key = a.startsWith("--stack ") ? a : path.resolve(cwd, a);
    if (seen.has(key)) throw new UsageError(`${command}: ${a} is given twice`);
    seen.add(key);
  }
}

/**
 * The config file of `stack` in the project, or, when it does not exist, the message that both validate
 * and render print for it: `Pulumi.nope.yaml: no such file; stacks in /root: dev, local`.
 */
export function stackConfigOf(root: string, stack: string, cwd: string): { file: string; missing?: string } {
  const file = stackConfigPath(root, stack);
  if (fs.existsSync(file)) return { file };
  const shown = path.relative(cwd, file) || file;
  return {
    file,
    missing: `${shown}: no such file; stacks in ${root}: ${listStacks(root).join(", ") || "(none)"}`,
  };
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
