// Plans Pulumi.dev.yaml as `swarmform describe` does (describeStack), in a process of its own, with the stand-in
// sshPrivateKey given in SWARMFORM_PLAN_KEY, and prints one JSON line: { resources } or { error }.
// tests/unit/planUnderMocks.test.ts runs it: under jest, an unhandled rejection goes to jest, not to the process
// listener that planUnderMocks sets.
import * as path from "path";
import { describeStack } from "../../cli/describe";

describeStack(path.resolve(__dirname, "../.."), "dev", {}, process.env.SWARMFORM_PLAN_KEY ?? "").then(
  ({ topology }) => console.log(JSON.stringify({ resources: topology.resources.length })),
  (e: Error) => console.log(JSON.stringify({ error: e.message })),
);
