/**
 * Config file of the chaos soak's `dualwrite worker` children and of its
 * `dualwrite reconcile` runs:
 *   node dist/src/cli/main.js worker --config dist/test/chaos/chaos-worker-config.js
 * with the CHAOS_* environment of `chaos-config.ts`.
 */
import 'reflect-metadata';
import { defineDualWrite } from '../../src';
import { chaosConfig, readChaosEnv } from './chaos-config';

export default defineDualWrite(chaosConfig(readChaosEnv(), 'worker'));
