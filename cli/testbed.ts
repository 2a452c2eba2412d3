// `swarmform testbed up|down|status|load-image`: the multi-host testbed for humans (see tests/testbed/testbed.ts).

import { closeAllTransports } from "../components/hosts/transport";
import { loadTestbed, startTestbed, stopTestbed, Testbed } from "../tests/testbed/testbed";
import { TESTBED_USAGE as USAGE } from "./usage";

interface Parsed {
  readonly positional: string[];
  readonly hosts: number;
  readonly name: string;
}

function parse(args: readonly string[]): Parsed {
  const positional: string[] = [];
  let hosts = 3;
  let name = "swarmform";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--hosts") hosts = Number(value());
    else if (a.startsWith("--hosts=")) hosts = Number(a.slice("--hosts=".length));
    else if (a === "--name") name = value();
    else if (a.startsWith("--name=")) name = a.slice("--name=".length);
    else if (a === "-h" || a === "--help") positional.unshift("help");
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  return { positional, hosts, name };
}

/** What `up` and `status` print: one line per host, and how to ssh to it. */
export function describeTestbed(tb: Testbed): string {
  const lines = [`testbed ${tb.name}: ${tb.hosts.length} host(s)`];
  for (const h of tb.hosts) {
    lines.push(
      `  ${h.name}  ${h.address}  ${tb.hostKeyFingerprints[h.name]}  docker -H unix://${h.dockerSocket}`,
      `      ssh -i ${tb.privateKeyPath} -o UserKnownHostsFile=${tb.knownHostsPath} root@${h.address}`,
    );
  }
  lines.push(`stop with: swarmform testbed down --name ${tb.name}`);
  return lines.join("\n");
}

/** Entry point used by the swarmform CLI main; returns the exit code. */
export async function runTestbedCommand(args: string[]): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(args);
  } catch (err) {
    console.error(`swarmform testbed: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const [command, ...rest] = parsed.positional;
  try {
    switch (command) {
      case "up": {
        const started = Date.now();
        const tb = await startTestbed({ hosts: parsed.hosts, name: parsed.name });
        console.log(describeTestbed(tb));
        console.log(`started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return 0;
      }
      case "down":
        await stopTestbed(parsed.name);
        console.log(`testbed ${parsed.name} stopped`);
        return 0;
      case "status":
        console.log(describeTestbed(loadTestbed(parsed.name)));
        return 0;
      case "load-image":
        if (rest.length !== 1) break;
        await loadTestbed(parsed.name).loadImage(rest[0]);
        console.log(`loaded ${rest[0]} on every host of ${parsed.name}`);
        return 0;
      case "busybox":
        console.log(`imported ${await loadTestbed(parsed.name).importBusybox()}`);
        return 0;
      case "help":
        console.log(USAGE);
        return 0;
    }
    const problem =
      command === undefined
        ? "missing command (up, down, status, load-image or busybox)"
        : command === "load-image"
          ? "load-image takes one IMAGE"
          : `unknown command "${command}"`;
    console.error(`swarmform testbed: ${problem}\n${USAGE}`);
    return 2;
  } catch (err) {
    console.error(`swarmform testbed ${command}: ${(err as Error).message}`);
    return 1;
  } finally {
    await closeAllTransports();
  }
}
