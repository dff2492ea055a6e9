// A small least-recently-used cache of compiled SQL text, keyed by a statement's shape.

/**
 * Keeps the SQL text of up to `size` (default 64) statement shapes (a
 * statement and its row count, say): Kysely builds and compiles a shape once, and later writes
 * of that shape only bind new parameters. The least recently used shape goes
 * first when the cache is full.
 *
 * @example
 * ```ts
 * import { shapeCache } from "./_shape_cache.ts";
 *
 * const sqlOf = shapeCache(2);
 * let built = 0;
 * const make = () => (built++, "insert into t values (?)");
 * sqlOf("t:1", make);
 * sqlOf("t:1", make);
 * console.assert(built === 1);
 * ```
 */
export function shapeCache(size = 64): (key: string, make: () => string) => string {
  const shapes = new Map<string, string>();
  return (key, make) => {
    const cached = shapes.get(key);
    if (cached !== undefined) {
      // Re-inserted so that the first key is the least recently used one.
      shapes.delete(key);
      shapes.set(key, cached);
      return cached;
    }
    const text = make();
    if (shapes.size >= size) shapes.delete(shapes.keys().next().value!);
    shapes.set(key, text);
    return text;
  };
}
