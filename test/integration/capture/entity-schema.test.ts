import { EntitySchema } from 'typeorm';
import { DualWrite, replicate } from '../../../src';
import { CaptureSubscriber } from '../../../src/capture/capture-subscriber';
import { ENGINES, type Engine } from '../../support/databases';
import { primaryFixture, type PrimaryFixture } from '../../support/harness';
import { queuedChanges } from '../../support/queued';

interface Product {
  id?: number;
  sku: string;
  price: string;
  secret?: string | null;
}

/** Entities without classes: `replicate()` is how their users mark them. */
const ProductSchema = new EntitySchema<Product>({
  name: 'Product',
  tableName: 'product',
  columns: {
    id: { type: 'int', primary: true, generated: 'increment' },
    sku: { type: 'varchar', length: 32 },
    price: { type: 'decimal', precision: 10, scale: 2 },
    secret: { type: 'varchar', length: 64, nullable: true, name: 'secret_code' },
  },
});

const TagSchema = new EntitySchema<{ name: string; color: string }>({
  name: 'Tag',
  columns: { name: { type: 'varchar', length: 32, primary: true }, color: { type: 'varchar', length: 16 } },
});

const DraftSchema = new EntitySchema<{ id?: number; body: string }>({
  name: 'Draft',
  columns: { id: { type: 'int', primary: true, generated: 'increment' }, body: { type: 'varchar', length: 64 } },
});

replicate(ProductSchema, { to: ['reporting'], notReplicated: ['secret'] });
replicate('Tag', { to: ['reporting'] });

describe.each(ENGINES)('EntitySchema entities marked with replicate() on a %s primary', (engine: Engine) => {
  let fx: PrimaryFixture;
  let dw: DualWrite;

  beforeEach(async () => {
    fx = await primaryFixture(engine, [ProductSchema, TagSchema, DraftSchema], ['reporting']);
    dw = await DualWrite.start(fx.config());
  });

  afterEach(async () => {
    await dw.close();
    await fx.cleanup();
  });

  async function published() {
    await dw.flush();
    return queuedChanges(fx.prefix, 'reporting');
  }

  it('captures save(), update and remove() of a schema given to replicate(), without its notReplicated column', async () => {
    expect([...dw.entities.keys()].sort()).toEqual(['Product', 'Tag']);
    const products = fx.primary.getRepository<Product>('Product');
    const saved = await products.save({ sku: 'AB-1', price: '9.90', secret: 'hidden' });
    await products.save({ ...saved, price: '11.00' });
    await products.remove({ ...saved });
    const changes = await published();
    expect(changes.map((c) => [c.entity, c.op, c.key])).toEqual([
      ['Product', 'upsert', [String(saved.id)]],
      ['Product', 'upsert', [String(saved.id)]],
      ['Product', 'delete', [String(saved.id)]],
    ]);
    expect(changes[0].row).toEqual({ id: saved.id, sku: 'AB-1', price: '9.90' });
    expect(changes[1].row).toEqual({ id: saved.id, sku: 'AB-1', price: '11.00' });
    expect(JSON.stringify(changes)).not.toContain('hidden');
  });

  it('captures an entity named in replicate(), and nothing of a schema that is not replicated', async () => {
    await fx.primary.getRepository('Draft').save({ body: 'not for the targets' });
    await fx.primary.getRepository('Tag').save([{ name: 'red', color: '#f00' }, { name: 'blue', color: '#00f' }]);
    const changes = await published();
    // Entity events narrowed to the replicated schemas (their targets are names, not classes).
    expect((fx.primary.subscribers.find((s) => s instanceof CaptureSubscriber) as CaptureSubscriber).listenTo).toBeDefined();
    expect(changes.map((c) => [c.entity, c.op, c.key, c.row])).toEqual([
      ['Tag', 'upsert', ['red'], { name: 'red', color: '#f00' }],
      ['Tag', 'upsert', ['blue'], { name: 'blue', color: '#00f' }],
    ]);
  });
});
