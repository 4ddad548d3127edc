import type { DataSource } from 'typeorm';
import type { Dialect } from '../dialect/dialect';
import type { Logger } from '../observability/logger';
import type { Relay } from './relay';

interface PgClient {
  query(sql: string): Promise<unknown>;
  on(event: 'notification' | 'error', listener: (...args: unknown[]) => void): void;
  removeAllListeners(event?: string): void;
  release(destroy?: boolean): void;
}

/**
 * The worker's relay loop: picks up whatever an application process left in
 * the outbox (it crashed before its own relay ran, or Redis was down then).
 * On PostgreSQL it LISTENs for the notification outbox INSERTs send at
 * commit (those of processes that do not relay their own commits); on both
 * engines it also polls, as the safety net.
 */
export class RelayLoop {
  private timer?: NodeJS.Timeout;
  private listener?: PgClient;
  private stopped = false;
  /** The newest outbox sequence at the previous poll. */
  private seen?: string;

  constructor(
    private readonly primary: DataSource,
    private readonly dialect: Dialect,
    private readonly relay: Relay,
    private readonly logger: Logger,
    private readonly pollInterval: number,
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.poll(), this.pollInterval);
    this.timer.unref();
    if (this.dialect.outbox.channel) await this.listen(this.dialect.outbox.channel);
    this.relay.nudge();
  }

  /**
   * Relays what was already in the outbox at the previous poll: rows a
   * process relays itself (`relay.afterCommit`) are gone by then, unless it
   * died first. The first pass at start relays everything.
   */
  private async poll(): Promise<void> {
    let newest: string | undefined;
    try {
      newest = await this.relay.newestSeq();
    } catch (error) {
      this.logger.warn({ err: error }, 'relay loop cannot read the outbox; it tries again at the next poll');
      return;
    }
    if (this.seen !== undefined) this.relay.nudgeUpTo(this.seen);
    this.seen = newest;
  }

  private async listen(channel: string): Promise<void> {
    const pool = (this.primary.driver as unknown as { master?: { connect(): Promise<PgClient> } }).master;
    if (!pool) return;
    try {
      const client = await pool.connect();
      client.on('notification', () => this.relay.nudge());
      client.on('error', (error) => this.relisten(channel, client, error));
      await client.query(`LISTEN ${channel}`);
      this.listener = client;
    } catch (error) {
      this.logger.warn({ err: error }, 'relay loop cannot LISTEN; polling only until it can');
      if (!this.stopped) setTimeout(() => void this.listen(channel), this.pollInterval).unref();
    }
  }

  private relisten(channel: string, client: PgClient, error: unknown): void {
    this.logger.warn({ err: error }, 'relay loop lost its LISTEN connection; reconnecting');
    client.removeAllListeners();
    client.release(true);
    if (this.listener === client) this.listener = undefined;
    if (!this.stopped) setTimeout(() => void this.listen(channel), this.pollInterval).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const client = this.listener;
    this.listener = undefined;
    if (client) {
      client.removeAllListeners();
      await client.query('UNLISTEN *').catch(() => undefined);
      client.release();
    }
  }
}
