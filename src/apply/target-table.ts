import type { QueryRunner } from 'typeorm';
import type { Dialect, TargetColumn } from '../dialect/dialect';
import { DualWriteError } from '../errors/dual-write-error';
import type { ReplicatedColumn, ReplicatedEntity } from '../metadata/replicated-entity';

/** How one entity's rows are written into one target table. */
export interface TargetTable {
  table: string;
  /** The entity's replicated columns, in order, each with its target column. */
  columns: ReadonlyArray<{ source: ReplicatedColumn; target: TargetColumn }>;
  keyColumns: readonly TargetColumn[];
  /** Key columns whose collation folds case or accents (see TargetColumn.foldsCase). */
  foldingKeyColumns: readonly string[];
}

/**
 * Reads a target table's columns and matches them to the entity's replicated
 * columns (with the @Replicate renames). A missing table or column is a
 * permanent error that names the entity, the target and the column.
 */
export async function describeTargetTable(
  queryRunner: QueryRunner,
  dialect: Dialect,
  entity: ReplicatedEntity,
  target: string,
): Promise<TargetTable> {
  const mapping = entity.targets.get(target);
  if (!mapping) {
    throw new DualWriteError(
      'ENTITY_NOT_FOUND',
      `A change of entity "${entity.name}" reached target "${target}", which its @Replicate({ to }) does not list (${entity.options.to.join(', ')}).`,
      { entity: entity.name, target },
    );
  }
  const statement = dialect.apply.describeTable(mapping.table);
  const rows = (await queryRunner.query(statement.sql, statement.params)) as Record<string, unknown>[];
  if (rows.length === 0) {
    throw new DualWriteError(
      'TARGET_TABLE_MISSING',
      `Target "${target}" has no table "${mapping.table}" for entity "${entity.name}". ` +
        `Create it in the target database (same columns as the primary's "${entity.tablePath}"), or set @Replicate({ table }) to the right name.`,
      { entity: entity.name, target },
    );
  }
  const described = new Map(rows.map((row) => dialect.apply.readColumn(row)).map((c) => [c.name, c]));
  const columns = entity.columns.map((source) => {
    const name = mapping.columnNames.get(source.databaseName) ?? source.databaseName;
    const column = described.get(name);
    if (!column) {
      throw new DualWriteError(
        'TARGET_COLUMN_MISSING',
        `Target "${target}" table "${mapping.table}" has no column "${name}" for ${entity.name}.${source.propertyPath}. ` +
          `Add the column to the target table, or map it with @Replicate({ columns: { ${target}: { ${source.propertyPath}: '<target column>' } } }).`,
        { entity: entity.name, target, column: name },
      );
    }
    return { source, target: column };
  });
  const keyColumns = columns.filter((c) => c.source.isPrimary).map((c) => c.target);
  const foldingKeyColumns = keyColumns.filter((c) => c.foldsCase === true).map((c) => c.name);
  return { table: mapping.table, columns, keyColumns, foldingKeyColumns };
}
