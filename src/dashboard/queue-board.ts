import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import type { ControllerHandlerReturnType } from '@bull-board/api/typings/app';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { RequestHandler } from 'express';
import type { DualWrite } from '../index';
import { redactDeep } from './redact';

/** Where bull-board is mounted, below the dashboard's root. */
export const QUEUES_PATH = '/queues';

/**
 * The bull-board UI over every target's apply queue and dead-letter queue
 * (`<target>.dead`). Two boards over the same queues: a read-only one
 * (no action buttons) for viewers and a writable one for operators. Which
 * one a request reaches only changes the buttons: the role is enforced by
 * the dashboard's middleware on every request, before either board.
 */
export function queueBoards(dw: DualWrite): { viewer: RequestHandler; operator: RequestHandler } {
  const targets = Object.keys(dw.config.targets);
  const board = (readOnlyMode: boolean): RequestHandler => {
    const adapters: BullMQAdapter[] = [];
    for (const target of targets) {
      adapters.push(
        new BullMQAdapter(dw.queues.get(target) as unknown as Queue, {
          readOnlyMode,
          displayName: `${target} · apply`,
          description: `Apply jobs of target "${target}": each carries many changes (row images without @NotReplicated columns).`,
        }),
      );
      const dead = new BullMQAdapter(dw.deadLetters.queue(target) as unknown as Queue, {
        readOnlyMode,
        displayName: `${target} · dead letters`,
        description: `Dead letters of target "${target}". Retry here REPLAYS the letter (the row's current state through the version gate); clean discards it.`,
        // A dead letter whose handler ran is "completed"; retrying it means replaying it.
        allowCompletedRetries: true,
      } as ConstructorParameters<typeof BullMQAdapter>[1]);
      adapters.push(dead);
    }
    const server = new ExpressAdapter();
    server.setBasePath(QUEUES_PATH);
    createBullBoard({
      queues: adapters,
      serverAdapter: server,
      options: {
        uiConfig: {
          boardTitle: 'dualwrite queues',
          hideDocsLink: true,
          miscLinks: [
            { text: 'Overview', url: '/' },
            { text: 'Dead letters', url: '/dead-letters' },
          ],
        },
        // Failure messages and stack traces are not run through bull-board's
        // formatters: redact every response body on its way out.
        handlerHooks: { after: (_context, result) => redactDeep(result) as ControllerHandlerReturnType },
      },
    });
    return server.getRouter() as RequestHandler;
  };
  return { viewer: board(true), operator: board(false) };
}
