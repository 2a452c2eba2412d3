// `swarmform describe --stack NAME [--format text|mermaid]`: the planned topology of one stack (nodes,
// networks, services with replicas, placement and routes, and every resource the program would register),
// from the validated config and a run of the program under Pulumi mocks. Nothing is contacted.
import * as path from "path";
import { planUnderMocks } from "../components/cluster/planUnderMocks";
import { renderMermaid, renderText, Topology, topologyOf } from "../components/cluster/topology";
import { loadClusterSpec, readPulumiStackFile } from "../components/config/load";
import {
  CliContext,
  EXIT,
  findProjectRoot,
  parseCommandArgs,
  printIssues,
  stackConfigPath,
  UsageError,
} from "./common";
import { ConfigError } from "../components/config/errors";
import { generateSshKeyPair } from "../components/hosts/transport";
import * as fs from "fs";

/** Stand-in for a secret value: describe never reads secrets. */
const STAND_IN = "describe-stand-in";

/**
 * Loads Pulumi.<stack>.yaml and plans it under mocks. Throws a ConfigError. `standInKey` is the private key planned
 * with for the ssh and libvirt sources (default: a new throwaway key).
 */
export async function describeStack(
  root: string,
  stack: string,
  env: Record<string, string | undefined>,
  standInKey?: string,
): Promise<{ topology: Topology; notes: string[] }> {
  const file = stackConfigPath(root, stack);
  const read = readPulumiStackFile(file);
  const notes: string[] = [];
  const secrets: Record<string, string> = {};
  for (const key of read.secretKeys) secrets[key] = STAND_IN;
  // The ssh and libvirt sources need a key for `up`; describe connects to nothing, so a throwaway key lets it
  // plan (a parseable one: the libvirt source derives the public key that cloud-init authorizes).
  const source = (read.config.nodes as { source?: unknown } | undefined)?.source;
  if (source === "ssh" || source === "libvirt") {
    if (!secrets.sshPrivateKey)
      notes.push(
        "note: sshPrivateKey is not set; `pulumi up` needs it (pulumi config set --secret sshPrivateKey < KEY)",
      );
    secrets.sshPrivateKey = standInKey ?? generateSshKeyPair().private;
  }
  const config = Object.fromEntries(Object.entries(read.config).filter(([k]) => !(k in secrets)));
  const spec = loadClusterSpec({
    project: read.project ?? "swarmform",
    stack,
    config: { ...config, ...Object.fromEntries(Object.keys(secrets).map((k) => [k, { secure: STAND_IN }])) },
    secretKeys: Object.keys(secrets),
    rootDir: root,
    env,
  });
  if (secrets.stackSecrets !== undefined)
    secrets.stackSecrets = JSON.stringify(
      Object.fromEntries((spec.stackSecretNames ?? []).map((n) => [n, STAND_IN])),
    );
  const resources = await planUnderMocks(spec, config, secrets);
  return { topology: topologyOf(spec, resources), notes };
}

/** Runs `swarmform describe`. */
export async function runDescribe(args: readonly string[], ctx: CliContext): Promise<number> {
  const opts = parseCommandArgs("describe", args, ctx.cwd, { options: ["format"], positionals: false });
  if (opts.stacks.length === 0) throw new UsageError("describe: --stack NAME is required");
  if (opts.stacks.length > 1)
    throw new UsageError("describe: --stack is given more than once; describe takes one stack");
  const stack = opts.stacks[0];
  const format = opts.options.format ?? "text";
  if (format !== "text" && format !== "mermaid")
    throw new UsageError(`describe: --format "${format}" is not one of: text, mermaid`);
  const root = findProjectRoot(ctx.cwd);
  const file = stackConfigPath(root, stack);
  if (!fs.existsSync(file)) {
    ctx.io.err(`${path.basename(file)}: no such file in ${root}`);
    return EXIT.invalid;
  }
  try {
    const { topology, notes } = await describeStack(root, stack, ctx.env);
    for (const n of notes) ctx.io.err(n);
    for (const line of format === "mermaid" ? renderMermaid(topology) : renderText(topology))
      ctx.io.out(line);
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    printIssues(ctx.io, e.issues);
    return EXIT.invalid;
  }
}
