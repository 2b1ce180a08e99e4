#!/bin/sh
# Installs the Debian packages vidcap needs. `deps.sh build` for the build, `deps.sh test` adds the
# packages the parity tests and trainers use (PyTorch is their oracle). As root it runs apt-get;
# otherwise it prints the exact command and fails, so nothing is half-installed behind your back.
set -eu

build_pkgs="cmake make gcc pkg-config libavformat-dev libavcodec-dev libavutil-dev libswscale-dev
libjpeg62-turbo-dev libopenblas-dev libstb-dev libcjson-dev"
test_pkgs="python3 python3-numpy python3-torch python3-pil python3-torchvision dataset-fashion-mnist ffmpeg"

want=$build_pkgs
[ "${1:-build}" = test ] && want="$build_pkgs $test_pkgs"

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "vidcap: missing Debian packages. Run:" >&2
    echo "  sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "vidcap: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >&2
