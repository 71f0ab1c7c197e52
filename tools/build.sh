#!/usr/bin/env bash
# Usage: tools/build.sh NAME
#
# Builds the Go tool pinned by tools/NAME/go.mod (its one `tool` directive;
# a separate Go module, so the root module never builds or vets it) and
# prints the path of the binary on stdout. Everything else goes to stderr.
# NAME is one of the folders beside this script that holds a go.mod:
# goreleaser, helm, promtool, cyclonedx-gomod, hydra (tools/hydra/build.sh
# calls this one).
#
# The binary is cached in
#   ${BUTLER_TOOL_CACHE:-$HOME/.cache/butler-tools}/NAME-<hash>/NAME
# where <hash> is a SHA-256 of go.mod and go.sum, so a changed pin builds a
# new binary and an unchanged one is reused at once. Builders of one tool
# serialise on a flock(1) lock, and each build is renamed into place
# atomically, so nobody sees a half-written binary.
set -euo pipefail

name="${1:?usage: tools/build.sh NAME}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/$name"
[[ "$name" =~ ^[a-z0-9-]+$ && -f "$mod/go.mod" ]] || { echo "tools/build.sh: no tool module tools/$name" >&2; exit 2; }

pkg="$(sed -n 's/^tool[[:space:]]\{1,\}\([^[:space:]]\{1,\}\)$/\1/p' "$mod/go.mod")"
[[ -n "$pkg" && "$(printf '%s\n' "$pkg" | wc -l)" -eq 1 ]] || { echo "tools/build.sh: tools/$name/go.mod must have exactly one tool directive" >&2; exit 2; }

# tools/NAME/build-tags, when present, holds the build tags of the tool's
# build (promtool: remove_all_sd leaves out the service-discovery plugins,
# the cloud SDKs that are most of its build time and of no use for checking
# rules); it is part of the cache key.
tags=""
[[ -f "$mod/build-tags" ]] && tags="$(tr -d '[:space:]' < "$mod/build-tags")"
# tools/NAME/cgo, when present, builds the tool with cgo (Hydra: sqlite);
# every other tool is pure Go and built static.
cgo=0
[[ -f "$mod/cgo" ]] && cgo=1
hash="$( { cat "$mod/go.mod" "$mod/go.sum"; [[ -z "$tags" ]] || echo "tags=$tags"; } | sha256sum | cut -c1-16)"
cache="${BUTLER_TOOL_CACHE:-${HOME:?HOME is not set}/.cache/butler-tools}"
dir="$cache/$name-$hash"
bin="$dir/$name"

if [[ -x "$bin" ]]; then
	printf '%s\n' "$bin"
	exit 0
fi
mkdir -p "$dir"
if command -v flock >/dev/null 2>&1; then
	exec 9>"$dir/.lock"
	flock 9
	if [[ -x "$bin" ]]; then
		printf '%s\n' "$bin"
		exit 0
	fi
fi

tmp="$(mktemp "$dir/.$name.tmp.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
echo "building $pkg into $bin ..." >&2
start=$SECONDS
(
	cd "$mod"
	# GOWORK=off: a go.work at the root must not change what is built here.
	# CGO_ENABLED=0 unless tools/NAME/cgo says otherwise: a static binary
	# needs no libc.
	GOWORK=off CGO_ENABLED=$cgo go build -trimpath -tags "$tags" -o "$tmp" "$pkg"
) >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$bin"
trap - EXIT
echo "built $bin in $((SECONDS - start))s" >&2
printf '%s\n' "$bin"
