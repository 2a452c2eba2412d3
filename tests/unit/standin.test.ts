// The stand-in recipe shared by `npm run images:local` and the engine tests (scripts/standin-image.ts).
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { fillStandin, standinNeeds } from "../../scripts/standin-image";

test("standinNeeds: commands of entrypoints and healthchecks, HTTP ports and paths of healthchecks and ports", () => {
  expect(
    standinNeeds([
      {
        entrypoint: ["traefik", "--x"],
        healthcheck: ["CMD", "wget", "-q", "http://localhost:8080/ping"],
        ports: [80],
      },
      { healthcheck: ["CMD-SHELL", "  mysqladmin ping -h 127.0.0.1"], ports: [] },
      { healthcheck: ["CMD-SHELL", "curl -f http://127.0.0.1/heartbeat"], ports: [3000, 80] },
    ]),
  ).toEqual({
    commands: ["traefik", "wget", "mysqladmin", "curl"],
    httpPorts: [80, 3000, 8080],
    httpPaths: ["/ping", "/heartbeat"],
  });
});

test("fillStandin: the program, links for commands busybox lacks, the ports file and the paths to serve", () => {
  const root = mkdtempSync(join(tmpdir(), "swarmform-standin-test-"));
  try {
    fillStandin(root, {
      commands: ["traefik", "wget", "/bin/healthz"],
      httpPorts: [80, 8080],
      httpPaths: ["/a/b", "/"],
    });
    expect(lstatSync(join(root, "standin")).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(root, "usr/local/bin/traefik"))).toBe("/standin");
    expect(readlinkSync(join(root, "bin/healthz"))).toBe("/standin");
    expect(() => lstatSync(join(root, "usr/local/bin/wget"))).toThrow();
    expect(readFileSync(join(root, "etc/standin/http-ports"), "utf8")).toBe("80\n8080\n");
    expect(readFileSync(join(root, "www/a/b"), "utf8")).toBe("ok\n");
    expect(readFileSync(join(root, "www/index.html"), "utf8")).toBe("stand-in\n");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
