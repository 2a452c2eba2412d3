// An invalid config under the real engine: index.ts must fail with a pulumi.RunError whose message is exactly
// what `swarmform validate` prints. The Node.js runtime (@pulumi/pulumi/cmd/run/run.js, uncaughtHandler)
// prints a RunError's message alone, without "unhandled exception" and without a stack trace; any other
// error is printed with its stack.
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { runValidate } from "../../cli/validate";
import { runProgram } from "../support/mocks";

const ROOT = path.resolve(__dirname, "../..");
const BROKEN = path.join(ROOT, "tests/fixtures/config/broken");

/** What `swarmform validate FILE` prints on stderr, and its exit code. */
function validate(file: string): { code: number; err: string[] } {
  const err: string[] = [];
  const code = runValidate([file], {
    io: { out: () => undefined, err: (l) => err.push(l) },
    cwd: ROOT,
    env: {},
  });
  return { code, err };
}

test("a bad config fails the program with a RunError that carries exactly validate's messages", async () => {
  const file = path.join(BROKEN, "Pulumi.broken.yaml");
  const expected = validate(file);
  expect(expected.code).toBe(1);
  expect(expected.err.length).toBeGreaterThan(5);

  // Pulumi runs the program in the project directory: stack files are relative to it.
  const cwd = process.cwd();
  process.chdir(BROKEN);
  let run;
  try {
    run = await runProgram({
      stackFile: file,
      rootDir: BROKEN,
      program: path.relative(BROKEN, path.join(ROOT, "index.ts")),
      allowError: true,
    });
  } finally {
    process.chdir(cwd);
  }
  expect(pulumi.RunError.isInstance(run.error)).toBe(true);
  expect((run.error as Error).message).toBe(expected.err.join("\n"));
  expect(run.resources).toHaveLength(0);
}, 120_000);
