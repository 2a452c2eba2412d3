// The one docker provider every workload resource uses.
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

/**
 * ssh(1) options for an `ssh://` docker host: fail fast and never prompt. Host keys are checked as usual
 * (known_hosts); `extra` may relax that (e.g. `-o StrictHostKeyChecking=accept-new`) when explicitly configured.
 */
export function sshOptsFor(host: string, extra: readonly string[] = []): string[] | undefined {
  if (!host.startsWith("ssh://")) return undefined;
  return ["-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "BatchMode=yes", ...extra];
}

/** Args of the docker provider pointed at `host` (`ssh://user@host[:port]`, `unix:///...`, `tcp://...`). */
export function dockerProviderArgs(
  host: pulumi.Input<string>,
  extraSshOpts: readonly string[] = [],
): docker.ProviderArgs {
  const h = pulumi.output(host);
  return { host: h, sshOpts: h.apply((v) => sshOptsFor(v, extraSshOpts) ?? []) };
}
