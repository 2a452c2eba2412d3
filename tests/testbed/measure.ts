// Measures the testbed: time to start N hosts, one new SSH connection, one exec on a reused connection.
// Run as root: npx ts-node --transpile-only tests/testbed/measure.ts [hosts] [name]

import { closeAllTransports, sshTransport } from "../../components/hosts/transport";
import { startTestbed } from "./testbed";

async function main(): Promise<void> {
  const hosts = Number(process.argv[2] ?? 5);
  const name = process.argv[3] ?? "measure";
  let t = Date.now();
  const tb = await startTestbed({ hosts, name });
  console.log(`start ${hosts} hosts: ${Date.now() - t} ms`);
  try {
    const connects: number[] = [];
    const execs: number[] = [];
    for (const h of tb.hosts) {
      const transport = sshTransport(tb.sshTarget(h.name));
      t = Date.now();
      await transport.exec("true"); // connection + first exec
      const first = Date.now() - t;
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        t = Date.now();
        await transport.exec("true");
        times.push(Date.now() - t);
      }
      const exec = times.reduce((a, b) => a + b, 0) / times.length;
      execs.push(exec);
      connects.push(first - exec);
    }
    const avg = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0);
    console.log(`new SSH connection (connect + auth), mean over ${hosts} hosts: ${avg(connects)} ms`);
    console.log(`exec "true" on a reused connection, mean: ${avg(execs)} ms`);
    t = Date.now();
    await Promise.all(tb.hosts.map((h) => tb.exec(h.name, "docker info --format '{{.Name}}'")));
    console.log(`docker info on all ${hosts} hosts in parallel: ${Date.now() - t} ms`);
  } finally {
    await closeAllTransports();
    t = Date.now();
    await tb.down();
    console.log(`down: ${Date.now() - t} ms`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
