import * as crypto from "crypto";
import * as net from "net";
import { publicKeyOf } from "../../components/hosts/libvirt/LibvirtNodes";
import { loadSerialized } from "../testbed/serialize";
import * as pulumi from "@pulumi/pulumi";
import {
  closeAllTransports,
  describeTarget,
  fingerprintOf,
  generateSshKeyPair,
  knownHostsAccepts,
  localTransport,
  redact,
  sshTransport,
} from "../../components/hosts/transport";

const keys = generateSshKeyPair();

afterAll(() => closeAllTransports());

describe("localTransport", () => {
  it("returns stdout, stderr and the exit code, with env and stdin", async () => {
    const t = localTransport({ SF_TEST: "hello" });
    expect(await t.exec('echo "$SF_TEST"; echo oops >&2; exit 3')).toEqual({
      stdout: "hello\n",
      stderr: "oops\n",
      code: 3,
    });
    expect((await t.exec("tr a-z A-Z", "abc")).stdout).toBe("ABC");
    expect((await t.exec("true")).code).toBe(0);
    expect(t.host).toBe("local");
  });
});

describe("generateSshKeyPair", () => {
  // ssh2's own ed25519 keys fail to parse back about once in 256; 2000 such keys would all parse by chance
  // about once in 2400 runs.
  it("makes keys that ssh2 parses back, 2000 in a row, each with its own public half", () => {
    const publics = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const pair = generateSshKeyPair();
      // publicKeyOf parses the private key with ssh2 and throws when it cannot.
      expect(publicKeyOf(pair.private)).toBe(pair.public.split(" ").slice(0, 2).join(" "));
      publics.add(pair.public);
    }
    expect(publics.size).toBe(2000);
  });
});

describe("host keys", () => {
  const blob = Buffer.from(keys.public.split(" ")[1], "base64");
  it("formats fingerprints like ssh-keygen -lf", () => {
    expect(fingerprintOf(blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
  it("matches known_hosts lines by address, port and key", () => {
    const kh = `# comment\n10.0.0.1 ${keys.public}\n[10.0.0.2]:2222 ${keys.public}\n`;
    expect(knownHostsAccepts(kh, "10.0.0.1", 22, blob)).toBe(true);
    expect(knownHostsAccepts(kh, "10.0.0.2", 2222, blob)).toBe(true);
    expect(knownHostsAccepts(kh, "10.0.0.2", 22, blob)).toBe(false);
    expect(knownHostsAccepts(kh, "10.0.0.3", 22, blob)).toBe(false);
    const other = Buffer.from(generateSshKeyPair().public.split(" ")[1], "base64");
    expect(knownHostsAccepts(kh, "10.0.0.1", 22, other)).toBe(false);
  });
  it("matches hashed known_hosts entries", () => {
    const salt = crypto.randomBytes(20);
    const hash = crypto.createHmac("sha1", salt).update("10.0.0.9").digest("base64");
    const kh = `|1|${salt.toString("base64")}|${hash} ${keys.public}\n`;
    expect(knownHostsAccepts(kh, "10.0.0.9", 22, blob)).toBe(true);
    expect(knownHostsAccepts(kh, "10.0.0.8", 22, blob)).toBe(false);
  });
});

describe("errors", () => {
  it("redacts every line of the key", () => {
    const lines = keys.private.split("\n").filter((l) => l.length > 8);
    const msg = redact(`bad key: ${keys.private} and ${lines[1]}`, keys.private);
    for (const l of lines) expect(msg).not.toContain(l);
    expect(msg).toContain("bad key:");
  });

  it("names the host and the attempts on a refused connection, without the key", async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r())); // now nothing listens there
    const t = sshTransport({ host: "h9", address: "127.0.0.1", port, privateKey: keys.private, retries: 2 });
    const err: Error = await t.exec("true").then(
      () => new Error("no error"),
      (e) => e,
    );
    expect(err.message).toMatch(
      new RegExp(`^ssh root@127\\.0\\.0\\.1:${port} \\(h9\\): .*ECONNREFUSED.* after 2 attempts$`),
    );
    for (const l of keys.private.split("\n").filter((x) => x.length > 8))
      expect(err.message).not.toContain(l);
    expect(err.stack ?? "").not.toContain(keys.private.split("\n")[1]);
  });

  it("times out on a server that never speaks SSH, bounded by the attempts", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    const t = sshTransport({
      host: "h3",
      address: "127.0.0.1",
      port,
      privateKey: keys.private,
      connectTimeoutMs: 300,
      retries: 3,
    });
    const err: Error = await t.exec("true").then(
      () => new Error("no error"),
      (e) => e,
    );
    sockets.forEach((s) => s.destroy());
    server.close();
    expect(err.message).toBe(
      `${describeTarget({ host: "h3", address: "127.0.0.1", port })}: connection timed out after 3 attempts`,
    );
    expect(sockets.length).toBe(3);
  });

  it("refuses a key that cannot be parsed without echoing it", async () => {
    const bogus =
      "-----BEGIN OPENSSH PRIVATE KEY-----\nTHIS-IS-NOT-A-REAL-KEY-MATERIAL-xyz\n-----END OPENSSH PRIVATE KEY-----\n";
    const t = sshTransport({ host: "hx", address: "127.0.0.1", port: 1, privateKey: bogus, retries: 1 });
    const err: Error = await t.exec("true").then(
      () => new Error("no error"),
      (e) => e,
    );
    expect(err.message).toMatch(/^ssh root@127\.0\.0\.1:1 \(hx\): /);
    expect(err.message).not.toContain("THIS-IS-NOT-A-REAL-KEY-MATERIAL-xyz");
  });
});

describe("serialization (Pulumi dynamic providers)", () => {
  it("still works after pulumi.runtime.serializeFunction", async () => {
    const fn = async () => {
      const t = localTransport({ SF_SER: "serialized" });
      const r = await t.exec('echo "$SF_SER"');
      return typeof sshTransport === "function" ? r.stdout : "missing";
    };
    const sf = await pulumi.runtime.serializeFunction(fn);
    const handler = loadSerialized(sf.text)[sf.exportName] as () => Promise<string>;
    expect(await handler()).toBe("serialized\n");
  });
});
