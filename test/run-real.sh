#!/usr/bin/env bash
# npm run test:real: build (or find, when warm) the real tools, then the real tier's ava suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/tools/ensure-tools.sh
bash test/tools/tools.sh >/dev/null
npx ava --config ava.real.config.mjs "$@"
