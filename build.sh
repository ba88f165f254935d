#!/usr/bin/env bash
# Build the bubblenet GPU image and tag it with the package version and 'latest'.
# Usage: ./build.sh [extra docker build arguments]
set -euo pipefail
cd "$(dirname "$0")"
version=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' bubblenet/__init__.py)
if [ -z "$version" ]; then
    echo "build.sh: cannot read __version__ from bubblenet/__init__.py" >&2
    exit 2
fi
docker build --tag "bubblenet:${version}" --tag bubblenet:latest "$@" .
echo "built bubblenet:${version} (also tagged bubblenet:latest)"
