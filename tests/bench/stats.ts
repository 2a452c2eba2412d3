// What the benchmarks share: the `--runs N` command line and the median of a row.

/** `--runs N` (or `--runs=N`) from the command line; `-h`/`--help` prints the usage of `bench:<bench>` and exits. */
export function parseRuns(argv: readonly string[], bench: string, defaultRuns = 5): number {
  let runs = defaultRuns;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    let v: string | undefined;
    if (a === "--runs") v = argv[++i];
    else if (a.startsWith("--runs=")) v = a.slice("--runs=".length);
    else if (a === "-h" || a === "--help") {
      console.log(`usage: npm run bench:${bench} -- [--runs N]   (run as root; default ${defaultRuns} runs)`);
      process.exit(0);
    } else throw new Error(`unknown argument "${a}" (usage: --runs N)`);
    if (v === undefined || !/^[1-9][0-9]*$/.test(v)) throw new Error(`--runs needs a positive integer`);
    runs = Number(v);
  }
  return runs;
}

/**
 * `--runs N` and `--extended` (the rows beyond what issue #11 asks for) from the command line of `bench:<bench>`;
 * anything else is an error, as in parseRuns.
 */
export function parseRunsAndExtended(
  argv: readonly string[],
  bench: string,
): { runs: number; extended: boolean } {
  return {
    runs: parseRuns(
      argv.filter((a) => a !== "--extended"),
      bench,
    ),
    extended: argv.includes("--extended"),
  };
}

/** The rows a benchmark measures: those marked `extended` only with --extended. */
export function rowsFor<R extends object>(rows: readonly R[], extended: boolean): R[] {
  return rows.filter((r) => extended || !("extended" in r));
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
