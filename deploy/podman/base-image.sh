#!/usr/bin/env bash
# The Dockerfile's base image made locally (no registry reachable): a Debian bookworm root
# filesystem with Python 3.11 from mmdebstrap, imported and tagged with the FROM name. Made once:
# the tarball stays in $PODMAN_STORE and an existing image is kept.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if podman image exists "$BASE_IMAGE"; then
    echo "base image $BASE_IMAGE: present"
    exit 0
fi
rootfs="$PODMAN_STORE/base-rootfs.tar"
if [ ! -f "$rootfs" ] || [ ! -s "$rootfs" ]; then
    rm -rf "$rootfs"
    # mmdebstrap picks its output format by the file's extension: the partial file must end
    # in .tar too, or it writes a directory
    partial="$PODMAN_STORE/base-rootfs.partial.tar"
    mmdebstrap --variant=apt --include=python3,python3-venv,python-is-python3,passwd,ca-certificates \
        bookworm "$partial"
    mv "$partial" "$rootfs"
fi
podman import --change 'CMD ["python3"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' "$rootfs" "$BASE_IMAGE"
