#!/usr/bin/env bash
# Install mag1c 1.2.0 (the reference implementation) into its own venv for bench/methane.py.
# mag1c needs torch, spectral and scikit-image; 1.2.0 still uses np.int (removed in numpy
# 1.24) and torch.cholesky (removed in torch 2.x), so a small sitecustomize.py shim
# restores both. Never installed into the
# project venv. Usage: bash bench/setup_mag1c.sh   (venv: ${GRAVITAS_CACHE:-~/.cache/gravitas}/mag1c-venv)
set -euo pipefail
CACHE="${GRAVITAS_CACHE:-$HOME/.cache/gravitas}"
VENV="$CACHE/mag1c-venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
# CPU-only is enough; torch from the default index.
"$VENV/bin/pip" install --quiet "mag1c==1.2.0" torch "numpy<2" spectral scikit-image
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cat > "$SITE/sitecustomize.py" <<'PYEOF'
import numpy as np
np.int = int  # mag1c 1.2.0 uses the alias removed in numpy 1.24
import torch  # noqa: E402  (dedicated venv: only mag1c runs here)
torch.cholesky = lambda a, upper=False: (  # removed in torch 2.x, mag1c 1.2.0 calls it
    torch.linalg.cholesky(a).mH if upper else torch.linalg.cholesky(a))
PYEOF
"$VENV/bin/python" -c "import mag1c.mag1c as m; print('mag1c ok', m.__file__)"
echo "$VENV"
