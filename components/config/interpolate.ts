// Compose variable interpolation (https://github.com/compose-spec/compose-spec/blob/main/spec.md#interpolation):
// `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`,
// `${VAR:+alt}`, `${VAR+alt}`, and `$$` for a literal `$`. Defaults and alternatives are themselves
// interpolated (`${A:-${B}}`). An unset variable without a default becomes "" (as compose does).

/** Variables visible to interpolation; `undefined` means unset. */
export type InterpolationVars = Readonly<Record<string, string | undefined>>;

/** Result of {@link interpolate}: the value, and one message per problem (empty when fine). */
export interface InterpolationResult {
  readonly value: string;
  readonly errors: readonly string[];
  /** Every variable the text names; `defaulted` when it has a default (`${VAR:-x}`, `${VAR-x}`). */
  readonly used: readonly { readonly name: string; readonly defaulted: boolean }[];
}

type Uses = { name: string; defaulted: boolean }[];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Interpolates one string scalar. Never throws; problems (missing required vars, bad syntax) go to `errors`. */
export function interpolate(text: string, vars: InterpolationVars): InterpolationResult {
  const errors: string[] = [];
  const used: Uses = [];
  const value = expand(text, vars, errors, used);
  return { value, errors, used };
}

function expand(text: string, vars: InterpolationVars, errors: string[], used: Uses): string {
  let out = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== "$") {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === "$") {
      out += "$";
      i += 2;
      continue;
    }
    if (next === "{") {
      const end = matchingBrace(text, i + 1);
      if (end < 0) {
        errors.push(`invalid interpolation format in "${text}": unterminated "\${"`);
        return out + text.slice(i);
      }
      out += braced(text.slice(i + 2, end), text, vars, errors, used);
      i = end + 1;
      continue;
    }
    const name = NAME.exec(text.slice(i + 1));
    if (name) {
      used.push({ name: name[0], defaulted: false });
      out += vars[name[0]] ?? "";
      i += 1 + name[0].length;
      continue;
    }
    errors.push(
      `invalid interpolation format in "${text}": "$" must be followed by a name, "{" or "$" (write "$$" for a literal "$")`,
    );
    out += "$";
    i++;
  }
  return out;
}

/** Index of the `}` closing the `{` at `open`, counting nested `${...}`; -1 if none. */
function matchingBrace(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === "{") depth++;
    else if (text[j] === "}") {
      depth--;
      if (depth === 0) return j;
    }
  }
  return -1;
}

function braced(inner: string, whole: string, vars: InterpolationVars, errors: string[], used: Uses): string {
  const name = NAME.exec(inner)?.[0];
  if (!name) {
    errors.push(
      `invalid interpolation format in "${whole}": "\${${inner}}" does not start with a variable name`,
    );
    return "";
  }
  const rest = inner.slice(name.length);
  used.push({ name, defaulted: rest.startsWith(":-") || rest.startsWith("-") });
  const raw = vars[name];
  const isSet = raw !== undefined;
  const nonEmpty = isSet && raw !== "";
  if (rest === "") return raw ?? "";
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest)?.[0];
  if (!op) {
    errors.push(`invalid interpolation format in "${whole}": unknown operator after \${${name}`);
    return "";
  }
  const arg = rest.slice(op.length);
  switch (op) {
    case ":-":
      return nonEmpty ? raw : expand(arg, vars, errors, used);
    case "-":
      return isSet ? raw : expand(arg, vars, errors, used);
    case ":?":
    case "?": {
      const ok = op === ":?" ? nonEmpty : isSet;
      if (ok) return raw as string;
      const msg = expand(arg, vars, errors, used);
      errors.push(
        `required variable ${name} is ${isSet ? "empty" : "missing a value"}` + (msg ? `: ${msg}` : ""),
      );
      return "";
    }
    case ":+":
      return nonEmpty ? expand(arg, vars, errors, used) : "";
    default: // "+"
      return isSet ? expand(arg, vars, errors, used) : "";
  }
}
