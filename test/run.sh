#!/usr/bin/env bash
# npm test: fetch the test tools this machine lacks, typecheck, then every ava test (shellcheck of every generated
# script and the real-etcd tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/tools/ensure-tools.sh
npx tsc --noEmit -p .
npx ava "$@"
