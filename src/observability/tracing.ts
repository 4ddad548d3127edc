import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

/**
 * Distributed tracing through the OpenTelemetry API. Without an SDK
 * registered by the application, every call here is a cheap no-op: no span
 * is active, so nothing is stored and nothing is started.
 *
 * The W3C `traceparent` of the writing request is stored with each change
 * (outbox column `trace`, then `Change.trace` in the job data). Each stage
 * starts its span as a child of what the previous stage stored and stores
 * its own in turn, so one trace reads: request → `dualwrite capture` →
 * `dualwrite relay` → `dualwrite apply`.
 */
const TRACER_NAME = 'typeorm-dualwrite';

function tracer() {
  return trace.getTracer(TRACER_NAME);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The W3C traceparent of a span context in `ctx`; undefined when there is no valid one. */
function traceparentOf(ctx: Context): string | undefined {
  const span = trace.getSpan(ctx);
  if (!span) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  if (carrier.traceparent && TRACEPARENT.test(carrier.traceparent)) return carrier.traceparent;
  // No W3C propagator registered (or another format): the traceparent is a fixed format.
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
}

/** The traceparent of the active span (the writing request's), or undefined. */
export function activeTraceparent(): string | undefined {
  return traceparentOf(context.active());
}

/** A context whose (remote) parent is the stored `traceparent`; undefined when it is not a valid one. */
export function contextOfTraceparent(traceparent: string | undefined): Context | undefined {
  if (!traceparent) return undefined;
  const match = TRACEPARENT.exec(traceparent);
  if (!match) return undefined;
  const spanContext = { traceId: match[1], spanId: match[2], traceFlags: parseInt(match[3], 16), isRemote: true };
  return isSpanContextValid(spanContext) ? trace.setSpanContext(ROOT_CONTEXT, spanContext) : undefined;
}

function traceIdOf(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** One span per distinct stored trace, each re-pointing its items' trace at itself. */
export interface StageSpans {
  /** Ends every span; an error marks them failed. */
  end(error?: unknown, attributes?: Attributes): void;
  /** Runs `work` with the span active when there is exactly one (nested instrumentation attaches to it). */
  run<T>(work: () => Promise<T>): Promise<T>;
}

const NO_SPANS: StageSpans = { end: () => undefined, run: (work) => work() };

/**
 * Starts one `name` span for each distinct `trace` among `items`, as a child
 * of it, and (when `repoint`) sets each item's `trace` to its new span so the
 * next stage continues from there. Items without a trace get no span.
 */
export function startStageSpans(
  name: string,
  kind: SpanKind,
  items: Array<{ trace?: string }>,
  attributes: (group: Array<{ trace?: string }>) => Attributes,
  repoint: boolean,
): StageSpans {
  const groups = new Map<string, Array<{ trace?: string }>>();
  for (const item of items) {
    if (!item.trace) continue;
    const group = groups.get(item.trace);
    if (group) group.push(item);
    else groups.set(item.trace, [item]);
  }
  if (groups.size === 0) return NO_SPANS;
  const spans: Array<{ span: Span; ctx: Context }> = [];
  for (const [traceparent, group] of groups) {
    const parent = contextOfTraceparent(traceparent);
    if (!parent) continue;
    const span = tracer().startSpan(name, { kind, attributes: attributes(group) }, parent);
    const ctx = trace.setSpan(parent, span);
    spans.push({ span, ctx });
    if (repoint) {
      const own = traceparentOf(ctx);
      if (own) for (const item of group) item.trace = own;
    }
  }
  return {
    end(error?: unknown, endAttributes?: Attributes) {
      for (const { span } of spans) {
        if (endAttributes) span.setAttributes(endAttributes);
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
        }
        span.end();
      }
    },
    run: (work) => (spans.length === 1 ? context.with(spans[0].ctx, work) : work()),
  };
}

/**
 * The capture span: a child of the ACTIVE context (the request that wrote),
 * around the outbox INSERT. Changes captured in that same trace are
 * re-pointed at it; undefined when no span is active.
 */
export function startCaptureSpan(items: ReadonlyArray<{ trace?: string; entity: string }>): StageSpans {
  const active = context.active();
  const parent = traceparentOf(active);
  if (!parent) return NO_SPANS;
  const span = tracer().startSpan(
    'dualwrite capture',
    { kind: SpanKind.INTERNAL, attributes: { 'dualwrite.changes': items.length, 'dualwrite.entities': [...new Set(items.map((i) => i.entity))] } },
    active,
  );
  const ctx = trace.setSpan(active, span);
  const own = traceparentOf(ctx);
  const traceId = traceIdOf(parent);
  if (own) for (const item of items) if (item.trace && traceIdOf(item.trace) === traceId) item.trace = own;
  return {
    end(error?: unknown) {
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      span.end();
    },
    run: (work) => context.with(ctx, work),
  };
}

/** What the relay and apply spans describe of a change (or, `count` > 1, of a batch outbox row, by its first change). */
interface TracedChange {
  id: string;
  entity: string;
  trace?: string;
  count?: number;
}

function describe(group: Array<{ trace?: string }>): Attributes {
  const changes = group as TracedChange[];
  return {
    'dualwrite.changes': changes.reduce((n, c) => n + (c.count ?? 1), 0),
    'dualwrite.entities': [...new Set(changes.map((c) => c.entity))],
    // Ids only (never row values): enough to find a change in the logs.
    'dualwrite.change_ids': changes.slice(0, 20).map((c) => c.id),
  };
}

/**
 * Relay spans (PRODUCER), one per traced request among `changes`, each a
 * child of its capture span; the changes (the job data about to be added)
 * are re-pointed at them, so the apply continues from the relay.
 */
export function startRelaySpans(changes: TracedChange[]): StageSpans {
  return startStageSpans('dualwrite relay', SpanKind.PRODUCER, changes, (group) => ({ 'messaging.system': 'bullmq', 'messaging.operation.type': 'send', ...describe(group) }), true);
}

/**
 * Apply spans (CONSUMER), one per traced request among a job's changes, each
 * a child of its relay span. The job data is left as received (a retried
 * attempt starts new apply spans under the same relay span).
 */
export function startApplySpans(target: string, jobId: string | undefined, attempt: number, changes: TracedChange[]): StageSpans {
  return startStageSpans(
    'dualwrite apply',
    SpanKind.CONSUMER,
    changes,
    (group) => ({
      'messaging.system': 'bullmq',
      'messaging.operation.type': 'process',
      'messaging.destination.name': target,
      ...(jobId === undefined ? {} : { 'messaging.message.id': jobId }),
      'dualwrite.target': target,
      'dualwrite.attempt': attempt,
      ...describe(group),
    }),
    false,
  );
}
