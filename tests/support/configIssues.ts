// The formatted issues of a ConfigError, for tests that expect a config to be refused.
import { ConfigError, formatIssue } from "../../components/config/errors";

/** The issues of a ConfigError thrown by `fn`, formatted; fails when nothing is thrown. */
export function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map(formatIssue);
    throw e;
  }
  throw new Error("expected a ConfigError");
}
