// A worker thread's whole job: parse one large safetensors header (lib/io/safetensors-header.ts) and
// post back the result, or the error's message, so that the loading thread's event loop is not blocked.
import { parentPort, workerData } from 'worker_threads';
import { parseHeader } from './safetensors-header';

const { path, bytes, dataStart, fileSize } = workerData as { path: string; bytes: Uint8Array; dataStart: number; fileSize: number };
try {
  parentPort!.postMessage({ header: parseHeader(path, bytes, dataStart, fileSize) });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
