import fc from 'fast-check';
import { compareBinary } from '../../src/apply/change-applier';

const sign = (n: number) => Math.sign(n);

describe('compareBinary (the ledger key order)', () => {
  it('orders like the UTF-8 bytes, surrogate pairs and U+E000–U+FFFF included', () => {
    const samples = ['', 'a', 'A', 'ab', '10', '9', 'é', '\uffff', '\ue000', '😀', '😀a', 'a😀', '\ud7ff', '𐀀'];
    for (const a of samples) for (const b of samples) expect(sign(compareBinary(a, b))).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        expect(sign(compareBinary(a, b))).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))));
      }),
      { numRuns: 2000 },
    );
  });
});
