import type { WriteStream } from 'node:fs';
import { ChaosProcess, WRITER } from './chaos-process';
import { emptyTally, type WriterTally } from './workload';

/**
 * Writer processes sharing a quota of committed changes; a writer killed
 * mid-transaction is replaced by one that writes the rest of its share.
 */
export class WriterGroup {
  private readonly committed: number[] = [];
  private readonly done: boolean[] = [];
  private readonly procs: Array<ChaosProcess | undefined> = [];
  private readonly base: WriterTally[] = [];
  private readonly current: WriterTally[] = [];
  private generation = 0;
  killedMidTransaction = 0;
  finished: Promise<void>;
  private resolveFinished!: () => void;
  private failure: Error | undefined;

  constructor(
    private readonly count: number,
    private readonly quota: number,
    private readonly rate: number,
    private readonly seed: number,
    private readonly env: Record<string, string>,
    private readonly log: WriteStream,
  ) {
    this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
  }

  start(): void {
    for (let w = 0; w < this.count; w++) {
      this.base[w] = emptyTally();
      this.current[w] = emptyTally();
      this.committed[w] = 0;
      this.done[w] = false;
      this.spawn(w);
    }
  }

  private share(w: number): number {
    return Math.floor(this.quota / this.count) + (w < this.quota % this.count ? 1 : 0);
  }

  private spawn(w: number): void {
    const remaining = this.share(w) - this.committed[w];
    const p = ChaosProcess.spawn(
      `writer${w}.${++this.generation}`,
      [WRITER],
      {
        ...this.env,
        CHAOS_WRITER: String(w),
        CHAOS_WRITERS: String(this.count),
        CHAOS_QUOTA: String(remaining),
        CHAOS_SEED: String((this.seed + 7919 * this.generation) >>> 0),
        CHAOS_RATE: String(this.rate),
      },
      { ipc: true, log: this.log },
    );
    this.procs[w] = p;
    p.child.on('message', (m: { type: string; tally: WriterTally }) => {
      this.current[w] = m.tally;
      this.committed[w] = this.base[w].changes + m.tally.changes;
      if (m.type === 'done') this.done[w] = true;
    });
    void p.exited.then(({ code, signal }) => {
      if (this.done[w]) return this.check();
      if (signal === 'SIGKILL') {
        // Its open transaction died with it; a new writer writes the rest of its share.
        this.base[w] = add(this.base[w], this.current[w]);
        this.current[w] = emptyTally();
        this.spawn(w);
        return;
      }
      this.failure = new Error(`writer ${w} exited with ${code ?? signal} before its quota:\n${p.output()}`);
      this.resolveFinished();
    });
  }

  private check(): void {
    if (this.done.every(Boolean)) this.resolveFinished();
  }

  /** Committed changes so far. */
  progress(): number {
    return this.committed.reduce((a, b) => a + b, 0);
  }

  tally(): WriterTally {
    return this.current.reduce((acc, t, w) => add(acc, add(this.base[w], t)), emptyTally());
  }

  get running(): boolean {
    return !this.done.every(Boolean) && !this.failure;
  }

  /** Asks a running writer to SIGKILL itself between its next transaction's writes and its COMMIT; resolves when it died. */
  async killOneMidTransaction(random: () => number): Promise<boolean> {
    const candidates = this.procs.map((p, w) => ({ p, w })).filter(({ p, w }) => p?.running && !this.done[w]);
    if (candidates.length === 0) return false;
    const { p } = candidates[Math.floor(random() * candidates.length)];
    p!.child.send({ type: 'die-in-transaction' });
    const { signal } = await p!.exited;
    if (signal === 'SIGKILL') this.killedMidTransaction++;
    return signal === 'SIGKILL';
  }

  async wait(): Promise<void> {
    await this.finished;
    if (this.failure) throw this.failure;
  }

  async kill(): Promise<void> {
    await Promise.all(this.procs.map((p) => p?.kill()));
  }
}

export function add(a: WriterTally, b: WriterTally): WriterTally {
  const out = { ...a };
  for (const k of Object.keys(out) as Array<keyof WriterTally>) out[k] = a[k] + b[k];
  return out;
}
