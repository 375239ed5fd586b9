// PEFT's warnings.warn(): a message on stderr through Node's warning channel (silenceable with
// --no-warnings or process.removeAllListeners('warning')).
export function peftWarn(message: string): void {
  process.emitWarning(message, { type: 'PeftWarning' });
}
