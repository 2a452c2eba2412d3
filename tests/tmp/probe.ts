import { startTestbed } from "../testbed/testbed";
async function main() {
  const tb = await startTestbed({ hosts: 2, name: "probe" });
  try {
    const cmds = [
      "true",
      "docker --version",
      "docker version --format x",
      "docker info --format '{{json .Swarm}}'",
      "docker swarm init --advertise-addr " + tb.hosts[0].address + " >/dev/null",
      "docker info --format '{{json .Swarm}}'",
      "docker node ls -q",
      "docker node inspect $(docker node ls -q) >/dev/null",
      "docker swarm join-token -q worker",
      "curl --version >/dev/null 2>&1 && echo curl; wget --version >/dev/null 2>&1 && echo wget; which socat nc python3",
    ];
    for (const c of cmds) {
      const times: number[] = [];
      let out = "";
      for (let i = 0; i < (c.includes("init") ? 1 : 5); i++) {
        const t = Date.now();
        const r = await tb.exec("h1", c);
        times.push(Date.now() - t);
        out = (r.stdout + r.stderr).slice(0, 80).replace(/\n/g, " ");
      }
      console.log(times.join(" "), "|", c, "|", out);
    }
    for (const c of ["docker --version", "docker version --format x"]) {
      const r = await tb.exec("h1", `s=$(date +%s%N); for i in 1 2 3 4 5; do ${c} >/dev/null; done; e=$(date +%s%N); echo $(( (e-s)/5000000 ))ms`);
      console.log("on host:", c, r.stdout.trim());
    }
  } finally {
    await tb.down();
  }
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
