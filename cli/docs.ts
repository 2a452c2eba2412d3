// `npm run docs`: writes docs/config-reference.md from the config schema.
import * as fs from "fs";
import * as path from "path";
import { renderConfigReference } from "../components/config/configReference";

export const CONFIG_REFERENCE = path.resolve(__dirname, "..", "docs", "config-reference.md");

if (require.main === module) {
  fs.mkdirSync(path.dirname(CONFIG_REFERENCE), { recursive: true });
  fs.writeFileSync(CONFIG_REFERENCE, renderConfigReference());
  process.stdout.write(`wrote ${path.relative(process.cwd(), CONFIG_REFERENCE)}\n`);
}
