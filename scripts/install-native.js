#!/usr/bin/env node
// npm install: keep an addon that is already built, else build it with cmake-js against libtorch.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const fs = require('fs');

const root = path.join(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'torch_lora.node');
if (fs.existsSync(built) && !process.env.TORCH_LORA_REBUILD) {
  console.log(`torch-lora: using the addon already built at ${path.relative(process.cwd(), built) || built}`);
  process.exit(0);
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const r = spawnSync(process.execPath, [cmakeJs, 'compile'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    'torch-lora: building the native addon failed. It needs cmake, a C++17 compiler and libtorch:\n' +
      '  - set LIBTORCH (an unpacked libtorch) or Torch_DIR, or\n' +
      '  - install PyTorch for python3, or\n' +
      '  - on Debian/Ubuntu: apt-get install libtorch-dev\n' +
      'then run `npm rebuild torch-lora` (or `npm run build:native` in this package).',
  );
  process.exit(r.status || 1);
}
