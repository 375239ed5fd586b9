#!/usr/bin/env node
// tsc writes dist/ without the executable bit, and npm links no bin of the package it is run in, so
// `npx torch-lora` in a fresh checkout would find dist/lib/cli/main.js but could not run it: the files
// package.json names under "bin" are made executable after every TypeScript build.
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const { bin } = require(path.join(root, 'package.json'));
for (const file of Object.values(typeof bin === 'string' ? { bin } : bin ?? {})) {
  const p = path.join(root, file);
  if (!fs.existsSync(p)) {
    console.error(`make-bins-executable: ${file} (package.json "bin") does not exist; did tsc run?`);
    process.exit(1);
  }
  fs.chmodSync(p, fs.statSync(p).mode | 0o111);
}
