#!/usr/bin/env bash
# The long fuzz run: bash scripts/fuzz-long.sh [seconds per target] [first seed]. TypeScript is transpiled
# as it is required (as test/helpers/ts-process.ts does), so no build of dist/ is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
reg="$(mktemp -d)/register.js"
trap 'rm -rf "$(dirname "$reg")"' EXIT
cat > "$reg" <<JS
const ts=require('$(pwd)/node_modules/typescript'),fs=require('fs');
require.extensions['.ts']=(m,f)=>m._compile(ts.transpileModule(fs.readFileSync(f,'utf8'),{fileName:f,compilerOptions:{module:ts.ModuleKind.CommonJS,target:ts.ScriptTarget.ES2022,esModuleInterop:true}}).outputText,f);
JS
node -r "$reg" scripts/fuzz-long.ts "$@"
