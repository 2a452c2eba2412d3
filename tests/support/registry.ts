// Helpers to talk to a registry the way clients do: the docker CLI with its own credential store
// (a temp DOCKER_CONFIG, so the machine's ~/.docker is never touched), and raw HTTP on the v2 API.
import * as http from "http";
import { mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { dockerCli } from "./dockerd";

/** A docker CLI client with an empty credential store of its own. `dispose()` removes it. */
export function dockerClient(): { run(args: string[], input?: string): string; dispose(): void } {
  const dir = mkdtempSync(join(tmpdir(), "swarmform-docker-config-"));
  return {
    run: (args, input) => dockerCli(["--config", dir, ...args], { input }),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** GET `http://127.0.0.1:<port><path>`, with Basic auth if `user` is given. */
export function registryGet(
  port: number,
  path: string,
  user?: string,
  password?: string,
): Promise<HttpAnswer> {
  const headers: Record<string, string> = {
    Accept: "application/vnd.docker.distribution.manifest.v2+json",
  };
  if (user !== undefined)
    headers.Authorization = `Basic ${Buffer.from(`${user}:${password ?? ""}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, headers, timeout: 10_000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("timeout", () => req.destroy(new Error(`timeout on 127.0.0.1:${port}${path}`)));
    req.on("error", reject);
  });
}
