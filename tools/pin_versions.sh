#!/usr/bin/env bash
# Print a constraints file of the packages installed in a virtual environment that passed the
# suite: everything but hirfast itself, torch, triton and the CUDA wheels (the Makefile picks
# torch and triton per machine). Run it on a venv that `make bench` has completed, so the
# benchmark packages are pinned too. Usage: tools/pin_versions.sh .venv > constraints.txt
set -euo pipefail
venv=${1:-.venv}
torch=$("$venv/bin/python" -c 'import torch; print(torch.__version__)')
triton=$("$venv/bin/python" -c 'import triton; print(triton.__version__)' 2>/dev/null || echo none)
cat <<HEADER
# Versions the whole test suite (\`make test\`) passed with, on Python 3.11, with torch $torch and
# triton $triton (those two are set by the Makefile's TORCH_SPEC, not here: a machine with a GPU
# takes a CUDA torch and the Triton it requires). \`make demo\`, \`make test\` and \`make bench\`
# install with \`pip install -c constraints.txt\`; \`make test CONSTRAINTS=\` installs the newest
# releases setup.py's ranges allow (use a fresh \`VENV=.venv-new\`).
# Regenerate after a green run of \`make test\` and \`make bench\`: tools/pin_versions.sh .venv > constraints.txt
HEADER
"$venv/bin/pip" freeze --exclude-editable 2>/dev/null | grep -v -i -E '^(hirfast|torch|triton|nvidia-|cuda-)' | grep -v '^#'
