import { CHANGES_PER_ROW, versionOf } from '../../src/outbox/change';
import { outboxRowOf, outboxRows, type CapturedChange } from '../../src/outbox/outbox-writer';
import { checkApplyJob } from '../../src/queue/check-apply-job';
import { relayedJson, relayedRowOf, type OutboxRow } from '../../src/relay/outbox-row';

const change = (entity: string, id: number, extra: Partial<CapturedChange> = {}): CapturedChange => ({
  entity,
  op: 'upsert',
  key: [String(id)],
  row: { id, name: `n"${id}` },
  targets: 't',
  capturedAt: 1000 + id,
  ...extra,
});

/** The rows `outboxRows` makes, as the relay reads them back with sequences 1, 2, … */
function claimed(changes: CapturedChange[]): OutboxRow[] {
  return outboxRows(changes).map((values, i) => outboxRowOf(values, String(i + 1)));
}

/** What a worker reads from a job holding these rows (see Relay.enqueue). */
function jobOf(rows: OutboxRow[]): ReturnType<typeof checkApplyJob> {
  const relayed = rows.map((row) => relayedRowOf(row));
  const singles = relayed.filter((r) => r.single).map(relayedJson);
  const runs = relayed.filter((r) => !r.single).map(relayedJson);
  return checkApplyJob(JSON.parse(`{"target":"t","changes":[${singles.join(',')}],"runs":[${runs.join(',')}]}`), 'job-1');
}

describe('outbox rows of a transaction', () => {
  it('keeps a lone change a row of its own', () => {
    const [row] = claimed([change('A', 1)]);
    expect(row).toMatchObject({ entity: 'A', op: 'upsert', pk: '["1"]', row_image: '{"id":1,"name":"n\\"1"}' });
  });

  it('groups the changes of each entity, in capture order, in rows of up to CHANGES_PER_ROW', () => {
    const changes = [change('A', 1), change('B', 1), change('A', 2), ...Array.from({ length: CHANGES_PER_ROW + 1 }, (_, i) => change('C', i))];
    const rows = claimed(changes);
    expect(rows.map((r) => [r.entity, r.op, (JSON.parse(r.pk) as unknown[]).length])).toEqual([
      ['A', 'batch', 2],
      ['B', 'upsert', 1],
      ['C', 'batch', CHANGES_PER_ROW],
      ['C', 'upsert', 1],
    ]);
    const { changes: read, rejected } = jobOf(rows);
    expect(rejected).toEqual([]);
    // Versions: sequence × 1000 + place in the row; the job's changes in version order.
    expect(read.slice(0, 4).map((c) => [c.id, c.entity, c.key, c.version, c.row])).toEqual([
      ['A#1000', 'A', ['1'], '1000', { id: 1, name: 'n"1' }],
      ['A#1001', 'A', ['2'], '1001', { id: 2, name: 'n"2' }],
      ['B#2000', 'B', ['1'], '2000', { id: 1, name: 'n"1' }],
      ['C#3000', 'C', ['0'], '3000', { id: 0, name: 'n"0' }],
    ]);
    expect(read.map((c) => c.key[0]).slice(3)).toEqual(Array.from({ length: CHANGES_PER_ROW + 1 }, (_, i) => String(i)));
    expect(read[read.length - 1]).toMatchObject({ entity: 'C', version: '4000' });
    expect(read[read.length - 2]).toMatchObject({ entity: 'C', version: '3999', capturedAt: 1000 + CHANGES_PER_ROW - 1 });
  });

  it('starts a new row before the keys overflow a MySQL text column', () => {
    const long = (i: number) => change('A', i, { key: [`${'k'.repeat(500)}-${i}`] });
    const rows = claimed(Array.from({ length: 100 }, (_, i) => long(i)));
    expect(rows.length).toBeGreaterThan(3);
    for (const row of rows) expect(row.pk.length).toBeLessThanOrEqual(16_000);
    expect(rows.flatMap((r) => JSON.parse(r.pk) as string[][]).map((k) => k[0])).toEqual(Array.from({ length: 100 }, (_, i) => `${'k'.repeat(500)}-${i}`));
    expect(jobOf(rows).changes).toHaveLength(100);
  });

  it('carries deletes and traces through a batch row', () => {
    const rows = claimed([
      change('A', 1, { trace: '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01' }),
      change('A', 2, { op: 'delete', row: null, trace: '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01' }),
      change('A', 3, { trace: '00-cccccccccccccccccccccccccccccccc-dddddddddddddddd-01' }),
    ]);
    expect(rows[0].captured_at).toBe(1001);
    const { changes } = jobOf(rows);
    expect(changes.map((c) => [c.op, c.row === null, c.trace?.slice(3, 7)])).toEqual([
      ['upsert', false, 'aaaa'],
      ['delete', true, 'aaaa'],
      ['upsert', false, 'cccc'],
    ]);
  });

  it('rejects a malformed run as a whole, with what is wrong, and keeps the rest of the job', () => {
    const good = relayedJson(relayedRowOf(claimed([change('A', 1)])[0]));
    const data = JSON.parse(`{"target":"t","changes":[${good}],"runs":[{"seq":"x1","entity":"A","changes":[{}]},{"seq":"7","entity":"","changes":[]}]}`);
    const { changes, rejected } = checkApplyJob(data, 'job-2');
    expect(changes.map((c) => c.version)).toEqual(['1000']);
    expect(rejected.map((r) => r.message)).toEqual([
      expect.stringMatching(/^Run 1 of apply job job-2 is malformed: "seq" must be an outbox sequence/),
      expect.stringMatching(/^Run 2 of apply job job-2 is malformed: "entity" must be an entity name/),
    ]);
  });

  it('writes a single change as the JSON.stringify of its Change would, for any entity name', () => {
    for (const entity of ['A', 'Order "Line"', 'Größe\\\u2028x']) {
      for (const trace of [undefined, '00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01']) {
        const [row] = claimed([change(entity, 5, trace === undefined ? {} : { trace })]);
        const expected: Record<string, unknown> = { id: `${entity}#1000`, entity, op: 'upsert', key: ['5'], version: '1000', row: { id: 5, name: 'n"5' }, capturedAt: 1005 };
        if (trace !== undefined) expected.trace = trace;
        expect(relayedJson(relayedRowOf(row))).toBe(JSON.stringify(expected));
      }
    }
  });

  it('relays an outbox row it cannot read as one change that says what is wrong, and the rows around it as they are', () => {
    const good = claimed([change('A', 1)])[0];
    const bad = (seq: string, over: Partial<OutboxRow>): OutboxRow => ({ ...good, seq, ...over });
    const rows = [
      good,
      bad('2', { pk: 'id=1' }),
      bad('3', { row_image: 'not json' }),
      bad('4', { op: 'frobnicate' }),
      bad('5', { op: 'batch', pk: '{}', row_image: '[]' }),
      bad('6', { op: 'batch', pk: '[["1"]]', row_image: '{"op":"upsert"}' }),
      bad('7', { pk: '"1"' }),
      bad('9', { pk: '["1",]' }),
      bad('10', { row_image: '{"id":}' }),
      { ...claimed([change('B', 1), change('B', 2)])[0], seq: '8' },
    ];
    const { changes, rejected } = jobOf(rows);
    expect(changes.map((c) => c.version)).toEqual(['1000', '8000', '8001']);
    expect(rejected.map((r) => [r.change.version, r.change.entity, r.message])).toEqual([
      ['2000', 'A', expect.stringContaining('outbox row 2 (entity "A", op "upsert") is not as typeorm-dualwrite writes it: "pk" is not JSON')],
      ['3000', 'A', expect.stringContaining('outbox row 3 (entity "A", op "upsert") is not as typeorm-dualwrite writes it: "row_image" is not JSON')],
      ['4000', 'A', expect.stringContaining('"op" must be "upsert", "delete" or "batch"')],
      ['5000', 'A', expect.stringContaining('"pk" of a batch row must list 1 to 1000 keys')],
      ['6000', 'A', expect.stringContaining('"row_image" must be a JSON list')],
      ['7000', 'A', expect.stringContaining('"pk" must be a JSON list')],
      // Text that only looks like JSON: a job that embedded it would not parse at all.
      ['9000', 'A', expect.stringContaining('"pk" is not JSON')],
      ['10000', 'A', expect.stringContaining('"row_image" is not JSON')],
    ]);
    for (const r of rejected) expect(r).toMatchObject({ code: 'PAYLOAD_INVALID', message: expect.stringContaining('the primary still has the row(s)') });
  });

  it('numbers versions without leading zeros and refuses a place outside a row', () => {
    expect([versionOf('7', 0), versionOf('7', 9), versionOf('7', 10), versionOf('7', 999)]).toEqual(['7000', '7009', '7010', '7999']);
    expect(() => versionOf('7', CHANGES_PER_ROW)).toThrow(RangeError);
  });
});
