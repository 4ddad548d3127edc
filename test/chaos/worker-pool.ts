import type { WriteStream } from 'node:fs';
import { ChaosProcess } from './chaos-process';

/** Keeps `count` `dualwrite worker` processes alive: a dead one (killed, or failed to start while a target is down) is replaced. */
export class WorkerPool {
  readonly processes: Array<ChaosProcess | undefined> = [];
  private stopping = false;
  exitsOnTheirOwn = 0;
  private generation = 0;

  constructor(
    private readonly count: number,
    private readonly env: Record<string, string>,
    private readonly log: WriteStream,
  ) {}

  start(): void {
    for (let i = 0; i < this.count; i++) this.spawn(i);
  }

  private spawn(slot: number): void {
    if (this.stopping) return;
    const p = ChaosProcess.worker(`worker${slot}.${++this.generation}`, this.env, this.log);
    this.processes[slot] = p;
    void p.exited.then(({ signal }) => {
      if (this.stopping) return;
      if (signal !== 'SIGKILL') this.exitsOnTheirOwn++;
      // A worker that could not start (a target down) is retried a little later.
      setTimeout(() => this.spawn(slot), signal === 'SIGKILL' ? 200 : 1000);
    });
  }

  /** SIGKILLs one running worker at random; false if none was running. */
  async killOne(random: () => number): Promise<boolean> {
    const running = this.processes.filter((p): p is ChaosProcess => !!p && p.running);
    if (running.length === 0) return false;
    await running[Math.floor(random() * running.length)].kill();
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.processes.map((p) => p?.stop(15_000)));
  }
}
