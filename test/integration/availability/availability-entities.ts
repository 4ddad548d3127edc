import { Column, Entity, PrimaryColumn, type DataSource, type ObjectLiteral } from 'typeorm';
import { Replicate } from '../../../decorators';

/**
 * The availability tests' entity, replicated to the given targets. Each call
 * makes a fresh class, so the primary's (marked @Replicate) and a target's
 * (plain, only to create the table) never share decorator metadata.
 */
export function availabilityEntities(targets: string[] | undefined) {
  @Entity('avail_item')
  class AvailItem {
    @PrimaryColumn({ type: 'int' }) id!: number;
    @Column({ type: 'varchar', length: 64 }) label!: string;
    @Column({ type: 'int' }) qty!: number;
  }
  if (targets) Replicate({ to: targets })(AvailItem);
  return { AvailItem, all: [AvailItem] };
}

/** Inserts ids [from, to) (20 a transaction), then updates every third and removes every seventh of them, one by one. Captured paths only (save/remove). */
export async function writeItems(
  primary: DataSource,
  entity: Function,
  from: number,
  to: number,
  round: string,
): Promise<void> {
  const repo = primary.getRepository<ObjectLiteral>(entity);
  const ids = Array.from({ length: to - from }, (_, i) => from + i);
  for (let i = 0; i < ids.length; i += 20) {
    await repo.save(ids.slice(i, i + 20).map((id) => ({ id, label: `${round}-${id}`, qty: id })));
  }
  for (const id of ids) {
    if (id % 3 === 0) await repo.save([{ id, label: `${round}-updated-${id}`, qty: id * 10 }]);
    if (id % 7 === 0) await repo.remove([repo.create({ id })]);
  }
}
