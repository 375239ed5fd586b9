// Arguments PyTorch refuses are errors here too, not silent coercions: a NaN or a fraction where an int
// is taken (N-API's conversion made NaN 0 and 1.5 1), integers that do not fit the dtype (a typed array
// wrapped 2**70 to 0), and a mask that is not bool (libtorch 1.13 filled nothing for a float mask).
// Messages as in PyTorch 2.x (checked with torch 2.13).
import { dispose, empty, full, memory, tensor, zeros } from '../lib';
import { errorMessage } from './helpers/errors';

describe('ints where PyTorch takes ints', () => {
  test.each([
    ['empty([NaN])', () => empty([NaN]), /argument 0\[0\] must be an integer, got nan/],
    ['empty([1.5])', () => empty([1.5]), /argument 0\[0\] must be an integer, got 1\.5/],
    ['zeros([2, Infinity])', () => zeros([2, Infinity]), /argument 0\[1\] must be an integer, got inf/],
    ['empty([2**64])', () => empty([2 ** 64]), /argument 0\[0\] = 1\.8\d+e\+19 does not fit in int64/],
  ])('%s', (_what, fn, why) => {
    const before = memory().tensors;
    expect(errorMessage(fn)).toMatch(why);
    expect(memory().tensors).toBe(before);
  });

  test('select(0, NaN), narrow(0, 1.7, 2) and a fractional dim are refused; integral numbers still work', () => {
    const t = zeros([4, 3]);
    expect(errorMessage(() => t.select(0, NaN))).toMatch(/select: argument 2 must be an integer, got nan/);
    expect(errorMessage(() => t.narrow(0, 1.7, 2))).toMatch(/narrow: argument 2 must be an integer, got 1\.7/);
    expect(errorMessage(() => t.sum(0.5))).toMatch(/must be an integer, got 0\.5/);
    const s = t.select(0, 3);
    const n = t.narrow(0, 1, 2);
    const e = empty([2, 3.0]);
    expect([s.shape, n.shape, e.shape]).toEqual([[3], [2, 3], [2, 3]]);
    dispose([t, s, n, e]);
  });
});

describe('tensor() data that does not fit the dtype', () => {
  test.each([
    [[2 ** 70], 'int64', /value 1\.1805916207174113e\+21 at data\[0\] cannot be converted to type int64 without overflow/],
    [[1, 2 ** 63], 'int64', /at data\[1\] cannot be converted to type int64/],
    [[NaN], 'int64', /value NaN at data\[0\] cannot be converted to type int64/],
    [[[1], [2n ** 63n]], 'int64', /value 9223372036854775808 at data\[1\]\[0\] cannot be converted to type int64/],
    [[2 ** 40], 'int32', /cannot be converted to type int32 without overflow/],
    [[128], 'int8', /cannot be converted to type int8/],
    [[255.9], 'uint8', /cannot be converted to type uint8/],
    [[-256], 'uint8', /cannot be converted to type uint8/],
  ] as const)('%j as %s', (data, dtype, why) => {
    expect(errorMessage(() => tensor(data as never, { dtype }))).toMatch(why);
  });

  test('what fits is kept exactly; fractions truncate toward zero and uint8 wraps -255..-1, as torch.tensor', () => {
    const a = tensor([-(2n ** 63n), 2n ** 63n - 1n, 2 ** 53, -1.7] as never, { dtype: 'int64' });
    expect(a.tolist()).toEqual([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n, -1n].map(Number));
    const b = tensor([-1, 255, 1.9], { dtype: 'uint8' });
    expect(b.tolist()).toEqual([255, 255, 1]);
    const c = tensor([-(2 ** 31), 2 ** 31 - 1], { dtype: 'int32' });
    expect(c.tolist()).toEqual([-(2 ** 31), 2 ** 31 - 1]);
    dispose([a, b, c]);
  });
});

describe('masks must be bool', () => {
  test('maskedFill, maskedFill_ and maskedSelect refuse a float or uint8 mask; a bool mask works', () => {
    const x = zeros([2]);
    const fmask = tensor([1, 0]);
    const umask = tensor([1, 0], { dtype: 'uint8' });
    const bmask = fmask.ne(0);
    for (const m of [fmask, umask]) {
      expect(errorMessage(() => x.maskedFill(m, 3))).toMatch(/masked_fill only supports boolean masks, but got mask with dtype (Float|Byte)/);
      expect(errorMessage(() => x.maskedFill_(m, 3))).toMatch(/masked_fill_ only supports boolean masks/);
      expect(errorMessage(() => x.maskedSelect(m))).toMatch(/masked_select only supports boolean masks/);
    }
    expect(x.tolist()).toEqual([0, 0]);
    const v = full([], 5);
    const filled = x.maskedFill(bmask, 3);
    const filledT = x.maskedFill(bmask, v);
    expect([filled.tolist(), filledT.tolist()]).toEqual([[3, 0], [5, 0]]);
    dispose([x, fmask, umask, bmask, v, filled, filledT]);
  });
});
