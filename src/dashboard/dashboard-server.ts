import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { DualWrite, isDualWriteError, readReconcileReports, type DeadLetter } from '../index';
import { hasCredentials, identify, OPERATOR_ENV, type DashboardCredentials, type DashboardRole } from './dashboard-access';
import { renderDeadLetters } from './dead-letters-page';
import { redactText } from './redact';
import { renderOverview } from './overview-page';
import { QUEUES_PATH, queueBoards } from './queue-board';
import type { PageContext } from './html';

export interface DashboardOptions {
  /** Interface to listen on. @defaultValue '127.0.0.1' */
  host?: string;
  /** Port; 0 picks a free one. @defaultValue 3000 */
  port?: number;
  /** Users per role (see `credentialsFromEnv`). Without any, everyone is a read-only viewer (loopback only). */
  credentials?: DashboardCredentials;
  /** Thresholds that turn values red, as for `dualwrite status`. @defaultValue the config's `observability.thresholds` */
  thresholds?: { lagMs: number; deadLetters: number; outboxAgeMs: number };
}

export interface RunningDashboard {
  url: string;
  port: number;
  close(): Promise<void>;
}

interface Viewer {
  role: DashboardRole;
  /** Name shown in the header and logged with each action. */
  user: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    dualwriteViewer?: Viewer;
  }
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * bull-board endpoints an operator may call, relative to `/queues`: retry,
 * promote, pause/resume, and cleaning out COMPLETED jobs. The rest (add a
 * job, edit its data, remove a job that still holds unapplied changes, clean
 * waiting/delayed/failed jobs, empty or obliterate a queue, change
 * concurrency or rate limits) could forge or drop changes and is refused for
 * every role. (Removing a dead letter is a discard: handled before this list.)
 */
const OPERATOR_QUEUE_ACTIONS: RegExp[] = [
  /^\/api\/queues\/[^/]+\/[^/]+\/(retry|promote)$/,
  /^\/api\/queues\/[^/]+\/retry\/(completed|failed)$/,
  /^\/api\/queues\/[^/]+\/clean\/completed$/,
  /^\/api\/queues\/[^/]+\/(promote|pause|resume)$/,
  /^\/api\/queues\/(pause|resume)$/,
];

const DEAD_QUEUE_JOB = /^\/api\/queues\/([^/]+)\/([^/]+)\/(retry|clean)$/;
const DEAD_QUEUE_ALL = /^\/api\/queues\/([^/]+)\/retry\/(completed|failed)$/;

/**
 * Serves the dashboard for a started `DualWrite` (whose config names the
 * targets): an overview page, the dead letters with replay/discard, and
 * bull-board over every apply and dead-letter queue. Every request is
 * authenticated when credentials are set; every request that is not
 * GET/HEAD needs the operator role, checked here, whatever the UI shows.
 */
export async function startDashboard(dw: DualWrite, options: DashboardOptions = {}): Promise<RunningDashboard> {
  const host = options.host ?? '127.0.0.1';
  const credentials = options.credentials ?? {};
  const secured = hasCredentials(credentials);
  const thresholds = options.thresholds ?? dw.config.observability.thresholds;
  const log = dw.logger.child({ component: 'dashboard' });
  const boards = queueBoards(dw);

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    // Not `no-referrer`: with it Chromium sends `Origin: null` on same-origin form posts.
    res.setHeader('Referrer-Policy', 'same-origin');
    res.setHeader('Cache-Control', 'no-store');
    next();
  });

  // Who is asking: 401 without valid credentials (when any are configured).
  app.use((req, res, next) => {
    if (!secured) {
      req.dualwriteViewer = { role: 'viewer', user: 'anonymous' };
      return next();
    }
    const caller = identify(req.headers.authorization, credentials);
    if (caller.role === 'anonymous' || caller.role === 'invalid') {
      res.setHeader('WWW-Authenticate', 'Basic realm="dualwrite dashboard", charset="UTF-8"');
      return deny(res, 401, caller.role === 'invalid' ? 'Invalid user name or password.' : 'Sign in: this dashboard needs a user name and password.');
    }
    req.dualwriteViewer = { role: caller.role, user: caller.user };
    next();
  });

  // Every mutating request, whoever serves it (our pages or bull-board), needs the operator role.
  app.use((req, res, next) => {
    if (READ_METHODS.has(req.method)) return next();
    const viewer = req.dualwriteViewer!;
    if (viewer.role !== 'operator') {
      log.warn({ user: viewer.user, role: viewer.role, method: req.method, path: req.path }, 'dashboard: refused a change by a non-operator');
      return deny(res, 403, `Forbidden: ${req.method} ${req.path} needs the operator role${secured ? '' : ` (no credentials are configured, so the dashboard is read-only; set ${OPERATOR_ENV}=user:password)`}.`);
    }
    // Browsers send Basic credentials with cross-site form posts too: only same-origin changes.
    const origin = req.headers.origin;
    if (origin && origin !== 'null') {
      let originHost: string | undefined;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = undefined;
      }
      if (originHost !== req.headers.host) return deny(res, 403, 'Forbidden: cross-site request refused.');
    } else if (origin === 'null') {
      return deny(res, 403, 'Forbidden: cross-site request refused.');
    }
    next();
  });

  const page = (req: Request, title: string, active: PageContext['active']): PageContext => {
    const viewer = req.dualwriteViewer!;
    return {
      title,
      active,
      who: secured ? `${viewer.user} (${viewer.role})` : 'read-only viewer (no credentials configured)',
    };
  };

  const overviewModel = async () => ({
    overview: await dw.overview(),
    thresholds,
    reports: await readReconcileReports(dw.redis, dw.config.queuePrefix),
  });

  app.get('/', async (req, res) => {
    res.type('html').send(renderOverview(page(req, 'Overview', 'overview'), await overviewModel()));
  });
  app.get('/api/overview', async (_req, res) => {
    res.json(await overviewModel());
  });

  const letters = (target: unknown) =>
    dw.listDeadLetters(typeof target === 'string' && target ? { target } : {});

  app.get('/dead-letters', async (req, res) => {
    const target = typeof req.query.target === 'string' && req.query.target ? req.query.target : undefined;
    const done = typeof req.query.done === 'string' ? req.query.done : undefined;
    res.type('html').send(
      renderDeadLetters(page(req, 'Dead letters', 'dead-letters'), {
        letters: await letters(target),
        canOperate: req.dualwriteViewer!.role === 'operator',
        ...(target ? { target } : {}),
        ...(done ? { notice: { text: done } } : {}),
      }),
    );
  });
  app.get('/api/dead-letters', async (req, res) => {
    res.json(await letters(req.query.target));
  });

  const urlencoded = express.urlencoded({ extended: false, limit: '64kb' });
  const json = express.json({ limit: '64kb' });

  const replay = async (viewer: Viewer, ids: string[]) => {
    const found = await findLetters(dw, ids);
    const result = await dw.replayDeadLetters(found);
    log.info({ user: viewer.user, action: 'replay', letters: result.replayed, upserts: result.upserts, deletes: result.deletes }, 'dashboard: dead letters replayed');
    return { ...result, message: `Replayed ${result.replayed.length} dead letter(s) from the rows' current state: ${result.upserts} upsert(s), ${result.deletes} delete(s) sent through the version gate.` };
  };
  const discard = async (viewer: Viewer, ids: string[]) => {
    const found = await findLetters(dw, ids);
    for (const letter of found) await dw.deadLetters.remove(letter.id);
    log.info({ user: viewer.user, action: 'discard', letters: found.map((l) => l.id) }, 'dashboard: dead letters discarded');
    return { discarded: found.map((l) => l.id), message: `Discarded ${found.length} dead letter(s).` };
  };
  const actions = { replay, discard } as const;

  for (const [name, action] of Object.entries(actions)) {
    app.post(`/dead-letters/${name}`, urlencoded, async (req, res) => {
      try {
        const result = await action(req.dualwriteViewer!, idsOf(req.body));
        res.redirect(303, `../dead-letters?done=${encodeURIComponent(result.message)}`);
      } catch (error) {
        res.status(statusOf(error)).type('html').send(
          renderDeadLetters(page(req, 'Dead letters', 'dead-letters'), {
            letters: await letters(undefined),
            canOperate: true,
            notice: { text: `Nothing was ${name === 'replay' ? 'replayed' : 'discarded'}: ${messageOf(error)}`, error: true },
          }),
        );
      }
    });
    app.post(`/api/dead-letters/${name}`, json, async (req, res) => {
      try {
        res.json(await action(req.dualwriteViewer!, idsOf(req.body)));
      } catch (error) {
        res.status(statusOf(error)).json({ error: messageOf(error) });
      }
    });
  }

  // bull-board's retry of a dead letter is a REPLAY (never a re-run of the
  // old job), and its removal goes through the dead-letter queue (which waits
  // for a running handler).
  app.put(`${QUEUES_PATH}/api/queues/:queue/:job/:action`, async (req, res, next) => {
    const match = DEAD_QUEUE_JOB.exec(req.path.slice(QUEUES_PATH.length));
    const target = match ? deadQueueTarget(dw, match[1]) : undefined;
    if (!match || target === undefined) return next();
    const version = /^d-(\d+)$/.exec(decodeURIComponent(match[2]))?.[1];
    if (!version) return res.status(404).json({ error: `No dead letter with job id ${decodeURIComponent(match[2])}.` });
    const id = `${target}/${version}`;
    try {
      if (match[3] === 'retry') await replay(req.dualwriteViewer!, [id]);
      else await discard(req.dualwriteViewer!, [id]);
      res.status(match[3] === 'retry' ? 200 : 204).json({});
    } catch (error) {
      res.status(statusOf(error)).json({ error: messageOf(error), message: messageOf(error) });
    }
  });
  app.put(`${QUEUES_PATH}/api/queues/:queue/retry/:state`, async (req, res, next) => {
    const match = DEAD_QUEUE_ALL.exec(req.path.slice(QUEUES_PATH.length));
    const target = match ? deadQueueTarget(dw, match[1]) : undefined;
    if (!match || target === undefined) return next();
    try {
      const jobs = await dw.deadLetters.queue(target).getJobs([match[2] as 'completed' | 'failed'], 0, -1);
      const ids = jobs.filter((job) => job?.data).map((job) => `${target}/${job.data.change.version}`);
      if (ids.length) await replay(req.dualwriteViewer!, ids);
      res.status(200).json({});
    } catch (error) {
      res.status(statusOf(error)).json({ error: messageOf(error), message: messageOf(error) });
    }
  });
  app.use(QUEUES_PATH, (req, res, next) => {
    if (!READ_METHODS.has(req.method) && !OPERATOR_QUEUE_ACTIONS.some((re) => re.test(req.path))) {
      return deny(res, 403, `Forbidden: ${req.method} ${QUEUES_PATH}${req.path} is not allowed from the dashboard (it could forge or drop changes). Allowed: retry, promote, pause, resume, and cleaning out completed jobs; a dead letter is removed by discarding it.`);
    }
    const board = req.dualwriteViewer!.role === 'operator' ? boards.operator : boards.viewer;
    return board(req, res, next);
  });

  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ err: error }, 'dashboard: request failed');
    if (!res.headersSent) res.status(500).type('text').send(`Internal error: ${messageOf(error)}`);
  });

  const server = app.listen(options.port ?? 3000, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function deny(res: Response, status: 401 | 403, message: string): void {
  res.status(status).type('text').send(`${message}\n`);
}

/** The target of a dead-letter queue name (`<target>.dead`), if it is one of the config's targets. */
function deadQueueTarget(dw: DualWrite, queueName: string): string | undefined {
  const name = decodeURIComponent(queueName);
  if (!name.endsWith('.dead')) return undefined;
  const target = name.slice(0, -'.dead'.length);
  return dw.config.targets[target] ? target : undefined;
}

function idsOf(body: unknown): string[] {
  const raw = (body as { id?: unknown; ids?: unknown } | undefined) ?? {};
  const value = raw.ids ?? raw.id;
  const ids = (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string' && v.length > 0);
  if (ids.length === 0) throw new RequestError(400, 'No dead-letter id given (ids look like reporting/1234).');
  return ids;
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function findLetters(dw: DualWrite, ids: string[]): Promise<DeadLetter[]> {
  const found: DeadLetter[] = [];
  const unknown: string[] = [];
  for (const id of new Set(ids)) {
    const letter = await dw.deadLetters.get(id);
    if (letter) found.push(letter);
    else unknown.push(id);
  }
  if (unknown.length) {
    throw new RequestError(404, `No dead letter ${unknown.map((id) => `"${id}"`).join(', ')} (already replayed or discarded?).`);
  }
  return found;
}

function statusOf(error: unknown): number {
  if (error instanceof RequestError) return error.status;
  if (isDualWriteError(error)) return error.code === 'DEAD_LETTER_BUSY' ? 409 : 422;
  return 500;
}

function messageOf(error: unknown): string {
  return redactText(error instanceof Error ? error.message : String(error));
}

