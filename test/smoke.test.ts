import * as torch from '../lib';

test('the addon loads and reports its libtorch', () => {
  expect(torch.torchVersion).toMatch(/^\d+\.\d+/);
});
