#!/usr/bin/env bash
# Builds the Ory Hydra binary pinned by tools/hydra/go.mod (a separate Go
# module, so the root module never builds or vets it) and prints the path of
# the binary on stdout. Everything else goes to stderr.
#
# The binary is cached in
#   ${BUTLER_TOOL_CACHE:-$HOME/.cache/butler-tools}/hydra-<hash>/hydra
# where <hash> is a SHA-256 of go.mod, go.sum and the build flags below, so a
# changed pin builds a new binary and an unchanged one is reused at once.
#
# Safe to run concurrently: builders serialise on a flock(1) lock file when
# flock exists, and in any case each build writes to a temporary file that is
# renamed into place atomically, so nobody ever sees a half-written binary.
#
# The first build on a clean machine downloads Hydra's dependencies from the Go
# module proxy and compiles them with cgo (sqlite): expect several minutes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# sqlite gives `DSN=memory`; sqlite_omit_load_extension avoids needing
# libdl-style extension loading. Part of the cache key.
tags="sqlite,sqlite_omit_load_extension"

hash="$(
	{
		cat "$here/go.mod" "$here/go.sum"
		printf 'tags=%s\n' "$tags"
	} | sha256sum | cut -c1-16
)"
cache="${BUTLER_TOOL_CACHE:-${HOME:?HOME is not set}/.cache/butler-tools}"
dir="$cache/hydra-$hash"
bin="$dir/hydra"

if [[ -x "$bin" ]]; then
	printf '%s\n' "$bin"
	exit 0
fi

mkdir -p "$dir"

# Serialise concurrent builders so a cold cache is compiled once; whoever
# waited finds the finished binary and reuses it.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
	if [[ -x "$bin" ]]; then
		printf '%s\n' "$bin"
		exit 0
	fi
fi

tmp="$(mktemp "$dir/.hydra.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

echo "building Ory Hydra into $bin (first build takes several minutes)..." >&2
start=$SECONDS
(
	cd "$here"
	# GOWORK=off: a go.work at the repository root must not pull this module
	# into the root build or change what is built here.
	GOWORK=off CGO_ENABLED=1 go build -trimpath -tags "$tags" -o "$tmp" github.com/ory/hydra/v2
) >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
echo "built $bin in $((SECONDS - start))s" >&2

printf '%s\n' "$bin"
