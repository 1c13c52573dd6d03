#!/usr/bin/env bash
# Print a directory holding a working `pythonX.Y` (the Lambda runtime's version), for
# `PATH="$(tools/find-python.sh 3.12):$PATH" sam build`. Looks on PATH first, then in pyenv.
set -euo pipefail
want="${1:?usage: find-python.sh X.Y}"
exe="python${want}"
if path="$(command -v "$exe" 2>/dev/null)" && "$exe" -c 'import sys' >/dev/null 2>&1; then
  dirname "$path"
  exit 0
fi
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  version="$(pyenv versions --bare 2>/dev/null | grep -E "^${want//./\\.}\.[0-9]+$" | sort -V | tail -n 1 || true)"
  if [[ -n "$version" && -x "$root/versions/$version/bin/$exe" ]]; then
    echo "$root/versions/$version/bin"
    exit 0
  fi
fi
echo "find-python.sh: no working $exe on PATH or in pyenv; sam build needs the Lambda runtime's" \
  "Python. Install it (e.g. \`pyenv install ${want}\`) or put $exe on PATH." >&2
exit 1
