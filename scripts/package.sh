#!/usr/bin/env bash
# Builds the Debian package from a release build: target/debian/poolwatch_VERSION-1_ARCH.deb
# (the binary, /etc/poolwatch/poolwatch.toml, the systemd unit, the alerts/ files; see
# [package.metadata.deb] in Cargo.toml). Uses cargo-deb at the version pinned in
# scripts/lib/test-deps.sh, installing it into the cache first when it is missing (it compiles
# for a few minutes, once).
#
#   scripts/package.sh              # cargo build --release --locked, then the package
#   scripts/package.sh --install    # ... then dpkg -i it (as root)
#   scripts/package.sh ARGS         # more cargo-deb arguments (cargo-deb --help)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/test-deps.sh
source scripts/lib/test-deps.sh

if ! poolwatch_install_cargo_deb; then
    printf 'package.sh: cannot install cargo-deb %s (see above)\n' "$POOLWATCH_CARGO_DEB_VERSION" >&2
    exit 1
fi
exec "$(poolwatch_cargo_deb)" --locked "$@"
