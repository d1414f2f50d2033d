#!/bin/sh
# Install the Debian packages leadflow needs, only those missing (plus $LF_EXTRA_PKGS, which
# `make bench` sets to what the benchmark alone needs). Idempotent and quick when
# everything is there; works as root on a fresh Debian 12 (uses sudo when not root).
# clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes of Debian 12's clang 14,
# which clang only recommends) build the fuzz harnesses of `make fuzz` and `make test`;
# libssl-dev is OpenSSL's libcrypto (SHA-256). systemd (systemd-analyze), yamllint,
# docker-compose (`docker-compose config`, no daemon), python3-yaml and python3-seccomp (the
# sandbox of deploy/leadflow.service rebuilt around a test run) check the files of deploy/:
# tests/offline/test_deploy.py and tests/integration/test_dashboard.py.
set -e
PKGS="build-essential pkg-config librdkafka-dev libhiredis-dev libmsgpack-dev libjemalloc-dev
libyaml-dev libcjson-dev libssl-dev redis-server redis-tools kcat python3 python3-confluent-kafka
python3-redis procps clang libclang-rt-14-dev clang-format libmicrohttpd-dev prometheus
systemd yamllint docker-compose python3-yaml python3-seccomp
$LF_EXTRA_PKGS"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# policy-rc.d keeps the package from starting a system redis-server: leadflow starts its own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "deps: done"
