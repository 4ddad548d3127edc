import { createServer } from 'node:net';
import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { Replicate } from '../../../decorators';

/**
 * Two small entities; only the primary's classes are @Replicate. The
 * target's `ObsNote.body` is shorter than the primary's, so a long body can
 * never apply there (data too long: a permanent failure, a dead letter).
 */
export function obsEntities(replicated: boolean) {
  const decorate = replicated ? Replicate({ to: ['t'] }) : () => undefined;

  @Entity('obs_item')
  class ObsItem {
    @PrimaryGeneratedColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 100 }) name!: string;
  }
  decorate(ObsItem);

  @Entity('obs_note')
  class ObsNote {
    @PrimaryGeneratedColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: replicated ? 100 : 5 }) body!: string;
  }
  decorate(ObsNote);

  return { ObsItem, ObsNote, all: [ObsItem, ObsNote] };
}

/** A port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `name{labels} value` lines of a Prometheus text exposition, by series. */
export function parseMetrics(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    series.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return series;
}
