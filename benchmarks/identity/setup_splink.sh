#!/usr/bin/env bash
# Create benchmarks/identity/.venv-splink with Splink 5.0.0 (DuckDB backend), idempotently.
# Splink lives in its own venv so it never touches the project's pins (.venv at the repo root).
#
#   bash benchmarks/identity/setup_splink.sh          # create or verify
#   bash benchmarks/identity/setup_splink.sh --force  # recreate from scratch
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv-splink"
PYTHON="${PYTHON:-python3}"
SPECS=("splink==5.0.0" "duckdb>=2,<3" "pandas" "pyarrow")

if [[ "${1:-}" == "--force" ]]; then
  rm -rf "$VENV"
fi

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md, sys
ok = md.version("splink") == "5.0.0" and md.version("duckdb").split(".")[0] == "2"
import pandas, pyarrow  # noqa: F401
sys.exit(0 if ok else 1)
PY
then
  echo "Splink venv ready: $VENV (splink $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("splink"))'), duckdb $("$VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)'))"
  exit 0
fi

echo "Creating $VENV with $("$PYTHON" --version)"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "${SPECS[@]}"
"$VENV/bin/python" -c 'import splink, duckdb; print("splink", splink.__version__, "duckdb", duckdb.__version__)'
