/**
 * Traces: the W3C trace context of the writing request is stored with each
 * change and continued by the relay and the worker, so one trace reads
 * request → `dualwrite capture` → `dualwrite relay` → `dualwrite apply`.
 * Real services, an in-process worker, the OpenTelemetry SDK with an
 * in-memory exporter (what an application would register), both primary
 * engines.
 */
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { context, propagation, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { DataSource } from 'typeorm';
import { DualWrite, runMigrations } from '../../../src';
import { eventually } from '../../support/compare';
import { createDatabase, dataSource, type Engine, type TestDatabase } from '../../support/databases';
import { queuePrefix, removeQueues, REDIS } from '../../support/redis';
import { obsEntities } from './obs-entities';

jest.setTimeout(60_000);

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});

afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

const tracer = () => trace.getTracer('test-app');

function spansOf(traceId: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
}

function only(spans: ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0];
}

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe.each<[Engine, Engine]>([
  ['postgres', 'mariadb'],
  ['mariadb', 'postgres'],
])('traces (%s → %s)', (primaryEngine, targetEngine) => {
  const source = obsEntities(true);
  const replica = obsEntities(false);
  const prefix = queuePrefix();
  let primaryDb: TestDatabase;
  let targetDb: TestDatabase;
  let primary: DataSource;
  let target: DataSource;
  let dw: DualWrite;
  let worker: { close(): Promise<void> };

  beforeAll(async () => {
    [primaryDb, targetDb] = await Promise.all([createDatabase(primaryEngine, 'dwtrp'), createDatabase(targetEngine, 'dwtrt')]);
    primary = dataSource(primaryDb, source.all);
    target = dataSource(targetDb, replica.all);
    await Promise.all([primary.initialize(), target.initialize()]);
    await runMigrations({ primary, targets: { t: target } });
    dw = await DualWrite.start({ primary, targets: { t: target }, redis: REDIS, queuePrefix: prefix, logger: { level: 'silent' }, retry: { attempts: 1 }, reconcile: { every: 0 } });
    worker = await dw.startWorker();
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

  async function targetNames(): Promise<string[]> {
    const rows = (await target.query('SELECT name FROM obs_item ORDER BY id')) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }

  it('continues the trace of a save() through capture, relay and apply (one span each, in that order)', async () => {
    const name = `traced-${primaryEngine}`;
    const request = await tracer().startActiveSpan('POST /items', async (span) => {
      await primary.getRepository(source.ObsItem).save([{ name }, { name: `${name}-2` }, { name: `${name}-3` }]);
      span.end();
      return span;
    });
    const traceId = request.spanContext().traceId;
    const done = await eventually(async () => spansOf(traceId).some((s) => s.name === 'dualwrite apply'), 30_000, 20);
    expect(done).toBe(true);
    expect(await targetNames()).toEqual(expect.arrayContaining([name, `${name}-2`, `${name}-3`]));

    const spans = spansOf(traceId);
    const capture = only(spans, 'dualwrite capture');
    const relay = only(spans, 'dualwrite relay');
    const apply = only(spans, 'dualwrite apply');
    expect(parentOf(capture)).toBe(request.spanContext().spanId);
    expect(parentOf(relay)).toBe(capture.spanContext().spanId);
    expect(parentOf(apply)).toBe(relay.spanContext().spanId);
    expect(relay.kind).toBe(SpanKind.PRODUCER);
    expect(apply.kind).toBe(SpanKind.CONSUMER);
    expect(capture.attributes).toMatchObject({ 'dualwrite.changes': 3, 'dualwrite.entities': ['ObsItem'] });
    expect(apply.attributes).toMatchObject({
      'dualwrite.target': 't',
      'messaging.destination.name': 't',
      'dualwrite.changes': 3,
      'dualwrite.entities': ['ObsItem'],
      'dualwrite.applied': 3,
      'dualwrite.dead_lettered': 0,
    });
    expect(apply.status.code).not.toBe(SpanStatusCode.ERROR);
    // The apply ends after the capture started: the spans describe one flow in time.
    expect(apply.endTime[0] * 1e9 + apply.endTime[1]).toBeGreaterThan(capture.startTime[0] * 1e9 + capture.startTime[1]);
  });

  it('stores no trace and starts no span for a write outside any trace', async () => {
    const before = exporter.getFinishedSpans().length;
    const name = `untraced-${primaryEngine}`;
    await primary.getRepository(source.ObsItem).save({ name });
    expect(await eventually(async () => (await targetNames()).includes(name), 30_000, 20)).toBe(true);
    await dw.flush();
    const added = exporter.getFinishedSpans().slice(before).filter((s) => s.name.startsWith('dualwrite'));
    expect(added).toEqual([]);
  });

  it('records a dead-lettered change on the apply span of its request', async () => {
    const request = await tracer().startActiveSpan('POST /notes', async (span) => {
      await primary.getRepository(source.ObsNote).save({ body: 'far too long for the target' });
      span.end();
      return span;
    });
    const traceId = request.spanContext().traceId;
    expect(await eventually(async () => spansOf(traceId).some((s) => s.name === 'dualwrite apply'), 30_000, 20)).toBe(true);
    const apply = only(spansOf(traceId), 'dualwrite apply');
    expect(apply.attributes).toMatchObject({ 'dualwrite.entities': ['ObsNote'], 'dualwrite.applied': 0, 'dualwrite.dead_lettered': 1 });
    expect(await dw.listDeadLetters()).toHaveLength(1);
  });
});
