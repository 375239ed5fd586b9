// Model, tokenizer and adapter folders are read from the local disk only: torch-lora never downloads.
// A Hugging Face Hub id given where a folder is expected ("meta-llama/Llama-3.2-1B") gets an error that
// says so and how to download it, instead of "folder does not exist".
import * as fs from 'fs';

/** 'name' or 'owner/name' as the Hub spells repo ids (letters, digits, '-', '_', '.'; no path syntax). */
const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Whether `p` looks like a Hub repo id rather than a path (and is no existing file or folder). */
export function looksLikeHubId(p: string): boolean {
  return HUB_ID.test(p) && !p.includes('..') && !fs.existsSync(p);
}

/** The error for a Hub id given where a local folder is read, with the command that downloads it. */
export function hubIdError(id: string, what: string): Error {
  const local = `./${id.split('/').pop()}`;
  return new Error(
    `${what} '${id}' is not a local folder: torch-lora reads only local folders and does not download from the Hugging Face Hub. ` +
      `Download it first with \`hf download ${id} --local-dir ${local}\` (or \`huggingface-cli download ${id} --local-dir ${local}\`), then pass '${local}'.`,
  );
}

/** Throws unless `dir` is an existing folder: a Hub id gets hubIdError, anything else "does not exist". */
export function requireLocalFolder(dir: string, what: string): void {
  if (fs.existsSync(dir) && fs.statSync(dir).isDirectory()) return;
  if (looksLikeHubId(dir)) throw hubIdError(dir, what);
  if (fs.existsSync(dir)) throw new Error(`${what} '${dir}' is a file, not a folder`);
  throw new Error(`${what} '${dir}' does not exist`);
}
