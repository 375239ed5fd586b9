// Views, joins, splits and indexing against test/fixtures/torch-reference/math.safetensors, and the
// view semantics (shared memory) PyTorch has.
import * as torch from '../lib';
import { scope, Tensor } from '../lib';
import { errorMessage } from './helpers/errors';
import { expectClose, loadReference } from './helpers/reference';

const { ref, dispose } = loadReference('math');
afterAll(dispose);

describe('against PyTorch', () => {
  const cases: [string, (r: Record<string, Tensor>) => Tensor][] = [
    ['view.6_4', ({ s }) => s.view(6, 4)],
    ['view.-1', ({ s }) => s.view(-1)],
    ['reshape.permuted', ({ s }) => s.permute(2, 0, 1).reshape([4, 6])],
    ['permute.2_0_1', ({ s }) => s.permute([2, 0, 1]).contiguous()],
    ['transpose.0_2', ({ s }) => s.transpose(0, 2).contiguous()],
    ['expand.2_3_4', ({ e }) => e.expand(2, 3, 4).contiguous()],
    ['expand.-1', ({ e }) => e.expand([2, -1, 4]).contiguous()],
    ['cat.1', ({ s, t }) => torch.cat([s, t], 1)],
    ['cat.-1', ({ s, t }) => torch.cat([s, t, s], -1)],
    ['stack.0', ({ s, t }) => torch.stack([s, t])],
    ['stack.2', ({ s, t }) => torch.stack([s, t], 2)],
    ['split.2_dim2.0', ({ s }) => s.split(2, 2)[0]],
    ['split.2_dim2.1', ({ s }) => s.split(2, 2)[1]],
    ['split.3_dim2.1', ({ s }) => s.split(3, 2)[1]],
    ['split.sizes_1_2.1', ({ s }) => s.split([1, 2], 1)[1]],
    ['chunk.3_dim2.0', ({ s }) => s.chunk(3, 2)[0]],
    ['chunk.3_dim2.1', ({ s }) => s.chunk(3, 2)[1]],
    ['narrow.2_1_2', ({ s }) => s.narrow(2, 1, 2)],
    ['indexSelect.1', ({ s, idx }) => s.indexSelect(1, idx)],
    ['gather.2', ({ s, gidx }) => s.gather(2, gidx)],
    ['maskedFill', ({ s, mask }) => s.maskedFill(mask, -1.5)],
    ['where', ({ s, t, mask }) => torch.where(mask, s, t)],
    ['tril', ({ s }) => s.tril()],
    ['triu.1', ({ s }) => s.triu(1)],
    ['tril.-1', ({ s }) => s.tril(-1)],
    ['squeeze.unsqueeze', ({ e }) => e.squeeze()],
    ['flatten.1', ({ s }) => s.flatten(1)],
    ['T', ({ s }) => s.select(0, 0).T.contiguous()],
  ];
  test.each(cases)('%s', (key, f) =>
    scope(() => {
      const r = Object.fromEntries(['s', 't', 'e', 'idx', 'gidx', 'mask'].map((n) => [n, ref(`in.${n}`)]));
      expectClose(f(r), ref(`shape.${key}`));
    }),
  );

  test('split/chunk piece counts and sizes', () =>
    scope(() => {
      const s = ref('in.s');
      expect(s.split(3, 2).map((p) => p.shape)).toEqual([[2, 3, 3], [2, 3, 1]]);
      expect(s.chunk(3, 2).map((p) => p.shape)).toEqual([[2, 3, 2], [2, 3, 2]]);
      expect(s.split([1, 2], 1).map((p) => p.shape)).toEqual([[2, 1, 4], [2, 2, 4]]);
      expect(s.unbind(1).length).toBe(3);
    }));
});

describe('views share memory; contiguous() and reshape() copy only when they must', () => {
  test('view, transpose, permute, expand, narrow are views', () =>
    scope(() => {
      const x = torch.arange(6, { dtype: 'float32' });
      const v = x.view(2, 3);
      const t = v.transpose(0, 1);
      const n = v.narrow(1, 1, 2);
      v.select(0, 0).fill_(9);
      expect(t.tolist()).toEqual([[9, 3], [9, 4], [9, 5]]);
      expect(n.tolist()).toEqual([[9, 9], [4, 5]]);
      expect(t.isContiguous()).toBe(false);
      const c = t.contiguous();
      expect(c.isContiguous()).toBe(true);
      c.fill_(0);
      expect(x.tolist()).toEqual([9, 9, 9, 3, 4, 5]);
      const e = torch.tensor([[1], [2]]).expand(2, 3);
      expect(e.stride()).toEqual([1, 0]);
      expect(e.tolist()).toEqual([[1, 1, 1], [2, 2, 2]]);
    }));

  test('view of a non-contiguous tensor fails with a hint; reshape copies', () =>
    scope(() => {
      const t = torch.arange(6).view(2, 3).t();
      expect(errorMessage(() => t.view(6))).toMatch(/view size is not compatible|reshape/);
      expect(t.reshape(6).tolist()).toEqual([0, 3, 1, 4, 2, 5]);
    }));
});
