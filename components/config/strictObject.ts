// One zod helper shared by the config schemas (clusterConfig, libvirt).
import { z } from "zod";

/** A strict object: unknown keys are errors that list the allowed keys. */
export function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const allowed = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === "unrecognized_keys"
        ? `unknown key; allowed keys here: ${allowed}`
        : iss.code === "invalid_type"
          ? `must be a map with the keys ${allowed}`
          : undefined,
  });
}
