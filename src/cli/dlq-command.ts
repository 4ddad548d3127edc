import { DualWrite, loadConfig, type DeadLetter } from '../index';
import { usageError } from './cli-error';

export interface DlqOptions {
  config?: string;
  target?: string;
  entity?: string;
  json?: boolean;
  all?: boolean;
  yes?: boolean;
}

const SUBVERBS = ['list', 'show', 'replay', 'discard'];

/** `dualwrite dlq list|show|replay|discard`. */
export async function dlqCommand(positionals: string[], options: DlqOptions): Promise<number> {
  const [sub, ...ids] = positionals;
  if (!sub || !SUBVERBS.includes(sub)) {
    throw usageError(`dualwrite dlq needs one of: ${SUBVERBS.join(', ')} (got ${sub ? `"${sub}"` : 'nothing'}).`);
  }
  if ((sub === 'list' && ids.length) || (sub === 'show' && ids.length !== 1)) {
    throw usageError(sub === 'show' ? 'dualwrite dlq show takes exactly one dead-letter id, e.g. reporting/1234.' : 'dualwrite dlq list takes no ids; filter with --target and --entity.');
  }
  if ((sub === 'list' || sub === 'show') && (options.all || options.yes)) {
    throw usageError(`dualwrite dlq ${sub} takes no --all or --yes (they select letters for replay and discard).`);
  }
  if ((sub === 'replay' || sub === 'discard') && ids.length === 0 && !options.all) {
    throw usageError(`dualwrite dlq ${sub} needs dead-letter ids (e.g. reporting/1234) or --all.`);
  }
  if ((sub === 'replay' || sub === 'discard') && ids.length > 0 && options.all) {
    throw usageError(`dualwrite dlq ${sub}: give ids or --all, not both.`);
  }
  if (options.all && !options.yes && (sub === 'discard' || (!options.target && !options.entity))) {
    throw usageError(
      sub === 'discard'
        ? 'dualwrite dlq discard --all deletes dead letters for good; add --yes to confirm (narrow it with --target/--entity).'
        : 'dualwrite dlq replay --all without --target or --entity replays every dead letter of every target; narrow it, or add --yes.',
    );
  }

  const dw = await DualWrite.start(loadConfig(options.config));
  try {
    if (sub === 'list') return print(await dw.listDeadLetters(options), options.json);
    if (sub === 'show') {
      const letter = await dw.deadLetters.get(ids[0]);
      if (!letter) throw usageError(`No dead letter "${ids[0]}". List them with \`dualwrite dlq list\`.`);
      process.stdout.write(`${JSON.stringify(letter, null, 2)}\n`);
      return 0;
    }
    const letters = await select(dw, ids, options);
    if (letters.length === 0) {
      process.stdout.write(`No dead letters match${describeFilter(options)}; nothing to ${sub}.\n`);
      return 0;
    }
    if (sub === 'replay') {
      const result = await dw.replayDeadLetters(letters);
      await dw.flush();
      process.stdout.write(
        `Replayed ${result.replayed.length} dead letter(s) from the rows' current state: ${result.upserts} upsert(s), ${result.deletes} delete(s) sent through the version gate.\n`,
      );
      return 0;
    }
    for (const letter of letters) await dw.deadLetters.remove(letter.id);
    process.stdout.write(`Discarded ${letters.length} dead letter(s).\n`);
    return 0;
  } finally {
    await dw.close();
  }
}

async function select(dw: DualWrite, ids: string[], options: DlqOptions): Promise<DeadLetter[]> {
  if (options.all) return dw.listDeadLetters(options);
  const letters: DeadLetter[] = [];
  const unknown: string[] = [];
  for (const id of ids) {
    const letter = await dw.deadLetters.get(id);
    if (letter) letters.push(letter);
    else unknown.push(id);
  }
  if (unknown.length) {
    throw usageError(`No dead letter ${unknown.map((id) => `"${id}"`).join(', ')} (ids look like reporting/1234); nothing was changed. List them with \`dualwrite dlq list\`.`);
  }
  return letters;
}

function describeFilter(options: DlqOptions): string {
  const parts = [options.target && `target "${options.target}"`, options.entity && `entity "${options.entity}"`].filter(Boolean);
  return parts.length ? ` ${parts.join(' and ')}` : '';
}

function print(letters: DeadLetter[], json?: boolean): number {
  if (json) {
    process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
    return 0;
  }
  if (letters.length === 0) {
    process.stdout.write('No dead letters.\n');
    return 0;
  }
  const rows = letters.map((l) => [
    l.id,
    l.change.entity,
    l.change.key.join(','),
    l.change.op,
    `${l.failure.class} ${l.failure.reason}${l.failure.code ? ` ${l.failure.code}` : ''}`,
    String(l.attempts),
    new Date(l.lastFailedAt).toISOString(),
    l.failure.message.replace(/\s+/g, ' ').slice(0, 80),
  ]);
  const header = ['ID', 'ENTITY', 'KEY', 'OP', 'FAILURE', 'ATTEMPTS', 'LAST FAILED', 'MESSAGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()}\n`);
  return 0;
}
