import { DualWrite, loadConfig, type DualWriteConfig } from '../index';
import { usageError } from './cli-error';

type Inspection = Awaited<ReturnType<typeof DualWrite.inspect>>;
type Overview = Inspection['overview'];
type Thresholds = Inspection['thresholds'];

/** Options of `dualwrite status` (besides `--config`), for `parseArgs`. */
export const STATUS_OPTIONS = {
  json: { type: 'boolean' },
  'max-lag-ms': { type: 'string' },
  'max-dead-letters': { type: 'string' },
  'max-outbox-age-ms': { type: 'string' },
} as const satisfies Record<string, { type: 'string' | 'boolean' }>;

export const STATUS_HELP = `  status [--json] [--max-lag-ms N] [--max-dead-letters N] [--max-outbox-age-ms N]
                          whether each target answers, lag, queue depth, outbox backlog
                          and dead letters per target; exits 0 when every target answers
                          and all are within the thresholds, 1 otherwise
`;

/** One threshold a measured value exceeded, or (`threshold: 'reachable'`) a target that did not answer. */
export interface Breach {
  threshold: keyof Thresholds | 'reachable';
  /** The command-line flag of the threshold; absent for `reachable`. */
  flag?: string;
  /** The target it concerns; absent for the outbox. */
  target?: string;
  value: number;
  max: number;
  message: string;
}

const FLAGS: Record<keyof Thresholds, string> = {
  lagMs: '--max-lag-ms',
  deadLetters: '--max-dead-letters',
  outboxAgeMs: '--max-outbox-age-ms',
};

/** Which thresholds the overview exceeds (a value greater than its threshold). */
export function evaluateStatus(overview: Overview, thresholds: Thresholds): Breach[] {
  const breaches: Breach[] = [];
  const breach = (threshold: keyof Thresholds, value: number, what: string, target?: string) => {
    const max = thresholds[threshold];
    if (value <= max) return;
    breaches.push({
      threshold,
      flag: FLAGS[threshold],
      ...(target === undefined ? {} : { target }),
      value,
      max,
      message: `${what} is ${value} > ${max} (threshold ${threshold}: observability.thresholds.${threshold} or ${FLAGS[threshold]})`,
    });
  };
  for (const t of overview.targets) {
    if (t.reachable === false) {
      breaches.push({
        threshold: 'reachable',
        target: t.target,
        value: 0,
        max: 1,
        message:
          `target "${t.target}" does not answer from here (${t.unreachableReason ?? 'no reason given'}); its changes wait in its queue. ` +
          `Check that its server runs and accepts this host, and its connection options in the config.`,
      });
    }
    breach('lagMs', t.lagMs, `replication lag of target "${t.target}" (ms)`, t.target);
    breach('deadLetters', t.deadLetters, `dead letters of target "${t.target}"`, t.target);
  }
  breach('outboxAgeMs', overview.outbox.oldestAgeMs, 'age of the oldest outbox row (ms)');
  return breaches;
}

function flagValue(values: Record<string, unknown>, flag: keyof typeof STATUS_OPTIONS): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw.trim())) {
    throw usageError(`dualwrite status: --${flag} expects a whole number of at least 0, got ${JSON.stringify(raw)}.`);
  }
  return Number(raw.trim());
}

/** Thresholds of the config, overridden by the command-line flags given. */
export function thresholdsFrom(values: Record<string, unknown>, configured: Thresholds): Thresholds {
  return {
    lagMs: flagValue(values, 'max-lag-ms') ?? configured.lagMs,
    deadLetters: flagValue(values, 'max-dead-letters') ?? configured.deadLetters,
    outboxAgeMs: flagValue(values, 'max-outbox-age-ms') ?? configured.outboxAgeMs,
  };
}

export interface StatusDeps {
  /** A config object instead of loading `values.config` (tests, embedding). */
  config?: DualWriteConfig;
  /** Where the report goes. @defaultValue process.stdout */
  write?: (text: string) => void;
}

/**
 * `dualwrite status [--config path] [--json] [--max-lag-ms N]
 * [--max-dead-letters N] [--max-outbox-age-ms N]`: measures without relaying
 * anything, prints, and returns 0 when every value is within its threshold,
 * 1 otherwise (naming the thresholds exceeded). Prints no connection details.
 */
export async function statusCommand(values: Record<string, string | boolean | undefined>, deps: StatusDeps = {}): Promise<number> {
  const write = deps.write ?? ((text: string) => void process.stdout.write(text));
  // Validate the flags before connecting anywhere.
  thresholdsFrom(values, { lagMs: 0, deadLetters: 0, outboxAgeMs: 0 });
  const config = deps.config ?? loadConfig(typeof values.config === 'string' ? values.config : undefined);
  const inspection = await DualWrite.inspect(config);
  const thresholds = thresholdsFrom(values, inspection.thresholds);
  const breaches = evaluateStatus(inspection.overview, thresholds);
  if (values.json === true) {
    write(`${JSON.stringify({ ok: breaches.length === 0, ...inspection.overview, thresholds, breaches }, null, 2)}\n`);
  } else {
    write(render(inspection.overview, thresholds, breaches));
  }
  return breaches.length === 0 ? 0 : 1;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function render(overview: Overview, thresholds: Thresholds, breaches: Breach[]): string {
  const lines: string[] = [];
  const { outbox } = overview;
  lines.push(`Outbox (primary): ${outbox.count} row(s) not relayed${outbox.count ? `, oldest ${seconds(outbox.oldestAgeMs)} old` : ''}`);
  lines.push('');
  const header = ['TARGET', 'ANSWERS', 'LAG', 'WAITING', 'PRIORITIZED', 'DELAYED', 'ACTIVE', 'FAILED', 'DEAD LETTERS'];
  const rows = overview.targets.map((t) => [
    t.target,
    t.reachable === undefined ? '-' : t.reachable ? 'yes' : 'NO',
    seconds(t.lagMs),
    String(t.queue.waiting),
    String(t.queue.prioritized),
    String(t.queue.delayed),
    String(t.queue.active),
    String(t.queue.failed),
    String(t.deadLetters),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) lines.push(row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  lines.push('');
  const limits = `lag ≤ ${thresholds.lagMs} ms, dead letters ≤ ${thresholds.deadLetters}, outbox age ≤ ${thresholds.outboxAgeMs} ms`;
  if (breaches.length === 0) {
    lines.push(`OK: everything is within the thresholds (${limits}).`);
  } else {
    for (const b of breaches) lines.push(`FAIL: ${b.message}`);
  }
  return `${lines.join('\n')}\n`;
}
