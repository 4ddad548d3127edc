import type { ReplicatedEntity } from '../metadata/replicated-entity';

export type WriteVerb = 'INSERT' | 'UPDATE' | 'DELETE';

/** A write statement against a replicated table. */
export interface InspectedWrite {
  verb: WriteVerb;
  entity: ReplicatedEntity;
  /** INSERT … ON CONFLICT / ON DUPLICATE KEY UPDATE: the image given may not be the row's. */
  upsert: boolean;
}

const IDENT = '(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|[A-Za-z_][\\w$]*)';
const TABLE = `(${IDENT}(?:\\s*\\.\\s*${IDENT})?)`;
const WRITE = new RegExp(
  `^\\s*(?:(UPDATE)\\s+(?:LOW_PRIORITY\\s+|IGNORE\\s+|ONLY\\s+)*${TABLE}|(DELETE)\\s+(?:LOW_PRIORITY\\s+|QUICK\\s+|IGNORE\\s+)*FROM\\s+(?:ONLY\\s+)?${TABLE}|(INSERT)\\s+(?:IGNORE\\s+)?INTO\\s+${TABLE})`,
  'i',
);
const UPSERT = /\bON\s+CONFLICT\b|\bON\s+DUPLICATE\s+KEY\s+UPDATE\b/i;

function unquote(part: string): string {
  const p = part.trim();
  if (p.startsWith('"')) return p.slice(1, -1).replace(/""/g, '"');
  if (p.startsWith('`')) return p.slice(1, -1).replace(/``/g, '`');
  // Unquoted identifiers fold to lower case on PostgreSQL; MySQL table names
  // are matched case-insensitively below anyway.
  return p;
}

/**
 * Recognizes INSERT/UPDATE/DELETE statements on replicated tables, from the
 * SQL text alone. Used to catch writes TypeORM gives the subscriber no
 * entity for. Runs on every query of the primary, so it bails out on the
 * first character for anything that cannot be a write.
 */
export class StatementInspector {
  private readonly byTable = new Map<string, ReplicatedEntity>();

  constructor(entities: Iterable<ReplicatedEntity>) {
    for (const entity of entities) {
      this.byTable.set(entity.metadata.tableName.toLowerCase(), entity);
      this.byTable.set(entity.tablePath.toLowerCase(), entity);
    }
  }

  inspect(query: string): InspectedWrite | undefined {
    if (this.byTable.size === 0) return undefined;
    let i = 0;
    while (i < query.length && query.charCodeAt(i) <= 32) i++;
    const first = query.charCodeAt(i) | 0x20; // lower-case ASCII letter
    if (first !== 0x75 /* u */ && first !== 0x64 /* d */ && first !== 0x69 /* i */) return undefined;
    const match = WRITE.exec(query);
    if (!match) return undefined;
    const verb = (match[1] ?? match[3] ?? match[5]).toUpperCase() as WriteVerb;
    const table = match[2] ?? match[4] ?? match[6];
    const parts = table.split(/\s*\.\s*(?=["`A-Za-z_])/).map(unquote);
    const path = parts.join('.').toLowerCase();
    const entity = this.byTable.get(path) ?? this.byTable.get(parts[parts.length - 1].toLowerCase());
    if (!entity) return undefined;
    return { verb, entity, upsert: verb === 'INSERT' && UPSERT.test(query) };
  }
}
