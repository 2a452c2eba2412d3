// A Docker Engine API client for a remote host, through one SSH connection: a local unix socket whose every
// connection is forwarded to the host's /var/run/docker.sock (OpenSSH's direct-streamlocal channel). Unlike
// dockerode's own `protocol: "ssh"` (a new SSH connection per request, never closed when a request keeps its
// socket), `close()` ends everything, so the test process can exit.
import { mkdtempSync, rmSync } from "fs";
import * as net from "net";
import { tmpdir } from "os";
import { join } from "path";
import Docker from "dockerode";
import { Client } from "ssh2";

export interface DockerOverSsh {
  readonly docker: Docker;
  close(): Promise<void>;
}

export async function dockerOverSsh(target: {
  address: string;
  port?: number;
  user: string;
  privateKey: string;
  remoteSocket?: string;
}): Promise<DockerOverSsh> {
  const client = new Client();
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve());
    client.once("error", reject);
    client.connect({
      host: target.address,
      port: target.port ?? 22,
      username: target.user,
      privateKey: target.privateKey,
      readyTimeout: 20_000,
    });
  });
  const dir = mkdtempSync(join(tmpdir(), "sf-docker-ssh-"));
  const socketPath = join(dir, "docker.sock");
  const open = new Set<net.Socket>();
  const server = net.createServer((local) => {
    open.add(local);
    local.once("close", () => open.delete(local));
    client.openssh_forwardOutStreamLocal(target.remoteSocket ?? "/var/run/docker.sock", (err, remote) => {
      if (err) {
        local.destroy(err);
        return;
      }
      local.pipe(remote).pipe(local);
      local.once("close", () => remote.close());
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    docker: new Docker({ socketPath }),
    async close() {
      for (const s of open) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      client.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
