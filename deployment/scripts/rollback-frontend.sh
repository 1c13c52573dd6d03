#!/usr/bin/env bash
# rollback-frontend.sh <test|production>: switch CloudFront back to the previous dashboard
# release (seconds, no rebuild); refuses when there is none. A thin wrapper over
# `tickstep rollback-frontend` (src/tickstep/dashboard/release.py; docs/RUNBOOK.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
case "${1:-}" in
  test | production) ;;
  *) echo "usage: rollback-frontend.sh <test|production>" >&2; exit 2 ;;
esac
cd "$root"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" rollback-frontend "$1"
