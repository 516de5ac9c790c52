#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo: install what is needed, then boot a guest and show the driver.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/testing/setup.sh >/dev/null
exec /usr/bin/python3 tools/testing/demo.py "$@"
