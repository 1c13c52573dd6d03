#!/usr/bin/env bash
# deploy-frontend.sh <test|production>: build the dashboard (frontend/), upload it as a new
# release, switch CloudFront to it and invalidate index.html and config.json. A thin wrapper
# over `tickstep deploy-frontend` (src/tickstep/dashboard/release.py; docs/RUNBOOK.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
case "${1:-}" in
  test | production) ;;
  *) echo "usage: deploy-frontend.sh <test|production>" >&2; exit 2 ;;
esac
if [[ -z "${TICKSTEP_SKIP_BUILD:-}" ]]; then
  make -C "$root" --no-print-directory frontend
fi
cd "$root"
exec "${TICKSTEP:-$root/.venv/bin/tickstep}" deploy-frontend "$1" --dist "$root/frontend/dist"
