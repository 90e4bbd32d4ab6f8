#!/usr/bin/env bash
# Every test, from a fresh machine: `bash tools/test.sh` (extra arguments go to pytest, e.g. `-x` or `-k docs`).
#
# 1. System set-up: Debian's Chromium for the browser tests (tools/setup_system.sh; it installs it when run as root
#    with apt, and otherwise says in one line what to do: the browser tests then fail and say why).
# 2. Python set-up: the `dev` extra, installed editable into the active environment: a virtualenv or conda
#    environment if one is active, else ./.venv, created here if it is missing (never the system's Python). pip runs
#    unless tools/installed.py finds it all there already (this checkout editable, every requirement met).
# 3. nbdev-test (every notebook; a failure stops here, with the failed notebooks named), then pytest on tests/.
#    Both run their work in parallel, one process per core (LOTTERY_TEST_WORKERS=N sets how many; 1: one process),
#    each torch process on one thread unless OMP_NUM_THREADS is set (two threads a process on two cores made fits up
#    to 20 times slower). pytest keeps a test file's tests in one process (`--dist loadfile`, see tests/conftest.py).
#    Skips are counted and their reasons listed in pytest's summary; its closing line is the last line printed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup_system.sh

if [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ]; then
  echo "python: installing into the active environment ${VIRTUAL_ENV:-${CONDA_PREFIX}}"
else
  if [ ! -x .venv/bin/python ]; then echo "python: no environment is active: creating ./.venv"; python3 -m venv .venv; fi
  echo "python: no environment is active: using ./.venv"
  . .venv/bin/activate
fi
python tools/installed.py || python -m pip install -q -e ".[dev]"   # pip only where something is missing (tools/installed.py)

export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
WORKERS="${LOTTERY_TEST_WORKERS:-$(python -c 'import os; print(min(len(os.sched_getaffinity(0)), 8))')}"

python - <<'EOF'
# nbdev-test does not run cells marked `#| eval: false` (Colab-only downloads): say which, so none is skipped unseen
import json, re
from pathlib import Path
cells = [f"{p.name} {c.get('id')}" for p in sorted(Path('nbs').glob('*.ipynb')) for c in json.loads(p.read_text())['cells']
         if c['cell_type'] == 'code' and re.search(r'^#\|\s*eval:\s*false\s*$', ''.join(c['source']), re.M)]
if cells: print(f"nbdev-test: {len(cells)} cells marked `#| eval: false` are not run (Colab-only): {', '.join(cells)}")
EOF
echo "nbdev-test: every notebook, $WORKERS at a time"
START=$SECONDS
if ! nbdev-test --n-workers "$WORKERS"; then
  echo "nbdev-test failed on the notebooks named above; pytest was not run" >&2
  exit 1
fi
echo "nbdev-test: passed in $((SECONDS - START)) s"
echo "pytest: tests/, $WORKERS at a time"
exec python -m pytest -q -n "$([ "$WORKERS" -gt 1 ] && echo "$WORKERS" || echo 0)" --dist loadfile tests/ "$@"
