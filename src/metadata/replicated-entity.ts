import type { DataSource, EntityMetadata } from 'typeorm';
import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata';
import { DualWriteError } from '../errors/dual-write-error';
import { getReplicationStorage, type ReplicateOptions, type ReplicationRecord } from './replication-storage';
import { unsupportedTypeOf, valueKindOf, type ValueKind } from './value-kind';

/** One replicated column, resolved against TypeORM's metadata. */
export interface ReplicatedColumn {
  /** Column name in the primary's table; the key of row images. */
  readonly databaseName: string;
  /** Dotted property path in the entity (embedded columns included). */
  readonly propertyPath: string;
  readonly kind: ValueKind;
  readonly isPrimary: boolean;
  readonly nullable: boolean;
  readonly metadata: ColumnMetadata;
}

/** Where and under which names an entity lands in one target. */
export interface TargetMapping {
  readonly target: string;
  readonly table: string;
  /** Primary database column name → target column name. */
  readonly columnNames: ReadonlyMap<string, string>;
}

/** An entity marked with `@Replicate`, resolved at start-up. */
export interface ReplicatedEntity {
  /** TypeORM's entity name; the stable identifier in the outbox and jobs. */
  readonly name: string;
  readonly metadata: EntityMetadata;
  /** The primary's table, schema-qualified where one is set. */
  readonly tablePath: string;
  readonly columns: readonly ReplicatedColumn[];
  readonly primaryColumns: readonly ReplicatedColumn[];
  readonly targets: ReadonlyMap<string, TargetMapping>;
  readonly options: ReplicateOptions;
  /**
   * Single-table inheritance: the child entities whose rows live in this
   * root entity's table. Their writes are captured as this entity's, so a
   * row has one version history whichever class wrote it.
   */
  readonly children: readonly EntityMetadata[];
  /**
   * Whether written rows are read back at commit instead of imaged from the
   * entity object: a single-table hierarchy's discriminator column is filled
   * by TypeORM from metadata, not from the object, and a child object holds
   * only its own class's columns of the shared table.
   */
  readonly readsBack: boolean;
}

/**
 * Resolves the plugin's decorator records against the primary DataSource's
 * metadata. Records for entities that this DataSource does not hold are
 * ignored (an application may have several DataSources).
 */
export function resolveReplicatedEntities(
  dataSource: DataSource,
  targetNames: readonly string[],
): Map<string, ReplicatedEntity> {
  const storage = getReplicationStorage();
  // Single-table children are captured as their root (see `ReplicatedEntity.children`).
  const childrenOf = new Map<EntityMetadata, EntityMetadata[]>();
  for (const metadata of dataSource.entityMetadatas) {
    if (metadata.tableType !== 'entity-child') continue;
    const root = rootOf(metadata);
    if (storage.entities.some((r) => r.target === metadata.target || r.target === metadata.name)) {
      throw new DualWriteError(
        'CONFIG_INVALID',
        `@Replicate is on entity "${metadata.name}", a single-table child of "${root.name}" (their rows share table "${root.tableName}"). ` +
          `Put @Replicate on the root entity "${root.name}" only: it replicates the whole table, every child's rows included.`,
        { entity: metadata.name },
      );
    }
    childrenOf.set(root, [...(childrenOf.get(root) ?? []), metadata]);
  }
  const resolved = new Map<string, ReplicatedEntity>();
  for (const metadata of dataSource.entityMetadatas) {
    if (metadata.tableType === 'entity-child') continue;
    const record = findRecord(metadata, storage.entities);
    if (!record) continue;
    resolved.set(metadata.name, resolveEntity(metadata, record.options, targetNames, childrenOf.get(metadata) ?? []));
  }
  return resolved;
}

/** The root entity of a single-table hierarchy (whose table its children share). */
function rootOf(metadata: EntityMetadata): EntityMetadata {
  let root = metadata;
  while (root.tableType === 'entity-child' && root.parentEntityMetadata) root = root.parentEntityMetadata;
  return root;
}

function findRecord(metadata: EntityMetadata, records: readonly ReplicationRecord[]): ReplicationRecord | undefined {
  const target = metadata.target;
  for (const record of records) {
    if (record.target === target || record.target === metadata.name) return record;
    if (typeof record.target === 'object' && record.target !== null && 'options' in record.target) {
      const schemaName = (record.target as { options?: { name?: string } }).options?.name;
      if (schemaName !== undefined && schemaName === metadata.name) return record;
    }
  }
  // A decorated base class replicates its concrete subclasses.
  if (typeof target === 'function') {
    for (let proto = Object.getPrototypeOf(target); proto && proto !== Function.prototype; proto = Object.getPrototypeOf(proto)) {
      const record = records.find((r) => r.target === proto);
      if (record) return record;
    }
  }
  return undefined;
}

function isNotReplicated(column: ColumnMetadata, options: ReplicateOptions): boolean {
  if (options.notReplicated?.includes(column.propertyPath) || options.notReplicated?.includes(column.databaseName)) {
    return true;
  }
  const declaredIn = column.target;
  return getReplicationStorage().notReplicated.some(
    (r) =>
      r.propertyName === column.propertyName &&
      typeof declaredIn === 'function' &&
      (r.target === declaredIn || declaredIn.prototype instanceof r.target),
  );
}

function resolveEntity(
  metadata: EntityMetadata,
  options: ReplicateOptions,
  targetNames: readonly string[],
  children: readonly EntityMetadata[],
): ReplicatedEntity {
  const entity = metadata.name;
  if (!options || !Array.isArray(options.to) || options.to.length === 0) {
    throw new DualWriteError(
      'CONFIG_INVALID',
      `@Replicate on entity "${entity}" needs a non-empty "to" list of target names, e.g. @Replicate({ to: ['reporting'] }).`,
      { entity, option: 'to' },
    );
  }
  for (const target of options.to) {
    if (!targetNames.includes(target)) {
      throw new DualWriteError(
        'TARGET_UNKNOWN',
        `Entity "${entity}" replicates to target "${target}", which is not configured. ` +
          `Known targets: ${targetNames.map((t) => `"${t}"`).join(', ') || '(none)'}. ` +
          `Add "${target}" to "targets" in defineDualWrite(), or fix the name in @Replicate({ to }).`,
        { entity, target, option: 'to' },
      );
    }
  }
  if (options.version !== undefined && options.version !== 'sequence') {
    throw new DualWriteError(
      'CONFIG_INVALID',
      `@Replicate on entity "${entity}": version "${String(options.version)}" is not supported; omit it (the outbox sequence orders writes).`,
      { entity, option: 'version' },
    );
  }
  if (metadata.primaryColumns.length === 0) {
    throw new DualWriteError(
      'ENTITY_NO_PRIMARY_KEY',
      `Entity "${entity}" is marked @Replicate but has no primary key, so its rows cannot be matched in a target. ` +
        `Add a @PrimaryColumn or @PrimaryGeneratedColumn to it, or remove @Replicate.`,
      { entity },
    );
  }

  const columns: ReplicatedColumn[] = [];
  for (const column of metadata.columns) {
    if ((column as { isVirtualProperty?: boolean }).isVirtualProperty) continue;
    if (isNotReplicated(column, options)) {
      if (column.isPrimary) {
        throw new DualWriteError(
          'CONFIG_INVALID',
          `Entity "${entity}": primary column "${column.propertyPath}" is marked @NotReplicated, but targets need the key. Remove @NotReplicated from it.`,
          { entity, column: column.propertyPath },
        );
      }
      continue;
    }
    const unsupported = unsupportedTypeOf(column);
    if (unsupported) {
      throw new DualWriteError(
        'COLUMN_TYPE_UNSUPPORTED',
        `Entity "${entity}" column "${column.propertyPath}" has type "${unsupported}", which typeorm-dualwrite cannot replicate: ` +
          `the drivers return spatial, geometric and interval values as objects that a target cannot take back as they are. ` +
          `Keep it on the primary with @NotReplicated() (or @Replicate({ notReplicated: ['${column.propertyPath}'] })), ` +
          `and replicate a text or json copy of it (its WKT, say) if a target needs it.`,
        { entity, column: column.propertyPath },
      );
    }
    columns.push({
      databaseName: column.databaseName,
      propertyPath: column.propertyPath,
      kind: valueKindOf(column),
      isPrimary: column.isPrimary,
      nullable: column.isNullable,
      metadata: column,
    });
  }
  for (const name of options.notReplicated ?? []) {
    if (!metadata.columns.some((c) => c.propertyPath === name || c.databaseName === name)) {
      // A typo here would replicate the very column it was meant to keep back.
      throw new DualWriteError(
        'COLUMN_UNKNOWN',
        `@Replicate on entity "${entity}" lists "${name}" in notReplicated, but the entity has no column of that name, so nothing is kept back. ` +
          `Use a property name or database column name of "${entity}": ${metadata.columns.map((c) => c.propertyPath).join(', ')}.`,
        { entity, column: name, option: 'notReplicated' },
      );
    }
  }
  for (const keyed of [['table', options.table], ['columns', options.columns]] as const) {
    if (typeof keyed[1] !== 'object' || keyed[1] === null) continue;
    for (const unknownTarget of Object.keys(keyed[1])) {
      if (!options.to.includes(unknownTarget)) {
        throw new DualWriteError(
          'TARGET_UNKNOWN',
          `@Replicate on entity "${entity}" has ${keyed[0] === 'table' ? 'a table name' : 'column renames'} for "${unknownTarget}", ` +
            `which is not in its "to" list (${options.to.join(', ')}). Fix the target name, or add it to "to".`,
          { entity, target: unknownTarget, option: keyed[0] },
        );
      }
    }
  }
  const primaryColumns = metadata.primaryColumns.map((pc) => columns.find((c) => c.metadata === pc)!);

  const targets = new Map<string, TargetMapping>();
  for (const target of options.to) {
    const renames = options.columns?.[target] ?? {};
    const columnNames = new Map<string, string>();
    for (const column of columns) columnNames.set(column.databaseName, column.databaseName);
    for (const [from, to] of Object.entries(renames)) {
      const column = columns.find((c) => c.propertyPath === from || c.databaseName === from);
      if (!column) {
        throw new DualWriteError(
          'COLUMN_UNKNOWN',
          `@Replicate on entity "${entity}" renames column "${from}" for target "${target}", but the entity has no replicated column of that name. ` +
            `Use a property name or database column name of "${entity}": ${columns.map((c) => c.propertyPath).join(', ')}.`,
          { entity, target, column: from, option: 'columns' },
        );
      }
      if (typeof to !== 'string' || to === '') {
        throw new DualWriteError(
          'CONFIG_INVALID',
          `@Replicate on entity "${entity}" renames column "${from}" for target "${target}" to ${JSON.stringify(to)}; a target column name is a non-empty string.`,
          { entity, target, column: from, option: 'columns' },
        );
      }
      columnNames.set(column.databaseName, to);
    }
    const seen = new Map<string, string>();
    for (const [source, name] of columnNames) {
      const other = seen.get(name);
      if (other !== undefined) {
        throw new DualWriteError(
          'CONFIG_INVALID',
          `@Replicate on entity "${entity}" writes both "${other}" and "${source}" into column "${name}" of target "${target}". ` +
            `Rename one of them in @Replicate({ columns: { ${target}: { … } } }) so each target column receives one column.`,
          { entity, target, column: name, option: 'columns' },
        );
      }
      seen.set(name, source);
    }
    const table = typeof options.table === 'string' ? options.table : (options.table?.[target] ?? metadata.tableName);
    targets.set(target, { target, table, columnNames });
  }

  const readsBack = metadata.discriminatorColumn !== undefined;
  return { name: entity, metadata, tablePath: metadata.tablePath, columns, primaryColumns, targets, options, children, readsBack };
}
