#!/usr/bin/env bash
# Install what the test suite needs: the project with its test extras, and Debian's Chromium + ChromeDriver
# for the browser tests (only when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    echo "installing Debian chromium and chromium-driver (and a CJK font for screenshots) for the browser tests…"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei \
        >/dev/null
fi
python -m pip install -q --disable-pip-version-check -e ".[test]"
