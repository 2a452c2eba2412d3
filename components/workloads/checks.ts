// What the config layer accepts but the workloads layer cannot deploy: reported before any resource exists.
import { ConfigIssue, ClusterSpec } from "../config/types";

/**
 * External configs/secrets that a service uses: the swarm API needs their ids, and the docker provider
 * cannot look a config or secret up by name, so the service would be rejected at `pulumi up`.
 */
export function workloadIssues(spec: ClusterSpec): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const stack of spec.stacks) {
    for (const kind of ["configs", "secrets"] as const) {
      const external = new Map(stack[kind].filter((f) => f.external).map((f) => [f.key, f]));
      const used = new Set(stack.services.flatMap((s) => s[kind].map((r) => r.key)));
      for (const [key, f] of external) {
        if (!used.has(key)) continue;
        issues.push({
          origin: f.origin,
          message:
            `external ${kind.slice(0, -1)} "${f.name}" is not supported: Swarmform needs to create it to know its id; ` +
            `define it in the stack file with \`file:\` instead`,
        });
      }
    }
  }
  return issues;
}
