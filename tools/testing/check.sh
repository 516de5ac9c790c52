#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make check: install what is needed, then every test on both kernels. The
# runner's last line is "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/testing/setup.sh >/dev/null
# The QEMU that emulates KVM's dirty logging and a discarding host.
bash tools/testing/build-qemu.sh >/dev/null
exec /usr/bin/python3 tools/testing/run.py "$@"
