import { QueryFailedError } from 'typeorm';
import { classifyError } from '../../src/errors/classify-error';
import { DualWriteError } from '../../src/errors/dual-write-error';
import { DRIVER_ERRORS, rebuildDriverError } from '../fixtures/driver-errors';

describe('classifyError', () => {
  describe.each(DRIVER_ERRORS.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    it(`is ${c.expected.class} (${c.expected.reason}) as the driver raises it`, () => {
      expect(classifyError(rebuildDriverError(c))).toMatchObject(c.expected);
    });

    it('is the same wrapped in TypeORM’s QueryFailedError', () => {
      const wrapped = new QueryFailedError('SELECT 1', [], rebuildDriverError(c));
      expect(classifyError(wrapped)).toMatchObject(c.expected);
    });
  });

  it('reports the driver’s own code', () => {
    const pg = DRIVER_ERRORS.find((c) => c.id === 'pg deadlock')!;
    const mysql = DRIVER_ERRORS.find((c) => c.id === 'mysql lock wait timeout')!;
    expect(classifyError(rebuildDriverError(pg)).code).toBe('40P01');
    expect(classifyError(rebuildDriverError(mysql)).code).toBe('ER_LOCK_WAIT_TIMEOUT');
  });

  it('covers both classes for both drivers', () => {
    for (const driver of ['pg', 'mysql2'] as const) {
      const classes = new Set(DRIVER_ERRORS.filter((c) => c.driver === driver).map((c) => c.expected.class));
      expect([...classes].sort()).toEqual(['permanent', 'transient']);
    }
  });

  it('makes a missing target table or column, an unknown entity and a bad payload permanent', () => {
    for (const code of ['TARGET_TABLE_MISSING', 'TARGET_COLUMN_MISSING', 'ENTITY_NOT_FOUND'] as const) {
      expect(classifyError(new DualWriteError(code, 'x'))).toEqual({ class: 'permanent', reason: 'schema', code });
    }
    expect(classifyError(new DualWriteError('PAYLOAD_INVALID', 'x'))).toEqual({ class: 'permanent', reason: 'payload', code: 'PAYLOAD_INVALID' });
    expect(classifyError(new DualWriteError('KEY_TOO_LONG', 'x'))).toEqual({ class: 'permanent', reason: 'data', code: 'KEY_TOO_LONG' });
  });

  it('retries its own other errors', () => {
    expect(classifyError(new DualWriteError('TARGET_UNREACHABLE', 'x'))).toMatchObject({ class: 'transient' });
  });

  it('retries what it does not know, rather than drop data', () => {
    for (const unknown of [new Error('something odd'), undefined, null, 'a string', 42, { code: 7 }]) {
      expect(classifyError(unknown)).toMatchObject({ class: 'transient', reason: 'unknown' });
    }
  });

  it('does not take a MySQL errno name for a SQLSTATE', () => {
    // `ER_...` names are five characters and up; only five-character non-ER codes are SQLSTATEs.
    expect(classifyError({ code: 'EPIPE', message: 'write EPIPE' })).toMatchObject({ class: 'transient', reason: 'connection' });
    expect(classifyError({ code: '08006', message: 'connection failure' })).toMatchObject({ class: 'transient', reason: 'connection' });
  });
});
