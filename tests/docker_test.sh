#!/usr/bin/env bash
# `make docker-test` (never part of `make test`): build the image, start compose.yaml with
# throwaway production settings, and check what docs/operations.md promises: the one-shot
# migration exited 0, web is healthy and answers /healthz as a non-root user, the workers run,
# Redis persists (appendonly yes). Everything it started, volumes included, is removed at the
# end. Needs a Docker daemon, compose (the plugin or docker-compose), and the base images
# (python, postgres, redis); DOCKER_TEST_PYTHON_IMAGE builds on another Python 3.11 image.
# Twilio is never called: TWILIO_API_BASE_URL points at a closed port on the loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
project=hotline-docker-test
port=${HOTLINE_HTTP_PORT:-58080}
work=$(mktemp -d)
export HOTLINE_ENV_FILE="$work/hotline.env" HOTLINE_HTTP_PORT="$port"
export POSTGRES_PASSWORD="docker-test-$RANDOM$RANDOM"
dc() { "${compose[@]}" -p "$project" "$@"; }
cleanup() { dc down -v --remove-orphans >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "docker-test: FAILED: $*" >&2; dc ps -a >&2 || true; dc logs --tail 30 >&2 || true; exit 1; }

touch "$HOTLINE_ENV_FILE"   # compose reads it while building
dc build ${DOCKER_TEST_PYTHON_IMAGE:+--build-arg PYTHON_IMAGE=$DOCKER_TEST_PYTHON_IMAGE}
docker run --rm --network none -e HOTLINE_ENV=development -e DATABASE_URL=sqlite:// \
    hotline:latest hotline keys new | grep = > "$HOTLINE_ENV_FILE"
cat >> "$HOTLINE_ENV_FILE" <<SETTINGS
HOTLINE_ENV=production
TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
TWILIO_AUTH_TOKEN=0123456789abcdef0123456789abcdef
TWILIO_API_BASE_URL=https://127.0.0.1:9
HOTLINE_NUMBER=+16175550242
PUBLIC_BASE_URL=https://hotline.clinicians-peer-line.org
CRISIS_LINE_NUMBER=+18002738255
BACKUP_NUMBERS=+16175550243,+16175550244
WEB_CONCURRENCY=2
SETTINGS

dc up -d
web=$(dc ps -q web)
for _ in $(seq 90); do
    status=$(docker inspect -f '{{.State.Health.Status}}' "$web")
    [ "$status" = healthy ] && break
    sleep 2
done
[ "$status" = healthy ] || fail "web is $status, not healthy"
migrate=$(dc ps -a -q migrate)
[ "$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$migrate")" = "exited 0" ] \
    || fail "the migration did not exit 0"
[ "$(curl -fsS "http://127.0.0.1:$port/healthz")" = ok ] || fail "/healthz did not answer ok"
[ "$(dc exec -T web id -u)" != 0 ] || fail "web runs as root"
[ "$(dc ps -q worker | wc -l)" -ge 1 ] || fail "no worker running"
dc exec -T redis redis-cli config get appendonly | grep -qx yes || fail "Redis without AOF"
echo "docker-test: migrate exited 0, web healthy on /healthz as uid $(dc exec -T web id -u)," \
     "$(dc ps -q worker | wc -l) worker(s) up, Redis appendonly yes"
