// The `swarmform` command line: offline checks of the stack configs and stack files, and the testbed.
import * as path from "path";
import { CliContext, CliIo, EXIT, UsageError } from "./common";
import { DESCRIBE_USAGE, runDescribe } from "./describe";
import { PROMOTE_USAGE, runPromote } from "./promote";
import { RENDER_USAGE, runRender } from "./render";
import { runValidate, VALIDATE_USAGE } from "./validate";

/** The package directory: Pulumi.yaml, Pulumi.<stack>.yaml and stacks/ live here. */
export const PROJECT_ROOT = path.resolve(__dirname, "..");

export const USAGE = `Usage: swarmform <command> [options]

Commands:
  validate [--stack NAME]        validate Pulumi.NAME.yaml and its stack files (default: every stack)
  render FILE... [--stack NAME]  print the service model of stack files as JSON
  describe --stack NAME          print the planned topology (nodes, networks, services, resources)
  promote --from A --to B        copy the image pins of Pulumi.A.yaml into Pulumi.B.yaml
  testbed ...                    the multi-host test bed (network namespaces)
  help [COMMAND]                 show help for a command

Options:
  -h, --help                     show this help

Exit codes: 0 valid, 1 invalid input, 2 usage error.`;

const processIo: CliIo = {
  out: (line) => process.stdout.write(line + "\n"),
  err: (line) => process.stderr.write(line + "\n"),
};

type TestbedModule = { runTestbedCommand(args: string[]): Promise<number> };

/** The testbed command, when its module (cli/testbed.ts) is there: it is optional. */
export function loadTestbed(request = "./testbed"): TestbedModule | undefined {
  try {
    require.resolve(request);
  } catch {
    return undefined;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(request) as TestbedModule;
}

const HELP: Record<string, string> = {
  validate: VALIDATE_USAGE,
  render: RENDER_USAGE,
  describe: DESCRIBE_USAGE,
  promote: PROMOTE_USAGE,
};

/** Runs one command line (without `node` and the script); returns the exit code. */
export async function run(argv: readonly string[], ctx: Partial<CliContext> = {}): Promise<number> {
  const full: CliContext = { io: processIo, root: PROJECT_ROOT, env: process.env, ...ctx };
  const { io } = full;
  const [command, ...args] = argv;
  try {
    switch (command) {
      case "validate":
        return runValidate(args, full);
      case "render":
        return runRender(args, full);
      case "describe":
        return await runDescribe(args, full);
      case "promote":
        return runPromote(args, full);
      case "testbed": {
        const testbed = loadTestbed();
        if (!testbed) {
          io.err("testbed: not available");
          return EXIT.usage;
        }
        return await testbed.runTestbedCommand(args);
      }
      case "help":
      case "--help":
      case "-h": {
        const topic = command === "help" ? args[0] : undefined;
        if (topic !== undefined && !(topic in HELP)) throw new UsageError(`help: unknown command "${topic}"`);
        io.out(topic !== undefined ? HELP[topic] : USAGE);
        return EXIT.ok;
      }
      case undefined:
        throw new UsageError("missing command");
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`swarmform: ${e.message}`);
    io.err(command !== undefined && command in HELP ? HELP[command] : USAGE);
    return EXIT.usage;
  }
}
