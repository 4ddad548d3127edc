import { seededRandom } from '../../support/seeded-random';

/** Random values for every column of the DESIGN type matrix (`matrixEntities`), valid on both engines. */
export function randomMatrixRows(seed: number, count: number): Array<Record<string, unknown>> {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const maybe = <T>(value: () => T, nullRate = 0.1): T | null => (random() < nullRate ? null : value());
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];

  const ALPHABETS = ['abcXYZ 019', `'"%_\\\`;,`, 'ünïcödé ÀÉÎ ß', '中文字符 日本語', '🚀🎉👍🏽', '\t\n', 'Ωμέγα', 'ñ'].map((a) => [...a]);
  const text = (max: number) => {
    const chars: string[] = [];
    for (let length = int(max + 1); chars.length < length; ) chars.push(pick(pick(ALPHABETS)));
    return chars.join('');
  };
  const double = (): number => {
    switch (int(8)) {
      case 0:
        return 0;
      case 1:
        return int(2 ** 31) - 2 ** 30; // whole numbers
      case 2:
        return (random() - 0.5) * 10 ** (int(600) - 300); // any magnitude
      case 3:
        return pick([0.1, 0.2, 0.3, 1 / 3, 2 / 3, Math.PI, Math.E, 1e15 + 0.3, 123456.78901234567, 1e29, 9.999999999999999e29, 1e30]);
      default:
        return (random() - 0.5) * 10 ** (int(20) - 10);
    }
  };
  const json = (depth: number): unknown => {
    const roll = int(depth > 2 ? 4 : 7);
    switch (roll) {
      case 0:
        return null;
      case 1:
        return random() < 0.5;
      case 2:
        return random() < 0.5 ? int(1e9) - 5e8 : Number(((random() - 0.5) * 1e6).toFixed(int(7)));
      case 3:
        return text(12);
      case 4:
      case 5: {
        const out: Record<string, unknown> = {};
        for (let i = int(5); i > 0; i--) out[text(6) || 'k'] = json(depth + 1);
        return out;
      }
      default:
        return Array.from({ length: int(5) }, () => json(depth + 1));
    }
  };
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const hex8 = () => int(2 ** 32).toString(16).padStart(8, '0');

  // Strings and documents come from pools: random generation per row would dominate the test's time.
  const labels = Array.from({ length: 4000 }, () => text(120));
  const bodies = Array.from({ length: 2000 }, () => text(400));
  const docs = Array.from({ length: 2000 }, () => json(0));
  const tagLists = Array.from({ length: 500 }, () => Array.from({ length: 1 + int(3) }, () => text(8).replace(/,/g, ';') || 't'));

  return Array.from({ length: count }, () => ({
    big: maybe(() => (BigInt(int(2 ** 31)) * BigInt(int(2 ** 31)) * (random() < 0.5 ? -1n : 1n) + BigInt(int(1000))).toString()),
    amount: maybe(() => `${random() < 0.3 ? '-' : ''}${int(1e10)}.${pad(int(10_000), 4)}`),
    ratio: maybe(double),
    label: maybe(() => pick(labels)),
    body: maybe(() => pick(bodies), 0.2),
    flag: maybe(() => random() < 0.5),
    day: maybe(() => `${1000 + int(9000)}-${pad(1 + int(12))}-${pad(1 + int(28))}`),
    at: maybe(() => `${pad(int(24))}:${pad(int(60))}:${pad(int(60))}`),
    localTime: maybe(() => new Date(Date.UTC(1900, 0, 1) + int(200 * 365.25 * 86400) * 1000 + int(1000))),
    instant: maybe(() => new Date(Date.UTC(1971, 0, 1) + int(66 * 365 * 86400) * 1000 + int(1000))),
    doc: maybe(() => pick(docs)),
    settings: maybe(() => ({ a: int(1e6) })),
    ref: maybe(() => {
      const [a, b, c, d] = [hex8(), hex8(), hex8(), hex8()];
      const uuid = `${a}-${b.slice(0, 4)}-4${b.slice(5)}-a${c.slice(0, 3)}-${c.slice(3)}${d}`.slice(0, 36);
      return random() < 0.3 ? uuid.toUpperCase() : uuid;
    }),
    mood: maybe(() => pick(['happy', 'sad'])),
    tags: maybe(() => pick(tagLists)),
  }));
}
