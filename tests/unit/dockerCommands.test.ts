// Every docker subcommand that the shell text of our components sends exists in the real docker CLI of this
// machine. The unit tests run that shell text against a stand-in docker, which answers whatever it is told to:
// a subcommand the CLI does not have (`docker swarm inspect` was one) passes them and fails only on real hosts.
// The string literals of components/ are scanned with the TypeScript scanner (comments are not strings), and each
// `docker <management command> <subcommand>` or `docker <command>` found is checked with `--help`: the CLI prints
// the usage of the subcommand when it exists, and of its parent when it does not (both with exit 0).

import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import ts from "typescript";

const ROOT = path.resolve(__dirname, "..", "..");
/** Management commands: their first word after them is a subcommand. */
const MANAGEMENT = new Set([
  "system",
  "node",
  "swarm",
  "service",
  "stack",
  "network",
  "secret",
  "config",
  "container",
  "image",
]);
/** Plain commands our text may send (anything else after "docker " is prose in a message). */
const PLAIN = new Set(["info", "version", "login", "logout", "inspect", "ps", "pull", "push"]);

function sourceFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sourceFiles(path.join(dir, e.name))
        : e.name.endsWith(".ts")
          ? [path.join(dir, e.name)]
          : [],
    );
}

/** Every `docker ...` command in the string literals of the components, with one file that sends it. */
function dockerCommandsInStrings(): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of sourceFiles(path.join(ROOT, "components"))) {
    const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node): void => {
      if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateLiteralToken(n)) {
        for (const m of n.text.matchAll(/(?:^|[\s;|&({$`])docker ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
          const command =
            MANAGEMENT.has(m[1]) && m[2] ? `${m[1]} ${m[2]}` : PLAIN.has(m[1]) ? m[1] : undefined;
          if (command && !found.has(command)) found.set(command, path.relative(ROOT, file));
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(sf);
  }
  return found;
}

const found = dockerCommandsInStrings();

test("the scan finds the commands the swarm provider is built on", () => {
  for (const c of ["system dial-stdio", "swarm leave", "node rm", "node demote", "node update", "info"])
    expect([...found.keys()]).toContain(c);
});

test.each([...found.entries()])("docker %s exists in the docker CLI (sent by %s)", (command) => {
  let usage: string;
  try {
    usage = execFileSync("docker", [...command.split(" "), "--help"], { encoding: "utf8" });
  } catch (err) {
    throw new Error(
      `\`docker ${command} --help\` failed; is the docker CLI installed? ${(err as Error).message}`,
    );
  }
  const first = usage.split("\n").find((l) => l.startsWith("Usage:")) ?? "";
  expect(first).toMatch(new RegExp(`^Usage:\\s+docker ${command}(\\s|$)`));
});
