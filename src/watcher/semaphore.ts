/** At most `size` holders at once; the others wait in the order they asked. */
export interface Semaphore {
  acquire(): Promise<void>;
  release(): void;
  /** Holders that could start now without waiting. */
  available(): number;
}

export function createSemaphore(size: number): Semaphore {
  let free = size;
  const waiting: (() => void)[] = [];
  return {
    acquire(): Promise<void> {
      if (free > 0) {
        free--;
        return Promise.resolve();
      }
      return new Promise((resolve) => waiting.push(resolve));
    },
    release(): void {
      const next = waiting.shift();
      if (next) next();
      else free++;
    },
    available(): number {
      return Math.max(0, free - waiting.length);
    },
  };
}
