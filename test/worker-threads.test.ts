// The addon in worker threads: loading it and terminating the worker, or terminating a worker in the
// middle of tensor ops, must never abort the process (each worker has its own tensor table; nothing is
// thrown out of module registration or N-API callbacks while an environment is torn down). Each check
// runs in a process of its own (helpers/worker-threads-child.ts): an abort would kill the test runner.
import * as path from 'path';
import { tsProcess } from './helpers/ts-process';

const CHILD = path.join(__dirname, 'helpers', 'worker-threads-child.ts');

describe('worker threads', () => {
  test('a worker that loads the addon and is terminated (while loading it, or just after), 12 times', () => {
    const r = tsProcess(CHILD, ['load', '12']);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    expect(r.out).toBe('load 12 ok\n');
  });

  test('a worker terminated while it runs tensor ops, 12 times (it aborted about one run in ten)', () => {
    const r = tsProcess(CHILD, ['ops', '12']);
    expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
    expect(r.out).toBe('ops 12 ok\n');
  });
});
