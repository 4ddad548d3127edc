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
 * On PostgreSQL it LISTENs for the notification every outbox INSERT sends at
 * commit; on both engines it also polls, as the safety net.
 */
export class RelayLoop {
  private timer?: NodeJS.Timeout;
  private listener?: PgClient;
  private stopped = false;

  constructor(
    private readonly primary: DataSource,
    private readonly dialect: Dialect,
    private readonly relay: Relay,
    private readonly logger: Logger,
    private readonly pollInterval: number,
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => this.relay.nudge(), this.pollInterval);
    this.timer.unref();
    if (this.dialect.outbox.channel) await this.listen(this.dialect.outbox.channel);
    this.relay.nudge();
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
