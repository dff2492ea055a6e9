// A bounded FIFO of calls waiting for a worker; an aborted call leaves it at once.

/** An entry of the queue; `removed` is set when it left before its turn. */
export interface QueueEntry {
  /** Set when the entry was taken out of turn (its caller aborted). */
  removed: boolean;
}

// Removed entries the queue may keep beside its live ones before it drops them.
const DEAD_SLACK = 32;

/**
 * FIFO with O(1) push and shift and amortised O(1) removal: a removed entry is
 * skipped when its turn comes, and `size` counts only the live ones, so the
 * bound is exact. Removed entries are dropped before they outnumber the live
 * ones (beyond a small slack): each holds its caller's request, and a pool
 * whose calls are all aborted while they wait may never take a turn again.
 */
export class CallQueue<T extends QueueEntry> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #size = 0;
  // Removed entries still in `#items`.
  #dead = 0;

  /** Live entries waiting. */
  get size(): number {
    return this.#size;
  }

  /** Entries the queue still references, live or removed: at most `2 * size + 32`. */
  get held(): number {
    return this.#size + this.#dead;
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
      if (entry === undefined) continue;
      if (entry.removed) {
        this.#dead--;
        continue;
      }
      this.#size--;
      this.#compact();
      return entry;
    }
    this.#compact();
    return undefined;
  }

  /** Take an entry out of turn. */
  remove(entry: T): void {
    if (entry.removed) return;
    entry.removed = true;
    this.#size--;
    this.#dead++;
    if (this.#size === 0) {
      this.#clear();
    } else if (this.#dead > DEAD_SLACK && this.#dead > this.#size) {
      this.#items = this.#items.slice(this.#head).filter((e) => e !== undefined && !e.removed);
      this.#head = 0;
      this.#dead = 0;
    }
  }

  /** Take every live entry, oldest first, and empty the queue. */
  drain(): T[] {
    const live = this.#items.slice(this.#head).filter((e): e is T => e !== undefined && !e.removed);
    this.#clear();
    return live;
  }

  #clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#size = 0;
    this.#dead = 0;
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
