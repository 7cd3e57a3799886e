#!/usr/bin/env bash
# docker-compose.yml where no Docker engine runs: podman-compose with docker-compose.podman.yml
# over it (the api image `make image` built; Prometheus and nginx from Debian's packages on the
# local base image), podman configured by env.sh. The arguments go to podman-compose:
#   deploy/podman/compose.sh up -d api prometheus
#   deploy/podman/compose.sh -p ltpscale up -d api-replica lb
#   deploy/podman/compose.sh down
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/env.sh"
"$here/base-image.sh" >/dev/null
cd "$here/../.."
exec podman-compose -f docker-compose.yml -f docker-compose.podman.yml "$@"
