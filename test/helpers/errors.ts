// Errors thrown by the addon are made in Node's own realm, not jest's sandbox, so `instanceof Error`
// is false for them there; util.types.isNativeError tells real Error objects of any realm.
import { types } from 'util';

/** Runs fn, expects it to throw a real Error (of any realm) and returns it. */
export function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    if (!types.isNativeError(e)) throw new Error(`expected an Error to be thrown, got ${String(e)}`);
    return e as Error;
  }
  throw new Error('expected an Error to be thrown, but nothing was thrown');
}

/** The thrown Error's message, checked to carry no C++ backtrace. */
export function errorMessage(fn: () => unknown): string {
  const msg = catchError(fn).message;
  expect(msg).not.toContain('Exception raised from');
  expect(msg).not.toMatch(/frame #\d+/);
  return msg;
}

/** Awaits fn, expects it to throw or reject with a real Error (of any realm) and returns it. */
export async function failure(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (!types.isNativeError(e)) throw new Error(`expected an Error, got ${String(e)}`);
    return e as Error;
  }
  throw new Error('expected a failure, but it succeeded');
}
