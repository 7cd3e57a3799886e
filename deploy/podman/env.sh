# Sourced by the podman scripts: podman/buildah configured by files this project writes, not /etc.
#   PODMAN_STORE  images, containers and the cached base root filesystem (default /work/podman-store)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PODMAN_STORE=${PODMAN_STORE:-/work/podman-store}
mkdir -p "$PODMAN_STORE"
cat > "$PODMAN_STORE/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$PODMAN_STORE/graph"
runroot = "$PODMAN_STORE/run"
CONF
export CONTAINERS_CONF="$here/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_STORE/storage.conf"
# the exact name the Dockerfile's FROM resolves to: a short name would be looked up in a registry
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/python:3.11-slim}
