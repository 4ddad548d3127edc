import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The installed TypeORM's version as [major, minor, patch] (the suite also runs against 0.3.x: `.ci/typeorm-0.3`). */
export function typeormVersion(): [number, number, number] {
  const manifest = path.join(path.dirname(require.resolve('typeorm')), 'package.json');
  const [major, minor, patch] = (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version.split('.').map((part) => parseInt(part, 10));
  return [major, minor, patch];
}

/** Whether the installed TypeORM is older than `version` ("0.3.23"). */
export function typeormBefore(version: string): boolean {
  const wanted = version.split('.').map(Number);
  const installed = typeormVersion();
  for (let i = 0; i < 3; i++) if (installed[i] !== wanted[i]) return installed[i] < wanted[i];
  return false;
}
