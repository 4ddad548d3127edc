import { DualWriteError } from '../index';

export function usageError(message: string): DualWriteError {
  return new DualWriteError('CLI_USAGE', `${message}\nRun \`dualwrite --help\` for the verbs and their options.`, {});
}
