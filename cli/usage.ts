// The usage texts of `swarmform` and its commands. This module imports nothing, so that `--help` loads
// no command module (see cli/main.ts: each command is required only when it runs).

export const USAGE = `Usage: swarmform <command> [options]

Commands:
  validate [--stack NAME]... [FILE...]          validate Pulumi.NAME.yaml and its stack files (default: every stack)
  render FILE... [--stack NAME] [--no-platform] [--full]
                                                print the service model of stack files as JSON
  describe --stack NAME [--format text|mermaid] print the planned topology (nodes, networks, services, resources)
  promote --from A --to B [--dry-run] [--force] copy the image pins of Pulumi.A.yaml into Pulumi.B.yaml
  testbed up|down|status|load-image|busybox     the multi-host test bed (network namespaces; needs root)
  help [COMMAND]                                show help for a command (also: COMMAND --help, COMMAND -h)

The project is the directory with Pulumi.yaml: the current directory or the nearest one above it.

Options:
  -h, --help     show this help

Exit codes: 0 valid, 1 invalid input, 2 usage error.`;

export const VALIDATE_USAGE = `Usage: swarmform validate [--stack NAME]... [--strict] [FILE...]

Validates Pulumi.NAME.yaml and every stack file it references (without --stack and FILE: every
Pulumi.*.yaml of the project, the directory with Pulumi.yaml at or above the current directory).
--stack may be repeated: each stack is validated. FILE... are other Pulumi.<stack>.yaml files; their
stack files are relative to the directory of each. A stack or file given twice is a usage error.
Prints one line per stack on stdout (OK or FAIL), and under OK each \${VAR} the stack files use with
where its value comes from; problems go to stderr, one per line, as <origin>: <message>. Keys that swarm
ignores are warnings on stderr ("warning: <origin>: <message>").

Options:
  --stack NAME   a Pulumi stack to validate (local, dev, staging, prod, ...); may be repeated
  --strict       keys that swarm ignores are errors (like swarmform:strictCompose: true)
  -h, --help     show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

export const RENDER_USAGE = `Usage: swarmform render FILE... [--stack NAME] [--name STACK] [--strict] [--no-platform] [--full]

Prints, as JSON on stdout, the services the program registers for the stack files FILE...:
{"services":[{"name","image","mode","replicas","labels","containerLabels","networks","constraints",
"ports","updateConfig"}]}. x-traefik routes are expanded with the Traefik settings of --stack (default:
the defaults of a local stack, public network swarmform-local_public). \${VAR} comes from stackVariables
of --stack and the file's defaults; from the environment only for the names in its stackEnvironment.
Keys that swarm ignores (depends_on, restart, ...) are warnings on stderr. Also reported: a port published twice and a host+path routed by
two services, across the files and the platform (Traefik's ports and routes, the registry's and
monitoring's routes). Problems go to stderr, one per line. A file given twice is a usage error.

Options:
  --stack NAME    take the platform settings from Pulumi.NAME.yaml of the project (once only)
  --name STACK    the stack name of the one FILE (default: its top-level name:, else the file name)
  --strict        keys that swarm ignores are errors (like swarmform:strictCompose: true)
  --no-platform   the given files alone: no ports or routes of Traefik, the registry or monitoring,
                  in the output or in the collision checks
  --full          everything registered for each service: also environment (secret values masked),
                  mounts, secrets, configs, resources, healthcheck, restart, update and rollback
                  policy, placement preferences, endpoint mode, command, user, and the registry
                  credentials (password masked) of images on the platform registry
  -h, --help      show this help

Exit codes: 0 valid, 1 invalid, 2 usage error.`;

export const TESTBED_USAGE = `Usage: swarmform testbed up [--hosts N] [--name NAME]     start N hosts (default 3), replacing an earlier testbed NAME
       swarmform testbed down [--name NAME]               stop the testbed and remove its state
       swarmform testbed status [--name NAME]             print the hosts and how to reach them
       swarmform testbed load-image IMAGE [--name NAME]   copy an image (name on the local engine, or a tar) to every host
       swarmform testbed busybox [--name NAME]            import a busybox-static image as busybox:testbed on every host

One network namespace per host, each with its own dockerd and sshd, on one bridge (10.213.47.0/24).
NAME defaults to swarmform. Needs root (network namespaces, dockerd, sshd), e.g. sudo, and the Debian
packages iproute2, iptables, util-linux, docker.io, openssh-server, openssh-client and busybox-static
(apt-get install them).

Options:
  -h, --help     show this help

Exit codes: 0 done, 1 failed, 2 usage error.`;

/** The usage of each command, by name. */
export const DESCRIBE_USAGE = `Usage: swarmform describe --stack NAME [--format text|mermaid]

Prints what \`pulumi up\` on stack NAME would build, without contacting anything: the nodes (role, labels,
where they run), the overlay networks (encrypted or not), the services (replicas, placement, networks,
Traefik routes), and the count of every resource type the program registers, as it registers them under
Pulumi mocks. Secrets are not read: stand-ins take their place.

Options:
  --stack NAME       the Pulumi stack (Pulumi.NAME.yaml)
  --format FORMAT    text (default) or mermaid (a flowchart for Markdown)
  -h, --help         show this help

Exit codes: 0 printed, 1 invalid config, 2 usage error.`;

export const PROMOTE_USAGE = `Usage: swarmform promote --from STACK --to STACK [--dry-run] [--force]

Copies the image pins (swarmform:images, per stack and service) of Pulumi.FROM.yaml into Pulumi.TO.yaml,
keeping the target's comments, key order and every other key. Prints a table of the pins that change
(KEY, OLD, NEW). Refused (exit 1, naming the key): a step that skips an environment (dev -> prod) unless
--force, a pin that the target deploys but the source lacks, a pin without digest for prod, latest for
staging. See docs/environments.md.

Options:
  --from STACK   the stack promoted from (dev, staging)
  --to STACK     the stack promoted to (staging, prod)
  --dry-run      print the table, write nothing
  --force        allow skipping an environment (dev -> prod)
  -h, --help     show this help

Exit codes: 0 promoted (or nothing to change), 1 refused, 2 usage error.`;

export const COMMAND_USAGE: Readonly<Record<string, string>> = {
  validate: VALIDATE_USAGE,
  render: RENDER_USAGE,
  describe: DESCRIBE_USAGE,
  promote: PROMOTE_USAGE,
  testbed: TESTBED_USAGE,
};
