// The `swarmform` command line: offline checks of the stack configs and stack files, and the testbed.
// Start-up matters (bin/swarmform runs the compiled dist/cli/main.js): this module loads only the usage
// texts; a command's module (and with it zod, yaml and the config layer) is required when it runs.
import { CliContext, CliIo, EXIT, NoProjectError, UsageError } from "./common";
import { COMMAND_USAGE, USAGE } from "./usage";

const usageOf = (command: string | undefined): string | undefined =>
  command !== undefined && Object.hasOwn(COMMAND_USAGE, command) ? COMMAND_USAGE[command] : undefined;

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

/** `-h` or `--help` among the arguments of a command (before a `--`). */
function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).some((a) => a === "-h" || a === "--help");
}

/** Runs one command line (without `node` and the script); returns the exit code. */
export async function run(argv: readonly string[], ctx: Partial<CliContext> = {}): Promise<number> {
  const full: CliContext = { io: processIo, cwd: process.cwd(), env: process.env, ...ctx };
  const { io } = full;
  const [command, ...args] = argv;
  try {
    const usage = usageOf(command);
    if (usage !== undefined && wantsHelp(args)) {
      io.out(usage);
      return EXIT.ok;
    }
    switch (command) {
      case "validate":
        return (await import("./validate")).runValidate(args, full);
      case "render":
        return (await import("./render")).runRender(args, full);
      case "describe":
        return await (await import("./describe")).runDescribe(args, full);
      case "promote":
        return (await import("./promote")).runPromote(args, full);
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
        if (topic !== undefined && usageOf(topic) === undefined)
          throw new UsageError(`help: unknown command "${topic}"`);
        if (args.length > (command === "help" ? 1 : 0))
          throw new UsageError(`${command}: too many arguments`);
        io.out(usageOf(topic) ?? USAGE);
        return EXIT.ok;
      }
      case undefined:
        throw new UsageError("missing command");
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (e) {
    if (e instanceof NoProjectError) {
      io.err(`swarmform: ${e.message}`);
      return EXIT.usage;
    }
    if (!(e instanceof UsageError)) throw e;
    io.err(`swarmform: ${e.message}`);
    io.err(usageOf(command) ?? USAGE);
    return EXIT.usage;
  }
}
