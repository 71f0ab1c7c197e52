// Package deploy holds Butler's deployment artifacts and the tests that
// build, render and check each of them with the real tool: the release
// configuration (../.goreleaser.yaml, with GoReleaser), the container image
// (container/Containerfile, with buildah), the Helm chart (helm/butler, with
// helm lint and helm template), the systemd unit (systemd/butler.service,
// with systemd-analyze) and the dashboard and alert rules (observability/,
// with promtool). docs/deploy.md describes how to use them.
//
// The Go tools are pinned by the modules under ../tools and built (once,
// cached) by ../tools/build.sh; buildah and systemd-analyze come from
// Debian. A test whose tool is missing skips, and fails instead with
// BUTLER_REQUIRE_DEPLOY=1, as .ci/run sets.
package deploy
