import { existsSync } from 'node:fs';
import Module from 'node:module';
import path from 'node:path';
import { DualWriteError } from '../errors/dual-write-error';
import type { DualWriteConfig } from './dual-write-config';

let typescriptHookInstalled = false;

/**
 * Lets `require` load `.ts` files by transpiling them with the project's own
 * `typescript` package (decorator metadata included, like ts-node's
 * transpile-only mode that TypeORM's CLI uses). No type checking.
 */
function installTypeScriptHook(from: string): void {
  if (typescriptHookInstalled) return;
  const req = Module.createRequire(from);
  let ts: typeof import('typescript');
  try {
    ts = req('typescript');
  } catch {
    throw new DualWriteError(
      'CONFIG_LOAD_FAILED',
      `Loading a TypeScript config needs the "typescript" package; install it (npm i -D typescript) or point --config at a compiled .js file.`,
      { option: '--config' },
    );
  }
  const extensions = (Module as unknown as { _extensions: Record<string, (m: NodeModule, f: string) => void> })._extensions;
  extensions['.ts'] = (module, filename) => {
    const source = require('node:fs').readFileSync(filename, 'utf8') as string;
    const output = ts.transpileModule(source, {
      fileName: filename,
      reportDiagnostics: true,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        experimentalDecorators: true,
        emitDecoratorMetadata: true,
        esModuleInterop: true,
        sourceMap: false,
        inlineSourceMap: true,
      },
    });
    const syntax = (output.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
    if (syntax.length > 0) {
      const lines = syntax.slice(0, 3).map((d) => {
        const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
        const where = at ? `${filename}:${at.line + 1}:${at.character + 1}` : filename;
        return `${where}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      });
      throw new SyntaxError(`TypeScript syntax error${syntax.length > 1 ? 's' : ''}: ${lines.join('; ')}`);
    }
    (module as unknown as { _compile(code: string, file: string): void })._compile(output.outputText, filename);
  };
  // Errors thrown in the config then point at its TypeScript lines, not the transpiled ones.
  process.setSourceMapsEnabled?.(true);
  typescriptHookInstalled = true;
}

/**
 * Loads the user's config file (`./ormconfig.ts` by default): its default
 * export, or `module.exports`, must be the result of `defineDualWrite`.
 */
export function loadConfig(file = 'ormconfig.ts', cwd = process.cwd()): DualWriteConfig {
  const absolute = path.resolve(cwd, file);
  if (!existsSync(absolute)) {
    throw new DualWriteError(
      'CONFIG_LOAD_FAILED',
      `Config file ${absolute} does not exist. Create it (export default defineDualWrite({ primary, targets, redis })) or pass --config <path>.`,
      { option: '--config' },
    );
  }
  if (/\.(c|m)?tsx?$/.test(absolute)) installTypeScriptHook(absolute);
  let exported: unknown;
  try {
    exported = require(absolute);
  } catch (error) {
    throw new DualWriteError(
      'CONFIG_LOAD_FAILED',
      `Config file ${absolute} failed to load: ${reason(error, path.dirname(absolute))} Fix the file (or what it imports) and run the command again.`,
      { option: '--config' },
      { cause: error },
    );
  }
  const config = (exported as { default?: unknown })?.default ?? exported;
  if (typeof config !== 'object' || config === null || !('primary' in config)) {
    throw new DualWriteError(
      'CONFIG_LOAD_FAILED',
      `Config file ${absolute} must default-export defineDualWrite({ primary, targets, redis }); it exports ${describe(config)}.`,
      { option: '--config' },
    );
  }
  return config as DualWriteConfig;
}

/** The error's first line, and where in the user's own files it was thrown (never the whole stack). */
function reason(error: unknown, dir: string): string {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].trim();
  const name = error instanceof Error && error.name !== 'Error' ? `${error.name}: ` : '';
  const frame = error instanceof Error && !(error instanceof SyntaxError) ? userFrame(error.stack ?? '', dir) : undefined;
  return `${name}${message.replace(/\.?$/, '.')}${frame ? ` (at ${frame})` : ''}`;
}

function userFrame(stack: string, dir: string): string | undefined {
  for (const line of stack.split('\n').slice(1)) {
    const match = /\(?((?:\/|[A-Za-z]:\\)[^()]+?):(\d+):(\d+)\)?$/.exec(line.trim());
    if (match && match[1].startsWith(dir) && !match[1].includes(`${path.sep}node_modules${path.sep}`)) {
      const relative = path.relative(process.cwd(), match[1]);
      return `${relative && !relative.startsWith('..') ? relative : match[1]}:${match[2]}`;
    }
  }
  return undefined;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'function') return 'a function (export the config itself, not a factory that makes it)';
  if (value instanceof Promise) return 'a Promise (export the config itself; build DataSources synchronously, connect nothing at load)';
  if (typeof value === 'object') return `an object with keys [${Object.keys(value).join(', ')}]`;
  return typeof value;
}
