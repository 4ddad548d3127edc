/**
 * The library's logger: structured JSON with redaction of credentials (also
 * inside error messages) and row images; pretty lines for development; a
 * clear error when pino-pretty is asked for but missing.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/observability/logger';

function sink(): { stream: Writable & { write(chunk: string): boolean }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { stream: stream as Writable & { write(chunk: string): boolean }, text: () => chunks.join('') };
}

describe('createLogger', () => {
  const savedPretty = process.env.DUALWRITE_LOG_PRETTY;
  afterEach(() => {
    if (savedPretty === undefined) delete process.env.DUALWRITE_LOG_PRETTY;
    else process.env.DUALWRITE_LOG_PRETTY = savedPretty;
  });

  it('writes JSON lines with change, entity and target, and redacts credentials and row images', () => {
    delete process.env.DUALWRITE_LOG_PRETTY;
    const out = sink();
    const logger = createLogger({ level: 'info' }, out.stream);
    logger.child({ target: 'reporting' }).error(
      {
        change: 'Order#42',
        entity: 'Order',
        err: new Error('connect failed: postgres://app:hunter2@db.internal:5432/shop (password=hunter2)'),
        options: { password: 'hunter2', connectionString: 'mysql://root:hunter2@x/y' },
        letter: { change: { row: { email: 'someone@example.com' } } },
      },
      'apply failed',
    );
    const text = out.text();
    const line = JSON.parse(text.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ lib: 'dualwrite', target: 'reporting', change: 'Order#42', entity: 'Order', msg: 'apply failed' });
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('someone@example.com');
    expect((line.err as { message: string }).message).toBe('connect failed: postgres://[redacted]@db.internal:5432/shop (password=[redacted])');
  });

  it('writes readable lines with logger.pretty (and with DUALWRITE_LOG_PRETTY=1)', () => {
    for (const [options, env] of [[{ pretty: true }, undefined], [{}, '1']] as const) {
      if (env) process.env.DUALWRITE_LOG_PRETTY = env;
      else delete process.env.DUALWRITE_LOG_PRETTY;
      const out = sink();
      createLogger(options, out.stream).info({ change: 'Order#7', password: 'hunter2' }, 'applied');
      const text = out.text();
      expect(text).toMatch(/INFO.*applied/);
      expect(text).toContain('Order#7');
      expect(text).not.toContain('hunter2');
      expect(() => JSON.parse(text)).toThrow();
    }
  });

  it('says how to install pino-pretty when it is missing', () => {
    jest.isolateModules(() => {
      jest.doMock('pino-pretty', () => {
        throw new Error("Cannot find module 'pino-pretty'");
      });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { createLogger: isolated } = require('../../src/observability/logger') as typeof import('../../src/observability/logger');
      expect(() => isolated({ pretty: true })).toThrow(/"logger\.pretty: true" needs the pino-pretty package, which is not installed\. Run `npm install --save-dev pino-pretty`/);
      delete process.env.DUALWRITE_LOG_PRETTY;
      process.env.DUALWRITE_LOG_PRETTY = '1';
      const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        const out = sink();
        isolated({}, out.stream).info('still logging');
        expect(stderr).toHaveBeenCalledWith(expect.stringContaining('DUALWRITE_LOG_PRETTY=1 needs the pino-pretty package'));
        expect(JSON.parse(out.text().trim())).toMatchObject({ msg: 'still logging' });
      } finally {
        stderr.mockRestore();
      }
    });
  });
});
