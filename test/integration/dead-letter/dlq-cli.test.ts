/**
 * `dualwrite dlq list|show|replay|discard`, run as users run it: the compiled
 * CLI in a child process with a compiled config
 * (dist/test/fixtures/dlq-config.js; `npm run build` first). The dead letters
 * are made by an in-process worker against a target whose text columns are
 * too narrow; the same worker applies what the CLI replays.
 *
 * Proves: list (table and --json, filters) and show print the letters; unknown
 * ids, an empty selection, --all without a filter or --yes, and a missing id
 * get clear messages and change nothing; after the target is fixed,
 * `dlq replay <id…>` and `dlq replay --all --entity E` apply the rows and
 * empty the queue, and `dlq discard` removes a letter without applying it.
 */
import { DataSource } from 'typeorm';
import { DualWrite, runMigrations, type DeadLetter } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { outboxCount } from '../faults/convergence';
import { runCli } from './dlq-process';
import { createTargetTables, targetItems, widenTargetColumns } from './dlq-tables';

const PRIMARY: Engine = 'mariadb';
const TARGET: Engine = 'postgres';

jest.setTimeout(90_000);

describe(`dualwrite dlq (${PRIMARY} → ${TARGET})`, () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> } | undefined;
  let env: Record<string, string>;
  /** Letters by `<entity> <key>`. */
  const letters = new Map<string, DeadLetter>();

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(PRIMARY, 'dwcp'), createDatabase(TARGET, 'dwct')]);
    primary = dataSource(primaryDb, source.all);
    target = new DataSource({ ...targetDb.options([]), synchronize: false });
    await Promise.all([primary.initialize(), target.initialize()]);
    await createTargetTables(target, TARGET);
    await runMigrations({ primary, targets: { t: target } });
    env = { DW_PRIMARY_ENGINE: PRIMARY, DW_PRIMARY_DB: primaryDb.name, DW_TARGET_ENGINE: TARGET, DW_TARGET_DB: targetDb.name, DW_PREFIX: prefix };
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' } });
    worker = await dw.startWorker();

    const long = (id: number) => `too-long-for-the-target-${id}`;
    await primary
      .getRepository(source.DlqItem)
      .save(Array.from({ length: 20 }, (_, i) => ({ id: i + 1, label: [7, 12, 15].includes(i + 1) ? long(i + 1) : `i${i + 1}`, qty: i, secret: null })));
    await primary.getRepository(source.DlqNote).save(Array.from({ length: 5 }, (_, i) => ({ id: i + 1, body: i + 1 === 3 ? long(3) : `n${i + 1}` })));
    const made = await eventually(async () => (await dw.listDeadLetters()).length === 4 && (await outboxCount(primary)) === 0, 30_000, 100);
    if (!made) throw new Error(`expected 4 dead letters, got ${JSON.stringify(await dw.listDeadLetters())}`);
    for (const letter of await dw.listDeadLetters()) letters.set(`${letter.change.entity} ${letter.change.key[0]}`, letter);
  });

  afterAll(async () => {
    await worker?.close();
    await dw?.close();
    await primary?.destroy();
    await target?.destroy();
    await primaryDb?.drop();
    await targetDb?.drop();
    await removeQueues(prefix);
  });

  const letter = (name: string) => letters.get(name)!;

  it('lists (as a table and as JSON, filtered) and shows dead letters', async () => {
    const [table, json, notes, unknownTarget, show, showUnknown] = await Promise.all([
      runCli(['dlq', 'list'], env),
      runCli(['dlq', 'list', '--json'], env),
      runCli(['dlq', 'list', '--target', 't', '--entity', 'DlqNote', '--json'], env),
      runCli(['dlq', 'list', '--target', 'nope'], env),
      runCli(['dlq', 'show', letter('DlqItem 12').id], env),
      runCli(['dlq', 'show', 't/99999999'], env),
    ]);

    expect(table).toMatchObject({ code: 0, stderr: '' });
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+ENTITY\s+KEY\s+OP\s+FAILURE\s+ATTEMPTS\s+LAST FAILED\s+MESSAGE$/);
    expect(lines).toHaveLength(5);
    for (const name of ['DlqItem 7', 'DlqItem 12', 'DlqItem 15', 'DlqNote 3']) {
      const [entity, key] = name.split(' ');
      const line = lines.find((l) => l.startsWith(`${letter(name).id} `));
      expect(line).toBeDefined();
      expect(line!.split(/\s{2,}/).slice(0, 6)).toEqual([letter(name).id, entity, key, 'upsert', 'permanent data 22001', '1']);
      expect(line).toMatch(/value too long for type character varying\(8\)/);
    }

    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(await dw.listDeadLetters());
    expect(notes.code).toBe(0);
    expect(JSON.parse(notes.stdout)).toEqual([letter('DlqNote 3')]);

    expect(unknownTarget.code).toBe(1);
    expect(unknownTarget.stderr).toMatch(/No target "nope"\. Targets: t\. \[TARGET_UNKNOWN\]/);

    expect(show.code).toBe(0);
    expect(JSON.parse(show.stdout)).toEqual(letter('DlqItem 12'));
    expect(showUnknown.code).toBe(1);
    expect(showUnknown.stderr).toMatch(/No dead letter "t\/99999999"\. List them with `dualwrite dlq list`\./);
  });

  it('refuses unknown ids, --all without a filter or --yes, and reports an empty selection, changing nothing', async () => {
    const [unknownIds, allUnfiltered, discardAll, discardAllFiltered, noIds, both, empty, emptyDiscard, badVerb, listAll] = await Promise.all([
      runCli(['dlq', 'replay', 't/99999999', letter('DlqItem 7').id, 'garbage'], env),
      runCli(['dlq', 'replay', '--all'], env),
      runCli(['dlq', 'discard', '--all'], env),
      runCli(['dlq', 'discard', '--all', '--target', 't'], env),
      runCli(['dlq', 'replay'], env),
      runCli(['dlq', 'discard', '--all', '--yes', letter('DlqItem 7').id], env),
      runCli(['dlq', 'replay', '--all', '--entity', 'Compensation'], env),
      runCli(['dlq', 'discard', '--all', '--yes', '--entity', 'NoSuchEntity'], env),
      runCli(['dlq', 'purge'], env),
      runCli(['dlq', 'list', '--all'], env),
    ]);
    expect(unknownIds.code).toBe(1);
    expect(unknownIds.stderr).toContain('No dead letter "t/99999999", "garbage" (ids look like reporting/1234); nothing was changed.');
    expect(allUnfiltered.code).toBe(1);
    expect(allUnfiltered.stderr).toContain('replays every dead letter of every target; narrow it, or add --yes.');
    expect(discardAll.code).toBe(1);
    expect(discardAll.stderr).toContain('deletes dead letters for good; add --yes to confirm');
    expect(discardAllFiltered.code).toBe(1);
    expect(discardAllFiltered.stderr).toContain('add --yes to confirm');
    expect(noIds.code).toBe(1);
    expect(noIds.stderr).toContain('dualwrite dlq replay needs dead-letter ids (e.g. reporting/1234) or --all.');
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('give ids or --all, not both');
    expect(empty).toMatchObject({ code: 0, stdout: 'No dead letters match entity "Compensation"; nothing to replay.\n' });
    expect(emptyDiscard).toMatchObject({ code: 0, stdout: 'No dead letters match entity "NoSuchEntity"; nothing to discard.\n' });
    expect(badVerb.code).toBe(1);
    expect(badVerb.stderr).toContain('dualwrite dlq needs one of: list, show, replay, discard (got "purge")');
    expect(listAll.code).toBe(1);
    expect(listAll.stderr).toContain('dualwrite dlq list takes no --all or --yes');

    expect((await dw.listDeadLetters()).map((l) => l.id).sort()).toEqual([...letters.values()].map((l) => l.id).sort());
    expect((await targetItems(target)).labels.has(7)).toBe(false);
  });

  it('replays nothing when one of the letters cannot be replayed with this config', async () => {
    const real = letter('DlqItem 15');
    const otherEntity: DeadLetter = { ...real, id: 't/1', change: { ...real.change, entity: 'Nope' } };
    const otherTarget: DeadLetter = { ...real, id: 'gone/1', target: 'gone' };
    await expect(dw.replayDeadLetters([real, otherEntity])).rejects.toMatchObject({
      code: 'ENTITY_NOT_FOUND',
      message: expect.stringContaining('which this config does not replicate; nothing was replayed'),
    });
    await expect(dw.replayDeadLetters([real, otherTarget])).rejects.toMatchObject({
      code: 'TARGET_UNKNOWN',
      message: expect.stringContaining(`is for target "gone", which entity "DlqItem" no longer replicates to (@Replicate({ to: ['t'] })); nothing was replayed.`),
    });
    expect(await dw.deadLetters.get(real.id)).toEqual(real);
  });

  it('after the target is fixed, replays by id and by filter (applied, queue empty) and discards without applying', async () => {
    await widenTargetColumns(target, TARGET);
    const byId = await runCli(['dlq', 'replay', letter('DlqItem 7').id, letter('DlqItem 12').id], env);
    expect(byId).toMatchObject({ code: 0, stderr: '' });
    expect(byId.stdout).toBe("Replayed 2 dead letter(s) from the rows' current state: 2 upsert(s), 0 delete(s) sent through the version gate.\n");
    const [byFilter, discard] = await Promise.all([
      runCli(['dlq', 'replay', '--all', '--entity', 'DlqNote'], env),
      runCli(['dlq', 'discard', letter('DlqItem 15').id], env),
    ]);
    expect(byFilter).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Replayed 1 dead letter\(s\)/) });
    expect(discard).toMatchObject({ code: 0, stdout: 'Discarded 1 dead letter(s).\n' });

    const applied = await eventually(async () => {
      const labels = (await targetItems(target)).labels;
      const notes = (await target.query('SELECT body FROM dlq_note WHERE id = 3')) as Array<{ body: string }>;
      return labels.get(7) === 'too-long-for-the-target-7' && labels.get(12) === 'too-long-for-the-target-12' && notes[0]?.body === 'too-long-for-the-target-3';
    }, 30_000, 100);
    expect(applied).toBe(true);
    const empty = await runCli(['dlq', 'list'], env);
    expect(empty).toMatchObject({ code: 0, stdout: 'No dead letters.\n' });
    expect(await dw.listDeadLetters()).toEqual([]);
    // Discarded, not applied: the target still lacks row 15, and every other row is there.
    const labels = (await targetItems(target)).labels;
    expect(labels.has(15)).toBe(false);
    expect(labels.size).toBe(19);
  });
});
