/**
 * The bad-input catalogue, part 2: what users type and the config files they
 * write, through the real CLI (the compiled dist/src/cli/main.js, which
 * bin/dualwrite.js runs, in a child process; `npm run build` first). Every
 * case must exit 1 with one clear message on stderr that names the culprit
 * and the fix, and no stack trace. The cases that need services use the
 * dead-letter tests' config (dist/test/fixtures/dlq-config.js) on real
 * databases: unknown targets and entities, an unreachable target, a target
 * or primary that was never migrated.
 * (`dlq replay` of unknown ids and malformed `dlq` verbs are in
 * test/integration/dead-letter/dlq-cli.test.ts.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { runMigrations } from '../../../src';
import { dlqEntities } from '../../fixtures/dlq-entities';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues } from '../../support/redis';
import { CLI, DLQ_CONFIG } from '../dead-letter/dlq-process';
import { ROOT, runNode, type RunResult } from '../../support/node-process';

jest.setTimeout(120_000);


type Result = RunResult;

function dualwrite(args: string[], env: Record<string, string> = {}, timeoutMs = 30_000): Promise<Result> {
  // NODE_PATH lets config files in the temporary directory import typeorm and typescript from this project.
  return runNode([CLI, ...args], { NODE_PATH: path.join(ROOT, 'node_modules'), DW_LOG_LEVEL: 'silent', DUALWRITE_DEBUG: '', ...env }, timeoutMs);
}

/** A stack frame line, as Node prints them. */
const STACK_FRAME = /^\s+at .+:\d+:\d+\)?$/m;

interface CliCase {
  kind: string;
  args: string[];
  /** Error code in brackets at the end of the message. */
  code: string;
  says: Array<string | RegExp>;
  env?: () => Record<string, string>;
}

function expectClearFailure(result: Result, c: Pick<CliCase, 'code' | 'says' | 'args'>): void {
  const context = `dualwrite ${c.args.join(' ')}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
  expect({ context, code: result.code }).toEqual({ context, code: 1 });
  expect(result.stderr).toMatch(/^dualwrite[: ]/);
  expect(result.stderr).toContain(`[${c.code}]`);
  for (const text of c.says) {
    if (typeof text === 'string') expect(result.stderr).toContain(text);
    else expect(result.stderr).toMatch(text);
  }
  expect(result.stderr).not.toMatch(STACK_FRAME);
  expect(result.stdout).toBe('');
}

async function inBatches<T, R>(items: T[], size: number, run: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(run))));
  return results;
}

describe('bad input: command line', () => {
  const ARGUMENT_CASES: CliCase[] = [
    { kind: 'unknown verb', args: ['frobnicate'], code: 'CLI_USAGE', says: ['Unknown verb "frobnicate". Verbs: migrate, worker', 'dualwrite --help'] },
    { kind: 'unknown flag', args: ['worker', '--frob'], code: 'CLI_USAGE', says: ['unknown option --frob. Options of `dualwrite worker`: --config <value>, --targets <value>, --concurrency <value>.'] },
    { kind: 'flag without its value', args: ['worker', '--concurrency'], code: 'CLI_USAGE', says: ['option --concurrency needs a value'] },
    { kind: 'value given to a boolean flag', args: ['reconcile', '--repair=yes'], code: 'CLI_USAGE', says: ['option --repair takes no value', 'Options of `dualwrite reconcile`'] },
    { kind: 'stray argument', args: ['migrate', 'now'], code: 'CLI_USAGE', says: ['unexpected argument now; `dualwrite migrate` takes options only'] },
    { kind: '--concurrency that is not a number', args: ['worker', '--concurrency', 'abc'], code: 'CLI_USAGE', says: ['--concurrency takes a positive whole number, got "abc"'] },
    { kind: '--concurrency 0', args: ['worker', '--concurrency', '0'], code: 'CLI_USAGE', says: ['got "0"'] },
    { kind: '--targets with no names', args: ['worker', '--targets', ','], code: 'CLI_USAGE', says: ['--targets takes a comma-separated list of target names', 'got ","'] },
    { kind: 'status threshold that is not a number', args: ['status', '--max-lag-ms', 'soon'], code: 'CLI_USAGE', says: ['--max-lag-ms expects a whole number of at least 0, got "soon"'] },
    { kind: 'backfill without --target', args: ['backfill', '--entity', 'Order'], code: 'CLI_USAGE', says: ['dualwrite backfill needs --entity <name> and --target <name>'] },
    { kind: 'flag value that looks like a flag', args: ['backfill', '--entity', 'Order', '--target', 't', '--page-size', '-5'], code: 'CLI_USAGE', says: ['the value of --page-size starts with "-" and looks like an option; write --page-size=<value>'] },
    { kind: 'backfill page size below 1', args: ['backfill', '--entity', 'Order', '--target', 't', '--page-size=-5'], code: 'CLI_USAGE', says: ['--page-size takes a positive whole number, got "-5"'] },
    { kind: 'dlq without a sub-verb', args: ['dlq'], code: 'CLI_USAGE', says: ['dualwrite dlq needs one of: list, show, replay, discard (got nothing)'] },
  ];

  it.each(ARGUMENT_CASES.map((c) => [c.kind, c] as const))('%s', async (_kind, c) => {
    expectClearFailure(await dualwrite(c.args), c);
  });

  it('prints the help (exit 0) for --help and exits 2 with it when no verb is given', async () => {
    const [help, none] = await Promise.all([dualwrite(['--help']), dualwrite([])]);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('dualwrite <verb> [options]');
    expect(none.code).toBe(2);
    expect(none.stdout).toContain('Verbs:');
  });
});

describe('bad input: config files', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const full = path.join(dir, name);
    writeFileSync(full, text);
    return full;
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'dw-bad-config-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names each broken config file and what is wrong with it', async () => {
    const missing = path.join(dir, 'ormconfig.ts');
    const cases: CliCase[] = [
      { kind: 'missing file', args: ['status', '--config', missing], code: 'CONFIG_LOAD_FAILED', says: [`Config file ${missing} does not exist`, 'or pass --config <path>'] },
      {
        kind: 'TypeScript syntax error',
        args: ['migrate', '--config', file('syntax.ts', "import { DataSource } from 'typeorm';\nexport default {\n  primary: new DataSource({ type: 'postgres' }\n  targets: {},\n};\n")],
        code: 'CONFIG_LOAD_FAILED',
        says: [/TypeScript syntax error.*syntax\.ts:4:3: ',' expected\./, 'Fix the file (or what it imports)'],
      },
      {
        kind: 'JavaScript syntax error',
        args: ['migrate', '--config', file('syntax.js', 'module.exports = { primary: ;\n')],
        code: 'CONFIG_LOAD_FAILED',
        says: [/syntax\.js failed to load: SyntaxError: Unexpected token/],
      },
      {
        kind: 'not exporting defineDualWrite',
        args: ['status', '--config', file('wrong-export.ts', "export default { type: 'postgres', database: 'app' };\n")],
        code: 'CONFIG_LOAD_FAILED',
        says: ['must default-export defineDualWrite({ primary, targets, redis }); it exports an object with keys [type, database]'],
      },
      {
        kind: 'exporting a factory',
        args: ['status', '--config', file('factory.ts', 'export default async () => ({ primary: null });\n')],
        code: 'CONFIG_LOAD_FAILED',
        says: ['it exports a function (export the config itself, not a factory that makes it)'],
      },
      {
        kind: 'throwing while it loads',
        args: ['status', '--config', file('throws.ts', "const url = process.env.DW_NOT_SET;\nif (!url) throw new Error('DATABASE_URL is not set');\nexport default {};\n")],
        code: 'CONFIG_LOAD_FAILED',
        says: [/throws\.ts failed to load: DATABASE_URL is not set\. \(at \/.*\/throws\.ts:2\)/],
      },
      {
        kind: 'importing a file that does not exist',
        args: ['status', '--config', file('imports.ts', "import { Order } from './entities/order';\nexport default { Order };\n")],
        code: 'CONFIG_LOAD_FAILED',
        says: [/imports\.ts failed to load: Cannot find module '\.\/entities\/order'/],
      },
      {
        kind: 'invalid options inside a valid file',
        args: [
          'status',
          '--config',
          file(
            'options.ts',
            "import { DataSource } from 'typeorm';\n" +
              `import { defineDualWrite } from '${path.join(ROOT, 'dist/src/index.js')}';\n` +
              "const ds = (database: string) => new DataSource({ type: 'postgres', host: '127.0.0.1', username: 'postgres', database });\n" +
              "export default defineDualWrite({ primary: ds('a'), targets: { reporting: ds('b') }, redis: 'redis://127.0.0.1:6379', worker: { concurency: 4 } } as never);\n",
          ),
        ],
        code: 'CONFIG_INVALID',
        says: ['Invalid "worker.concurency" in the dual-write config: unknown option; did you mean "concurrency"?'],
      },
    ];
    const results = await inBatches(cases, 4, (c) => dualwrite(c.args));
    cases.forEach((c, i) => expectClearFailure(results[i], c));
  });
});

describe('bad input: the CLI against real services', () => {
  const source = dlqEntities();
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let bareTargetDb: TestDatabase;
  let barePrimaryDb: TestDatabase;
  /** Outbox and ledger as another version made them: a column short. */
  let oldPrimaryDb: TestDatabase;
  let oldTargetDb: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    [primaryDb, targetDb, bareTargetDb, barePrimaryDb, oldPrimaryDb, oldTargetDb] = await Promise.all([
      createDatabase('postgres', 'dwbicp'),
      createDatabase('mariadb', 'dwbict'),
      createDatabase('mariadb', 'dwbicb'),
      createDatabase('mariadb', 'dwbicn'),
      createDatabase('mariadb', 'dwbico'),
      createDatabase('mariadb', 'dwbicl'),
    ]);
    const oldPrimary = new DataSource(oldPrimaryDb.options([]));
    const oldTarget = new DataSource(oldTargetDb.options([]));
    await Promise.all([oldPrimary.initialize(), oldTarget.initialize()]);
    await oldPrimary.query(
      'CREATE TABLE dualwrite_outbox (seq bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, entity varchar(255) NOT NULL, op varchar(8) NOT NULL, ' +
        'pk text NOT NULL, row_image longtext NULL, targets text NOT NULL, captured_at bigint NOT NULL)',
    );
    await oldTarget.query(
      'CREATE TABLE dualwrite_version_ledger (entity varchar(191) NOT NULL, row_key varchar(512) NOT NULL, version bigint NOT NULL, ' +
        'deleted tinyint(1) NOT NULL DEFAULT 0, updated_at timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (entity, row_key))',
    );
    await Promise.all([oldPrimary.destroy(), oldTarget.destroy()]);
    const primary = dataSource(primaryDb, source.all);
    const target = new DataSource(targetDb.options([]));
    const barePrimary = dataSource(barePrimaryDb, source.all);
    await Promise.all([primary.initialize(), target.initialize(), barePrimary.initialize()]);
    await runMigrations({ primary, targets: { t: target } });
    await Promise.all([primary.destroy(), target.destroy(), barePrimary.destroy()]);
    env = { DW_PRIMARY_ENGINE: 'postgres', DW_PRIMARY_DB: primaryDb.name, DW_TARGET_ENGINE: 'mariadb', DW_TARGET_DB: targetDb.name, DW_PREFIX: prefix };
  });

  afterAll(async () => {
    await Promise.all([primaryDb, targetDb, bareTargetDb, barePrimaryDb, oldPrimaryDb, oldTargetDb].map((db) => db?.drop()));
    await removeQueues(prefix);
  });

  it('names unknown targets, entities and dead letters, unreachable and unmigrated databases', async () => {
    const config = ['--config', DLQ_CONFIG];
    const cases: CliCase[] = [
      { kind: '--targets naming an unknown target', args: ['worker', '--targets', 't,nope', ...config], code: 'TARGET_UNKNOWN', says: ['Worker target "nope" is not configured. Known targets: t.'] },
      { kind: 'reconcile --target unknown', args: ['reconcile', '--target', 'nope', ...config], code: 'TARGET_UNKNOWN', says: ['Target "nope" is not configured. Known targets: t.'] },
      { kind: 'reconcile --entity unknown', args: ['reconcile', '--entity', 'Nope', ...config], code: 'ENTITY_NOT_FOUND', says: ['No replicated entity "Nope". Replicated entities: DlqItem, DlqNote, Compensation.'] },
      { kind: 'backfill --entity unknown', args: ['backfill', '--entity', 'Nope', '--target', 't', ...config], code: 'ENTITY_NOT_FOUND', says: ['No replicated entity "Nope"'] },
      { kind: 'dlq show of a malformed id', args: ['dlq', 'show', 'nonsense', ...config], code: 'CLI_USAGE', says: ['No dead letter "nonsense". List them with `dualwrite dlq list`.'] },
      { kind: 'dlq list of an unknown target', args: ['dlq', 'list', '--target', 'nope', ...config], code: 'TARGET_UNKNOWN', says: ['No target "nope". Targets: t.'] },
      // One-shot commands fail on a target they cannot reach; `dualwrite worker` waits for it (next test).
      {
        kind: 'reconcile with a target database that does not exist',
        args: ['reconcile', ...config],
        env: () => ({ DW_TARGET_DB: 'dw_no_such_target_db' }),
        code: 'TARGET_UNREACHABLE',
        says: ['Cannot connect to target "t"', 'dw_no_such_target_db', 'Check its DataSource options in "targets.t".'],
      },
      {
        kind: 'backfill with a target database that does not exist',
        args: ['backfill', '--entity', 'DlqItem', '--target', 't', ...config],
        env: () => ({ DW_TARGET_DB: 'dw_no_such_target_db' }),
        code: 'TARGET_UNREACHABLE',
        says: ['Cannot connect to target "t"', 'dw_no_such_target_db'],
      },
      {
        kind: 'migrate with a target database that does not exist',
        args: ['migrate', ...config],
        env: () => ({ DW_TARGET_DB: 'dw_no_such_target_db' }),
        code: 'TARGET_UNREACHABLE',
        says: ['Cannot migrate target "t": it failed to connect', 'dw_no_such_target_db', 'Check its options in "targets.t"'],
      },
      {
        kind: 'target never migrated (no version ledger)',
        args: ['worker', ...config],
        env: () => ({ DW_TARGET_DB: bareTargetDb.name }),
        code: 'LEDGER_MISSING',
        says: ['Target "t" has no "dualwrite_version_ledger" table. Run `dualwrite migrate`'],
      },
      {
        kind: 'primary never migrated (no outbox)',
        args: ['status', ...config],
        env: () => ({ DW_PRIMARY_ENGINE: 'mariadb', DW_PRIMARY_DB: barePrimaryDb.name }),
        code: 'OUTBOX_MISSING',
        says: ['The outbox table "dualwrite_outbox" does not exist in the primary database. Run `dualwrite migrate`'],
      },
      {
        kind: 'outbox made by another version (a column short)',
        args: ['status', ...config],
        env: () => ({ DW_PRIMARY_ENGINE: 'mariadb', DW_PRIMARY_DB: oldPrimaryDb.name }),
        code: 'OUTBOX_MISSING',
        says: ['The outbox table "dualwrite_outbox" in the primary database lacks the column(s) "trace": it was made by another version'],
      },
      {
        kind: 'version ledger made by another version (a column short)',
        args: ['worker', ...config],
        env: () => ({ DW_TARGET_DB: oldTargetDb.name }),
        code: 'LEDGER_MISSING',
        says: ['Target "t" has a "dualwrite_version_ledger" table without the column(s) "prior_version"', 'keep its rows'],
      },
    ];
    const results = await inBatches(cases, 3, (c) => dualwrite(c.args, { ...env, ...(c.env?.() ?? {}) }));
    cases.forEach((c, i) => expectClearFailure(results[i], c));
  });

  it('an unreachable target does not stop `dualwrite worker`: it warns, naming host:port/database, and keeps trying', async () => {
    const child = spawn(process.execPath, [CLI, 'worker', '--config', DLQ_CONFIG], {
      cwd: ROOT,
      env: { ...process.env, ...env, DW_TARGET_DB: 'dw_no_such_target_db', DW_LOG_LEVEL: 'info', DUALWRITE_DEBUG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      // The first background retry is 1 s after the start: its warning says "still unreachable".
      const warned = await eventually(async () => output.includes('dualwrite worker started') && output.includes('is still unreachable'), 30_000);
      expect({ warned, output }).toEqual({ warned: true, output });
      expect(output).toContain('target \\"t\\" (127.0.0.1:3306/dw_no_such_target_db) is unreachable');
      expect(output).toContain('still trying to reach target(s) t in the background');
      expect(output).not.toContain('TARGET_UNREACHABLE]'); // not a start-up failure
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
