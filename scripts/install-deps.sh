#!/bin/sh
# Installs the Debian packages aiart-lua needs, if any are missing (run as root, or with sudo).
# The Python/Jupyter ones serve the notebook kernel and its tests; Open MPI (libopenmpi-dev,
# openmpi-bin) serves ai.dist, whose multi-rank tests run when it is there (aiart-lua also builds
# and works without it, in single-process mode).
set -e
PKGS="gcc make pkg-config lua5.4 liblua5.4-dev libopenblas-dev libpng-dev libcjson-dev zlib1g-dev \
libreadline-dev dataset-fashion-mnist python3 python3-ipykernel python3-jupyter-client python3-nbclient \
python3-nbformat jupyter-core libopenmpi-dev openmpi-bin"
[ -n "$AIART_EXTRA_PKGS" ] && PKGS="$PKGS $AIART_EXTRA_PKGS"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "Installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
