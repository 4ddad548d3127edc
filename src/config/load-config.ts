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
    (module as unknown as { _compile(code: string, file: string): void })._compile(output.outputText, filename);
  };
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
      `Config file ${absolute} failed to load: ${(error as Error).message}`,
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

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') return `an object with keys [${Object.keys(value).join(', ')}]`;
  return typeof value;
}
