#!/usr/bin/env bash
# The interpreter `make install` builds .venv from (override: `make PYTHON=...`).
#
# The distribution's own python3 first, when it is 3.11 or newer and can make a venv:
# Debian builds /usr/bin/python3 with PGO and LTO and links it statically, while a
# default pyenv (or source) build has neither and loads libpython as a shared library.
# The same code ran the 10,000-job trace replay 16% faster on Debian's 3.11.2 than on
# pyenv's 3.11.7 (alternated pairs: 11.3 s against 13.5 s; docs/scheduling-results.md).
# Otherwise: python3 from PATH.
set -euo pipefail
for candidate in /usr/bin/python3 python3; do
  if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
      >/dev/null 2>&1; then
    echo "$candidate"
    exit 0
  fi
done
echo "gpupool needs Python >= 3.11 with the venv and ensurepip modules" \
     "(Debian: apt-get install python3-venv)" >&2
exit 1
