#!/usr/bin/env bash
# Builds the Ory Hydra binary pinned by tools/hydra/go.mod and prints its
# path on stdout: tools/build.sh hydra, which caches it by the hash of
# go.mod, go.sum and build-tags (sqlite gives `DSN=memory`;
# sqlite_omit_load_extension avoids extension loading), with cgo because
# tools/hydra/cgo exists. The first build on a clean machine downloads
# Hydra's dependencies and compiles them with cgo: expect several minutes.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build.sh" hydra
