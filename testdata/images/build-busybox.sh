#!/bin/sh
# Builds the busybox test image from Debian's busybox-static, without any registry:
#   out/busybox-oci.tar     OCI image layout tarball (index.json names it
#                           docker.io/library/busybox:latest and docker.io/library/busybox:test)
#   out/busybox-docker.tar  the same image in `docker save` format (manifest.json, RepoTags)
# Byte-reproducible for a given busybox-static package (fixed SOURCE_DATE_EPOCH, sorted tar
# members, numeric root ownership). Idempotent: does nothing when both outputs are newer than
# this script and oci2docker.py. Needs root (umoci unpack), busybox-static, umoci, jq, python3.
# Safe to run concurrently (flock on out/.lock); outputs are replaced atomically.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$HERE/out
OCI_TAR=$OUT/busybox-oci.tar
DOCKER_TAR=$OUT/busybox-docker.tar
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

up_to_date() {
    [ -f "$OCI_TAR" ] && [ -f "$DOCKER_TAR" ] &&
        [ "$OCI_TAR" -nt "$HERE/build-busybox.sh" ] && [ "$OCI_TAR" -nt "$HERE/oci2docker.py" ] &&
        [ "$DOCKER_TAR" -nt "$HERE/build-busybox.sh" ] && [ "$DOCKER_TAR" -nt "$HERE/oci2docker.py" ]
}

if up_to_date && [ -z "${FORCE:-}" ]; then
    exit 0
fi

for tool in umoci jq python3 tar flock; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build-busybox.sh: $tool not found (apt-get install busybox-static umoci jq python3)" >&2
        exit 1
    }
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || { echo "build-busybox.sh: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
if command -v dpkg-query >/dev/null 2>&1 &&
    ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    echo "build-busybox.sh: package busybox-static is not installed ($BUSYBOX may be dynamically linked)" >&2
    exit 1
fi
[ "$(id -u)" = 0 ] || { echo "build-busybox.sh: must run as root (umoci unpack)" >&2; exit 1; }

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
# Another build may have finished while we waited for the lock.
if up_to_date && [ -z "${FORCE:-}" ]; then
    exit 0
fi

WORK=$(mktemp -d "$OUT/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"
umask 022
export LC_ALL=C TZ=UTC
DATE=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)

umoci init --layout oci
umoci new --image oci:busybox
umoci unpack --image oci:busybox bundle
R=bundle/rootfs
mkdir -p $R/bin $R/etc $R/tmp $R/proc $R/sys $R/dev $R/root $R/var/www $R/usr
chmod 1777 $R/tmp
cp "$BUSYBOX" $R/bin/busybox
chmod 0755 $R/bin/busybox
for a in $("$BUSYBOX" --list); do
    [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"
done
ln -s bin $R/sbin
ln -s ../bin $R/usr/bin
ln -s ../bin $R/usr/sbin
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >$R/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >$R/etc/group
find $R -exec touch -h -d "@$EPOCH" {} + # fixed mtimes: same digest on every build
umoci repack --image oci:busybox --history.created "$DATE" --history.created_by "busybox-static" bundle
umoci config --image oci:busybox --created "$DATE" --history.created "$DATE" \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.cmd sh --config.workingdir / \
    --architecture amd64 --os linux
umoci gc --layout oci

# Name the image the way containerd (and `docker save` since 25.0) does: the full name in
# io.containerd.image.name, the tag alone in org.opencontainers.image.ref.name.
jq -c '.manifests[0] as $m | .manifests = [
    ($m | .annotations = {"io.containerd.image.name": "docker.io/library/busybox:latest",
                          "org.opencontainers.image.ref.name": "latest"}),
    ($m | .annotations = {"io.containerd.image.name": "docker.io/library/busybox:test",
                          "org.opencontainers.image.ref.name": "test"})]' \
    oci/index.json >index.json
mv index.json oci/index.json

deterministic_tar() { # deterministic_tar OUTPUT DIR
    chmod -R a+rX "$2"
    find "$2" -exec touch -h -d "@$EPOCH" {} +
    tar --sort=name --format=ustar --mtime="@$EPOCH" --owner=0 --group=0 --numeric-owner \
        -C "$2" -cf "$1" .
}
deterministic_tar busybox-oci.tar oci
python3 "$HERE/oci2docker.py" --epoch "$EPOCH" --tag busybox:latest --tag busybox:test \
    oci busybox-docker.tar

mv busybox-oci.tar "$OCI_TAR"
mv busybox-docker.tar "$DOCKER_TAR"
echo "built $OCI_TAR and $DOCKER_TAR ($(jq -r '.manifests[0].digest' oci/index.json))"
