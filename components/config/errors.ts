/** Where a problem is: a Pulumi config key path (`swarmform:nodes.managers.count`) or a file position. */
export type Origin =
  { readonly key: string } | { readonly file: string; readonly line: number; readonly path?: string };

/** One validation problem. `message` states what is wrong and what is allowed. */
export interface ConfigIssue {
  readonly origin: Origin;
  readonly message: string;
}

/** `swarmform:nodes.managers.count` or `stacks/popcube.yaml:12 (services.api.image)`. */
export function formatOrigin(origin: Origin): string {
  if ("key" in origin) return origin.key;
  return `${origin.file}:${origin.line}` + (origin.path ? ` (${origin.path})` : "");
}

/** One line per issue: `<origin>: <message>`. */
export function formatIssue(issue: ConfigIssue): string {
  return `${formatOrigin(issue.origin)}: ${issue.message}`;
}

/** Thrown when a config or stack file is invalid; carries every issue found, not just the first. */
export class ConfigError extends Error {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(
      `invalid Swarmform configuration (${issues.length} problem${issues.length === 1 ? "" : "s"}):\n` +
        issues.map((i) => `  ${formatIssue(i)}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

/** Config key origin in the project namespace: `keyOrigin("nodes.managers.count")`. */
export function keyOrigin(path: string, namespace = "swarmform"): Origin {
  return { key: `${namespace}:${path}` };
}
