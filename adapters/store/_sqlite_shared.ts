// What both SQLite drivers share: the FIFO hand-over of their single connection and savepoint SQL.

import { type CompiledQuery, IdentifierNode, type QueryCompiler, RawNode } from "kysely";

/** The SQL of a savepoint command (`savepoint`, `rollback to`, `release`) on `name`. */
export function compileSavepoint(
  command: string,
  name: string,
  compileQuery: QueryCompiler["compileQuery"],
): CompiledQuery {
  // IdentifierNode quotes the name, so a savepoint name cannot inject SQL.
  const node = RawNode.createWithChildren([
    RawNode.createWithSql(`${command} `),
    IdentifierNode.create(name),
  ]);
  return compileQuery(node, { queryId: crypto.randomUUID() });
}

/** Hands out the single connection in FIFO order. */
export class ConnectionMutex {
  #tail: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  async lock(): Promise<void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => release = resolve);
    await previous;
    this.#release = release;
  }

  unlock(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}
