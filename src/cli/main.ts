import { parseArgs } from 'node:util';
import 'reflect-metadata';
import { isDualWriteError } from '../index';
import { usageError } from './cli-error';
import { migrateCommand } from './migrate-command';
import { workerCommand } from './worker-command';
import { dlqCommand } from './dlq-command';
import { statusCommand, STATUS_HELP, STATUS_OPTIONS } from './status-command';
import { reconcileCommand, reconcileOptions, RECONCILE_HELP } from './reconcile-command';
import { backfillCommand, backfillOptions, BACKFILL_HELP } from './backfill-command';
import { dashboardCommand, DASHBOARD_HELP, DASHBOARD_OPTIONS } from './dashboard-command';

const HELP = `dualwrite <verb> [options]

Verbs:
  migrate                 create the outbox (primary) and version ledger (targets)
  worker                  relay the outbox and apply changes to the targets
      --targets a,b       only these targets (default: all)
      --concurrency N     jobs applied at once per target (default: config worker.concurrency)
  dlq list [--target T] [--entity E] [--json]
                          dead letters: changes that can never apply to a target
  dlq show <id>           one dead letter in full (ids look like reporting/1234)
  dlq replay <id…|--all> [--target T] [--entity E] [--yes]
                          send the rows' CURRENT state through the version gate again
  dlq discard <id…|--all> [--target T] [--entity E] [--yes]
                          drop dead letters for good
${STATUS_HELP}${DASHBOARD_HELP}${RECONCILE_HELP}${BACKFILL_HELP}
Every verb takes --config <path> (default ./ormconfig.ts).
`;

type Values = Record<string, string | boolean | undefined>;
type Verb = (values: Values, positionals: string[]) => Promise<number>;

const VERBS: Record<string, { options: Record<string, { type: 'string' | 'boolean' }>; positionals?: boolean; run: Verb }> = {
  migrate: { options: {}, run: (v) => migrateCommand({ config: v.config as string | undefined }) },
  worker: {
    options: { targets: { type: 'string' }, concurrency: { type: 'string' } },
    run: (v) =>
      workerCommand({
        config: v.config as string | undefined,
        targets: v.targets as string | undefined,
        concurrency: v.concurrency as string | undefined,
      }),
  },
  status: { options: STATUS_OPTIONS, run: (v) => statusCommand(v) },
  dashboard: { options: DASHBOARD_OPTIONS, run: (v) => dashboardCommand(v) },
  reconcile: { options: reconcileOptions, run: (v) => reconcileCommand(v) },
  backfill: { options: backfillOptions, run: (v) => backfillCommand(v) },
  dlq: {
    options: { target: { type: 'string' }, entity: { type: 'string' }, json: { type: 'boolean' }, all: { type: 'boolean' }, yes: { type: 'boolean' } },
    positionals: true,
    run: (v, positionals) =>
      dlqCommand(positionals, {
        config: v.config as string | undefined,
        target: v.target as string | undefined,
        entity: v.entity as string | undefined,
        json: v.json === true,
        all: v.all === true,
        yes: v.yes === true,
      }),
  },
};

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (!verb || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(HELP);
    return verb ? 0 : 2;
  }
  const command = VERBS[verb];
  if (!command) throw usageError(`Unknown verb "${verb}". Verbs: ${Object.keys(VERBS).join(', ')}.`);
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: rest,
      options: { config: { type: 'string' }, ...command.options },
      allowPositionals: command.positionals === true,
      strict: true,
    }));
  } catch (error) {
    throw usageError(`dualwrite ${verb}: ${argumentProblem(error as Error & { code?: string }, verb, command.options)}`);
  }
  return command.run(values, positionals);
}

/** parseArgs' complaint, said in the CLI's own words, with the options the verb does take. */
function argumentProblem(error: Error & { code?: string }, verb: string, options: Record<string, { type: 'string' | 'boolean' }>): string {
  const flags = ['config', ...Object.keys(options)].map((name) => `--${name}${(options[name]?.type ?? 'string') === 'string' ? ' <value>' : ''}`);
  const known = `Options of \`dualwrite ${verb}\`: ${flags.join(', ')}.`;
  const option = /'(-[^']*)'/.exec(error.message)?.[1];
  switch (error.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option ?? ''}. ${known}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = option?.replace(/^-\w, /, '').replace(/ <value>$/, '') ?? '';
      if (/argument missing/.test(error.message)) return `option ${name} needs a value. ${known}`;
      if (/ambiguous/.test(error.message)) return `the value of ${name} starts with "-" and looks like an option; write ${name}=<value> if it is the value. ${known}`;
      if (/does not take an argument/.test(error.message)) return `option ${name} takes no value. ${known}`;
      return `${error.message} ${known}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ''}; \`dualwrite ${verb}\` takes options only. ${known}`;
    default:
      return error.message;
  }
}

/**
 * Runs the CLI and sets the exit code; errors become one clear line on
 * stderr. An error that is not the library's own (a driver's, or a bug) is
 * shown as its message too; `DUALWRITE_DEBUG=1` adds its stack trace.
 */
export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (isDualWriteError(error)) {
        // A message that already starts with the command (`dualwrite worker: …`) is not prefixed twice.
        process.stderr.write(`${error.message.startsWith('dualwrite ') ? '' : 'dualwrite: '}${error.message} [${error.code}]\n`);
      } else if (process.env.DUALWRITE_DEBUG) {
        process.stderr.write(`dualwrite: ${(error as Error)?.stack ?? String(error)}\n`);
      } else {
        const message = error instanceof Error ? `${error.name === 'Error' ? '' : `${error.name}: `}${error.message}` : String(error);
        process.stderr.write(`dualwrite: unexpected error: ${message.split('\n')[0]}\n(Set DUALWRITE_DEBUG=1 for the stack trace, and report it if the cause is not in your setup.)\n`);
      }
      process.exitCode = 1;
    },
  );
}

if (require.main === module) runCli(process.argv.slice(2));
