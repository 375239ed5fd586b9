// Autograd semantics: requiresGrad, backward (scalar and with a gradient), .grad accumulation,
// detach, retainGrad, noGrad, gradFn, retainGraph and createGraph.
import * as torch from '../lib';
import { noGrad, scope } from '../lib';
import { errorMessage } from './helpers/errors';
import { values } from './helpers/reference';

describe('requiresGrad and leaves', () => {
  test('requiresGrad get/set, requiresGrad_(), isLeaf, and propagation to results', () =>
    scope(() => {
      const x = torch.tensor([1, 2, 3]);
      expect(x.requiresGrad).toBe(false);
      expect(x.requiresGrad_()).toBe(x);
      expect(x.requiresGrad).toBe(true);
      const y = x.mul(2);
      expect(y.requiresGrad).toBe(true);
      expect([x.isLeaf, y.isLeaf]).toEqual([true, false]);
      const z = torch.ones([3]);
      z.requiresGrad = true;
      expect(z.requiresGrad).toBe(true);
      z.requiresGrad = false;
      expect(z.add(1).requiresGrad).toBe(false);
    }));

  test('gradFn names the node that made a tensor; null for leaves and under noGrad', () =>
    scope(() => {
      const a = torch.randn([2, 3], { requiresGrad: true });
      const b = torch.randn([3, 2], { requiresGrad: true });
      expect(a.gradFn).toBeNull();
      expect(a.add(a).gradFn).toBe('AddBackward0');
      expect(a.add(1).gradFn).toMatch(/^AddBackward\d$/); // the Scalar overload's node is AddBackward1
      expect(a.mul(a).gradFn).toBe('MulBackward0');
      expect(a.mm(b).gradFn).toBe('MmBackward0');
      expect(a.sum().gradFn).toBe('SumBackward0');
      expect(noGrad(() => a.add(1)).gradFn).toBeNull();
    }));
});

describe('backward', () => {
  test('from a scalar: d/dx sum(x²) = 2x', () =>
    scope(() => {
      const x = torch.tensor([1, -2, 3], { dtype: 'float64', requiresGrad: true });
      x.mul(x).sum().backward();
      expect(x.grad!.tolist()).toEqual([2, -4, 6]);
    }));

  test('from a non-scalar with a gradient: the vector-Jacobian product', () =>
    scope(() => {
      const x = torch.tensor([[1, 2], [3, 4]], { requiresGrad: true });
      const y = x.mul(3).add(1);
      y.backward(torch.tensor([[1, 0.5], [-1, 2]]));
      expect(x.grad!.tolist()).toEqual([[3, 1.5], [-3, 6]]);
    }));

  test('.grad accumulates across backward calls until reset', () =>
    scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      x.mul(2).sum().backward();
      x.mul(3).sum().backward();
      expect(x.grad!.tolist()).toEqual([5, 5]);
      x.grad!.zero_();
      x.sum().backward();
      expect(x.grad!.tolist()).toEqual([1, 1]);
      x.grad = undefined;
      expect(x.grad).toBeUndefined();
      x.mul(4).sum().backward();
      expect(x.grad!.tolist()).toEqual([4, 4]);
      // setting .grad to a tensor
      x.grad = torch.tensor([10, 20]);
      x.sum().backward();
      expect(x.grad!.tolist()).toEqual([11, 21]);
    }));

  test('a leaf without requiresGrad gets no .grad; gradients flow only to tensors that require them', () =>
    scope(() => {
      const w = torch.tensor([2, 3], { requiresGrad: true });
      const c = torch.tensor([5, 7]);
      w.mul(c).sum().backward();
      expect(w.grad!.tolist()).toEqual([5, 7]);
      expect(c.grad).toBeUndefined();
    }));

  test('retainGraph allows a second backward through the same graph; without it it is an error', () =>
    scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      const y = x.exp().sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      expectArrayClose(values(x.grad!), [2 * Math.exp(1), 2 * Math.exp(2)], 1e-5);
      const z = x.exp().sum();
      z.backward();
      expect(errorMessage(() => z.backward())).toMatch(/backward through the graph a second time/);
    }));

  test('createGraph gives a gradient that is itself differentiable (d²/dx² x³ = 6x)', () =>
    scope(() => {
      const x = torch.tensor([1, 2, -1], { dtype: 'float64', requiresGrad: true });
      x.pow(3).sum().backward(undefined, { createGraph: true });
      const g = x.grad!;
      expect(g.requiresGrad).toBe(true);
      expect(g.tolist()).toEqual([3, 12, 3]);
      x.grad = undefined;
      g.sum().backward();
      expect(x.grad!.tolist()).toEqual([6, 12, -6]);
      x.grad = undefined; // breaks the x -> grad -> graph -> x cycle
    }));
});

describe('detach, retainGrad, noGrad', () => {
  test('detach() shares memory and leaves the graph', () =>
    scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      const d = x.detach();
      expect(d.requiresGrad).toBe(false);
      expect(d.gradFn).toBeNull();
      d.fill_(7); // the same storage: x sees it
      expect(x.tolist()).toEqual([7, 7]);
      const y = x.mul(d).sum(); // d is a constant to autograd
      y.backward();
      expect(x.grad!.tolist()).toEqual([7, 7]);
    }));

  test('retainGrad() keeps the gradient of a non-leaf', () =>
    scope(() => {
      const x = torch.tensor([1, 2, 3], { requiresGrad: true });
      const h = x.mul(2);
      expect(h.retainGrad()).toBe(h);
      h.square().sum().backward();
      expect(h.grad!.tolist()).toEqual([4, 8, 12]); // 2h
      expect(x.grad!.tolist()).toEqual([8, 16, 24]); // 2h·2
    }));

  test('noGrad: no graph inside, the mode comes back after (also after a throw); enableGrad nests', () =>
    scope(() => {
      const x = torch.ones([2], { requiresGrad: true });
      expect(torch.isGradEnabled()).toBe(true);
      const y = noGrad(() => {
        expect(torch.isGradEnabled()).toBe(false);
        const inner = torch.enableGrad(() => x.mul(2));
        expect(inner.requiresGrad).toBe(true);
        return x.mul(2);
      });
      expect(y.requiresGrad).toBe(false);
      expect(torch.isGradEnabled()).toBe(true);
      expect(() =>
        noGrad(() => {
          throw new Error('inside');
        }),
      ).toThrow('inside');
      expect(torch.isGradEnabled()).toBe(true);
    }));

  test('in-place updates of leaves that require grad: an error with grad on, allowed under noGrad (SGD)', () =>
    scope(() => {
      const w = torch.tensor([1, 2], { requiresGrad: true });
      expect(errorMessage(() => w.add_(1))).toMatch(/leaf Variable that requires grad.*in-place/);
      w.mul(w).sum().backward();
      noGrad(() => w.sub_(w.grad!, 0.25));
      expect(w.tolist()).toEqual([0.5, 1]);
      expect(w.requiresGrad).toBe(true);
      expect(w.isLeaf).toBe(true);
    }));
});

function expectArrayClose(a: number[], e: number[], tol: number): void {
  expect(a.length).toBe(e.length);
  a.forEach((v, i) => expect(Math.abs(v - e[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(e[i]))));
}
