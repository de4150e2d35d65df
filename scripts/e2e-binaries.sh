#!/usr/bin/env bash
# Build or install the real binaries the end-to-end tests run (tests/e2e, tests/deploy):
#   otelcol-agentwatch  OpenTelemetry Collector built with the Collector Builder from
#                       collector/builder-manifest.yaml (the components collector/config.yaml uses)
#   jaeger              Jaeger v2, built from its module source (see JAEGER_* below)
#   loki                Loki, built from its module source at the compose image's version
#   prometheus, promtool, alertmanager, amtool   Debian packages prometheus and
#                       prometheus-alertmanager (linked into the cache)
#
# Idempotent: a binary is rebuilt only when it is missing or the stamp recorded beside it (manifest
# hash, builder/Go/Jaeger versions) no longer matches. The cache lives outside the repository:
#   ${AGENTWATCH_BIN_CACHE:-$HOME/.cache/agentwatch/bin}
# Build output goes to $AGENTWATCH_BIN_CACHE/build.log; the script prints one summary line.
#
# Usage: scripts/e2e-binaries.sh [prometheus|collector|jaeger|loki]...   (default: all)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${AGENTWATCH_BIN_CACHE:-$HOME/.cache/agentwatch/bin}
LOG=${AGENTWATCH_BIN_LOG:-$CACHE/build.log}
MANIFEST=$REPO_ROOT/collector/builder-manifest.yaml

# Same version as the otel/opentelemetry-collector-contrib image pinned in docker-compose.yml.
OCB_VERSION=v0.159.0
# Jaeger 2.20.0 (the compose image) by commit: tags v2.x are not installable because the module
# path has no /v2 suffix. Where the module proxy refuses that commit, fall back to v1.76.0, the
# last semver tag (= Jaeger v2.13.0); the /api/v3 query API the tests use is the same.
JAEGER_MODULE=github.com/jaegertracing/jaeger
JAEGER_REFS=(798e4b0fcf22609e381df764a01461affd813e1e v1.76.0)

# Same version as the grafana/loki image pinned in docker-compose.yml.
LOKI_MODULE=github.com/grafana/loki/v3
LOKI_VERSION=v3.7.6

# Go may be installed without being on a non-login shell's PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || { echo "e2e-binaries: needs Go (1.25 or newer) on PATH" >&2; exit 1; }

# Two cores: keep the Go build from starving everything else.
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=2"
export CGO_ENABLED=0

mkdir -p "$CACHE"
# Keep the log readable: start over once it passes 20 MB.
if [[ -f $LOG ]] && (($(stat -c %s "$LOG") > 20000000)); then : >"$LOG"; fi
: >>"$LOG"
summary=()

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >>"$LOG"; }

sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

build_collector() {
    local want have bin=$CACHE/otelcol-agentwatch work
    want="ocb=$OCB_VERSION manifest=$(sha "$MANIFEST") $(go env GOVERSION)"
    have=$(cat "$bin.stamp" 2>/dev/null || true)
    if [[ -x $bin && $have == "$want" ]]; then
        summary+=("collector cached")
        return
    fi
    local t0=$SECONDS
    log "collector: building ($want)"
    GOBIN=$CACHE/tools go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION" >>"$LOG" 2>&1
    work=$(mktemp -d "${TMPDIR:-/tmp}/agentwatch-ocb.XXXXXX")
    # output_path is rewritten so the generated sources land in a scratch folder, not the repo.
    sed "s#^\(\s*output_path:\).*#\1 $work/src#" "$MANIFEST" >"$work/manifest.yaml"
    (cd "$work" && "$CACHE/tools/builder" --config "$work/manifest.yaml" --ldflags="-s -w") >>"$LOG" 2>&1
    install -m 0755 "$work/src/otelcol-agentwatch" "$bin"
    echo "$want" >"$bin.stamp"
    rm -rf "$work"
    summary+=("collector built in $((SECONDS - t0))s")
    log "collector: done in $((SECONDS - t0))s"
}

build_jaeger() {
    local bin=$CACHE/jaeger have ref dir work t0=$SECONDS
    have=$(cat "$bin.stamp" 2>/dev/null || true)
    if [[ -x $bin && $have == "requested=${JAEGER_REFS[0]} "* ]]; then
        summary+=("jaeger cached (${have##* })")
        return
    fi
    for ref in "${JAEGER_REFS[@]}"; do
        # `go install module@ref` refuses Jaeger (its go.mod has a replace directive), so fetch the
        # module source through the module proxy and build it as the main module.
        log "jaeger: go mod download $JAEGER_MODULE@$ref"
        if ! dir=$(cd "$CACHE" && go mod download -json "$JAEGER_MODULE@$ref" 2>>"$LOG" |
            sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p') || [[ -z $dir ]]; then
            log "jaeger: $ref not served, trying the next reference"
            continue
        fi
        work=$(mktemp -d "${TMPDIR:-/tmp}/agentwatch-jaeger.XXXXXX")
        cp -r "$dir/." "$work/" && chmod -R u+w "$work"
        if (cd "$work" && go build -trimpath -ldflags="-s -w" -o "$bin.new" ./cmd/jaeger) >>"$LOG" 2>&1; then
            mv "$bin.new" "$bin"
            echo "requested=${JAEGER_REFS[0]} built=$ref" >"$bin.stamp"
            rm -rf "$work"
            summary+=("jaeger@$ref built in $((SECONDS - t0))s")
            log "jaeger: done ($ref) in $((SECONDS - t0))s"
            return
        fi
        rm -rf "$work"
        log "jaeger: build of $ref failed, trying the next reference"
    done
    echo "jaeger: every reference failed, see $LOG" >&2
    return 1
}

build_loki() {
    local bin=$CACHE/loki want have dir work t0=$SECONDS
    want="loki=$LOKI_VERSION $(go env GOVERSION)"
    have=$(cat "$bin.stamp" 2>/dev/null || true)
    if [[ -x $bin && $have == "$want" ]]; then
        summary+=("loki cached")
        return
    fi
    log "loki: go mod download $LOKI_MODULE@$LOKI_VERSION"
    dir=$(cd "$CACHE" && go mod download -json "$LOKI_MODULE@$LOKI_VERSION" 2>>"$LOG" |
        sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
    [[ -n $dir ]] || { echo "loki: $LOKI_VERSION not served, see $LOG" >&2; return 1; }
    work=$(mktemp -d "${TMPDIR:-/tmp}/agentwatch-loki.XXXXXX")
    cp -r "$dir/." "$work/" && chmod -R u+w "$work"
    # go.mod replaces github.com/grafana/loki/pkg/push with ./pkg/push, a nested module that module
    # zips leave out; drop the replace so the version go.mod requires comes from the module proxy.
    # -mod=mod lets go record that module's checksums.
    (cd "$work" && go mod edit -dropreplace=github.com/grafana/loki/pkg/push &&
        go build -mod=mod -trimpath -ldflags="-s -w" -o "$bin.new" ./cmd/loki) >>"$LOG" 2>&1 ||
        { rm -rf "$work"; echo "loki: build failed, see $LOG" >&2; return 1; }
    mv "$bin.new" "$bin"
    echo "$want" >"$bin.stamp"
    rm -rf "$work"
    summary+=("loki $LOKI_VERSION built in $((SECONDS - t0))s")
    log "loki: done in $((SECONDS - t0))s"
}

install_prometheus() {
    local missing=()
    command -v prometheus >/dev/null || missing+=(prometheus)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
    command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
    if ((${#missing[@]})); then
        local t0=$SECONDS sudo=()
        ((EUID == 0)) || sudo=(sudo)
        log "prometheus: apt-get install ${missing[*]}"
        # The packages' postinst would start daemons where an init system exists; tests start
        # their own on 127.0.0.1, so keep the packaged services from starting.
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
            printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
            "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
            local drop_policy=1
        fi
        "${sudo[@]}" apt-get update -qq >>"$LOG" 2>&1
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >>"$LOG" 2>&1
        [[ -z ${drop_policy:-} ]] || "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
        summary+=("prometheus installed in $((SECONDS - t0))s")
    else
        summary+=("prometheus present")
    fi
    ln -sf "$(command -v prometheus)" "$CACHE/prometheus"
    ln -sf "$(command -v promtool)" "$CACHE/promtool"
    ln -sf "$(command -v prometheus-alertmanager)" "$CACHE/alertmanager"
    ln -sf "$(command -v amtool)" "$CACHE/amtool"
}

targets=("$@")
((${#targets[@]})) || targets=(prometheus collector jaeger loki)
for t in "${targets[@]}"; do
    case $t in
        collector) build_collector ;;
        jaeger) build_jaeger ;;
        loki) build_loki ;;
        prometheus) install_prometheus ;;
        *) echo "unknown target: $t (prometheus|collector|jaeger|loki)" >&2; exit 2 ;;
    esac
done
joined=$(printf '%s; ' "${summary[@]}")
echo "e2e-binaries: ${joined%; } -> $CACHE (log: $LOG)"
