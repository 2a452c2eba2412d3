// docs/config-reference.md is generated from the config schema: it must be current, and every key of
// the schema must have a description.
import * as fs from "fs";
import { CONFIG_REFERENCE } from "../../cli/docs";
import {
  CONFIG_DESCRIPTIONS,
  referenceRows,
  renderConfigReference,
} from "../../components/config/configReference";

test("every key of the config schema has a description, and no description is for a key that is gone", () => {
  const paths = referenceRows().map((r) => r.path);
  expect(paths.filter((p) => !(p in CONFIG_DESCRIPTIONS))).toEqual([]);
  expect(Object.keys(CONFIG_DESCRIPTIONS).filter((p) => !paths.includes(p))).toEqual([]);
  expect(paths).toEqual(expect.arrayContaining(["images", "encryptNetworks", "nodes.hosts[].labels"]));
});

test("docs/config-reference.md is current (run `npm run docs` when this fails)", () => {
  expect(fs.readFileSync(CONFIG_REFERENCE, "utf8")).toBe(renderConfigReference());
});
