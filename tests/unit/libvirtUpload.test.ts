// uploadFile (components/hosts/libvirt/virsh.ts): a base image or seed reaches the hypervisor by `cp` when the
// hypervisor is this machine, and streamed in base64 chunks otherwise; both give the same bytes and sha256.
import { createHash } from "crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { hostOf, Host, uploadFile } from "../../components/hosts/libvirt/virsh";

jest.setTimeout(120_000); // a loaded machine streams 25 MiB through a shell slowly

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sf-upload-"));
  // Larger than one 24 MiB chunk, so the streamed path appends more than once.
  const data = Buffer.alloc(25 * 1024 * 1024 + 7);
  for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
  writeFileSync(join(dir, "src"), data);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");

test("a hypervisor without ssh is local; one with ssh is not", () => {
  expect(hostOf({ hypervisor: { name: "here" } }).local).toBe(true);
  expect(
    hostOf({ hypervisor: { name: "there", ssh: { address: "10.0.0.9" } }, privateKey: "unused" }).local,
  ).toBe(false);
});

test("local: the file is copied with cp (no stdin), same bytes and sha256", async () => {
  const h = hostOf({ hypervisor: { name: "here" } });
  const commands: string[] = [];
  const spy: Host = { ...h, run: (what, cmd, stdin) => (commands.push(cmd), h.run(what, cmd, stdin)) };
  const sum = await uploadFile(spy, join(dir, "src"), join(dir, "local"));
  expect(sum).toBe(sha(join(dir, "src")));
  expect(sha(join(dir, "local"))).toBe(sum);
  expect(commands[0]).toMatch(/^cp --sparse=always /);
  expect(commands.some((c) => c.includes("base64"))).toBe(false);
});

test("remote: the file is streamed in base64 chunks, same bytes and sha256", async () => {
  const h = hostOf({ hypervisor: { name: "here" } });
  const commands: string[] = [];
  const remote: Host = {
    ...h,
    local: false,
    run: (what, cmd, stdin) => (commands.push(cmd), h.run(what, cmd, stdin)),
  };
  const sum = await uploadFile(remote, join(dir, "src"), join(dir, "remote"));
  expect(sum).toBe(sha(join(dir, "src")));
  expect(commands.filter((c) => c.startsWith("base64 -d >> ")).length).toBe(2);
});
