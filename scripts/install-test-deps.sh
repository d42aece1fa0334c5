#!/usr/bin/env bash
# Install what the test suite needs: the project with its test extras, Debian's Chromium + ChromeDriver for the
# browser tests, and PostgreSQL + PostGIS for the store's PostgreSQL backend tests (each only when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        $sudo_cmd apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    echo "installing Debian chromium and chromium-driver (and a CJK font for screenshots) for the browser tests…"
    apt_install chromium chromium-driver fonts-wqy-microhei
fi
# tests/pg_cluster.py runs initdb from the newest /usr/lib/postgresql/*/bin and needs PostGIS in that server.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || \
   ! compgen -G "/usr/share/postgresql/*/extension/postgis.control" >/dev/null; then
    echo "installing Debian postgresql and postgresql-15-postgis-3 for the PostgreSQL store tests…"
    apt_install postgresql postgresql-15-postgis-3
fi
python -m pip install -q --disable-pip-version-check -e ".[test]"
