#!/usr/bin/env node
// npm install: keep an addon that is already built, else build it with cmake-js against libtorch.
// npm hides an install script's output (it shows it only when the script fails, or with
// --foreground-scripts), and the build takes minutes: so what the build is doing also goes straight to
// the terminal (/dev/tty) when there is one, as a few lines: which libtorch, then the progress.
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.join(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'torch_lora.node');
if (fs.existsSync(built) && !process.env.TORCH_LORA_REBUILD) {
  console.log(`torch-lora: using the addon already built at ${path.relative(process.cwd(), built) || built}`);
  process.exit(0);
}

/** The user's terminal, written to directly (npm pipes our stdout), or undefined (CI, no terminal). */
function openTerminal() {
  if (process.platform === 'win32' || process.env.TORCH_LORA_QUIET) return undefined;
  try {
    return fs.openSync('/dev/tty', 'w');
  } catch {
    return undefined;
  }
}
const tty = openTerminal();
const say = (line) => {
  process.stdout.write(`${line}\n`);
  if (tty !== undefined) {
    try {
      fs.writeSync(tty, `${line}\n`);
    } catch {
      /* the terminal went away: stdout still has it */
    }
  }
};

say('torch-lora: compiling the native addon against libtorch (a few minutes; the full log goes to build/install.log)');
// Kept in memory and written at the end: cmake-js may delete and recreate build/ as it configures.
const log = [];
const logFile = path.join(root, 'build', 'install.log');
const started = Date.now();
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const child = spawn(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });

// Lines worth showing as they come: our CMake status lines, errors, and ninja/make progress (at most
// one line per ~10% so that a terminal is not flooded).
let lastShown = -1;
function onLine(line) {
  const m = /^\[(\d+)\/(\d+)\]/.exec(line) ?? /^\[\s*(\d+)%\]/.exec(line);
  if (m) {
    const pct = m[2] !== undefined ? Math.floor((100 * Number(m[1])) / Number(m[2])) : Number(m[1]);
    if (pct >= lastShown + 10 || pct === 100) {
      lastShown = pct;
      const secs = Math.round((Date.now() - started) / 1000);
      say(`torch-lora: compiling ${pct}% (${secs} s)`);
    }
  } else if (/torch-lora:|error|Error|FATAL/.test(line)) {
    say(line.replace(/^-- /, ''));
  }
}
for (const stream of [child.stdout, child.stderr]) {
  let rest = '';
  stream.on('data', (chunk) => {
    log.push(chunk);
    const lines = (rest + chunk.toString()).split(/\r?\n/);
    rest = lines.pop();
    for (const l of lines) onLine(l);
  });
  stream.on('end', () => rest && onLine(rest));
}
child.on('close', (code) => {
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.writeFileSync(logFile, Buffer.concat(log));
  finish(code);
});
function finish(code) {
  if (code === 0) {
    say(`torch-lora: the native addon is built (${Math.round((Date.now() - started) / 1000)} s)`);
    return;
  }
  // npm shows a failed script's output: the end of the log says why.
  const tail = Buffer.concat(log).toString().split('\n').slice(-40).join('\n');
  console.error(tail);
  console.error(
    'torch-lora: building the native addon failed (the log: build/install.log). It needs cmake, a C++17 compiler and libtorch:\n' +
      '  - set LIBTORCH (an unpacked libtorch) or Torch_DIR, or\n' +
      '  - install PyTorch for python3, or\n' +
      '  - on Debian/Ubuntu: apt-get install libtorch-dev\n' +
      'then run `npm rebuild torch-lora` (or `npm run build:native` in this package).',
  );
  process.exitCode = code || 1;
}
