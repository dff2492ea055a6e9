// A bounded FIFO of calls waiting for a worker; an aborted call leaves it at once.

/** An entry of the queue; `removed` is set when it left before its turn. */
export interface QueueEntry {
  /** Set when the entry was taken out of turn (its caller aborted). */
  removed: boolean;
}

/**
 * FIFO with O(1) push, shift and removal: a removed entry is skipped when its
 * turn comes, and `size` counts only the live ones, so the bound is exact.
 */
export class CallQueue<T extends QueueEntry> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #size = 0;

  /** Live entries waiting. */
  get size(): number {
    return this.#size;
  }

  /** Add at the back. */
  push(entry: T): void {
    this.#items.push(entry);
    this.#size++;
  }

  /** Take the oldest live entry, or `undefined`. */
  shift(): T | undefined {
    while (this.#head < this.#items.length) {
      const entry = this.#items[this.#head];
      this.#items[this.#head++] = undefined;
      if (entry !== undefined && !entry.removed) {
        this.#size--;
        this.#compact();
        return entry;
      }
    }
    this.#compact();
    return undefined;
  }

  /** Take an entry out of turn. */
  remove(entry: T): void {
    if (entry.removed) return;
    entry.removed = true;
    this.#size--;
  }

  /** Take every live entry, oldest first, and empty the queue. */
  drain(): T[] {
    const live = this.#items.slice(this.#head).filter((e): e is T => e !== undefined && !e.removed);
    this.#items = [];
    this.#head = 0;
    this.#size = 0;
    return live;
  }

  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
