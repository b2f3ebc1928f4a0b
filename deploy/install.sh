#!/usr/bin/env bash
# Install streamscale on this machine the way daemons are installed: the
# binaries, a system user, the systemd units, example configs, the dashboard
# files, /var/lib/streamscale. Idempotent: running it again updates the
# binaries, units and shared files and never touches an existing config,
# token or data. docs/OPERATIONS.md explains what to do next.
#
#   deploy/install.sh [options]              install (or update)
#   deploy/install.sh --uninstall [--purge]  remove what it installed
#                                            (--purge: also /etc/streamscale,
#                                            /var/lib/streamscale and the user)
# Options:
#   --prefix DIR      where binaries and shared files go (default /usr/local;
#                     the units' ExecStart follows it)
#   --destdir DIR     install into DIR as the root (for packaging and tests;
#                     also the DESTDIR environment variable). The user is
#                     then created in DIR/etc/passwd with systemd-sysusers
#                     --root, and nothing is started.
#   --build-dir DIR   take the binaries from DIR/bin (default: build/; built
#                     with cmake first when missing, unless --no-build)
#   --no-build        fail instead of building
#   -h, --help        this text
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=/usr/local
destdir=${DESTDIR:-}
build_dir="$root/build"
do_build=1
mode=install
purge=0

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=${2:?--prefix needs a folder}; shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir) destdir=${2:?--destdir needs a folder}; shift 2 ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --build-dir) build_dir=${2:?--build-dir needs a folder}; shift 2 ;;
        --build-dir=*) build_dir=${1#*=}; shift ;;
        --no-build) do_build=0; shift ;;
        --uninstall) mode=uninstall; shift ;;
        --purge) purge=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac
prefix=${prefix%/}
if [ -n "$destdir" ]; then
    mkdir -p "$destdir"
    destdir=$(cd "$destdir" && pwd)
    [ "$destdir" = / ] && destdir=""
fi
if [ -z "$destdir" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (or use --destdir DIR for a staged install)" >&2
    exit 1
fi

D=$destdir                       # every path we touch is "$D$path"
user=streamscale
bindir=$prefix/bin
sharedir=$prefix/share/streamscale
docdir=$prefix/share/doc/streamscale
etcdir=/etc/streamscale
unitdir=/etc/systemd/system
sysusersdir=/usr/lib/sysusers.d
tmpfilesdir=/usr/lib/tmpfiles.d
statedir=/var/lib/streamscale
bins="streamscale streamscale-coordinator streamscale-worker"
units="streamscale-coordinator.service streamscale-worker.service"

say() { printf '==> %s\n' "$*"; }
systemd_running() { [ -z "$D" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# ---- uninstall -----------------------------------------------------------------
if [ "$mode" = uninstall ]; then
    if systemd_running; then
        for u in $units; do systemctl disable --now "$u" 2>/dev/null || true; done
    fi
    for b in $bins; do rm -f "$D$bindir/$b"; done
    for u in $units; do rm -f "$D$unitdir/$u"; done
    rm -f "$D$sysusersdir/streamscale.conf" "$D$tmpfilesdir/streamscale.conf"
    rm -rf "$D$sharedir" "$D$docdir"
    systemd_running && systemctl daemon-reload || true
    if [ "$purge" = 1 ]; then
        rm -rf "$D$etcdir" "$D$statedir"
        if [ -n "$D" ]; then
            # the staged root's account files: drop our entries, and the
            # files themselves when nothing else is left in them
            for f in passwd group shadow gshadow; do
                [ -f "$D/etc/$f" ] || continue
                sed -i "/^$user:/d" "$D/etc/$f"
                [ -s "$D/etc/$f" ] || rm -f "$D/etc/$f" "$D/etc/$f-"
            done
            [ -e "$D/etc/passwd" ] || rm -f "$D/etc/.pwd.lock"
        elif getent passwd "$user" >/dev/null; then
            userdel "$user" 2>/dev/null || true
            getent group "$user" >/dev/null && groupdel "$user" 2>/dev/null || true
        fi
        say "removed streamscale, its configuration, its data and the user $user"
    else
        say "removed streamscale; kept $etcdir, $statedir and the user $user (--purge removes them)"
    fi
    # folders we created and that are empty now
    for d in "$bindir" "$prefix/share/doc" "$prefix/share" "$prefix" "$unitdir" /etc/systemd \
             "$sysusersdir" "$tmpfilesdir" /usr/lib /usr /var/lib /var /etc; do
        [ -n "$D" ] && rmdir "$D$d" 2>/dev/null || true
    done
    exit 0
fi

# ---- install ----------------------------------------------------------------------
if [ ! -x "$build_dir/bin/streamscale-worker" ] || [ ! -x "$build_dir/bin/streamscale-coordinator" ] ||
   [ ! -x "$build_dir/bin/streamscale" ]; then
    if [ "$do_build" = 0 ]; then
        echo "install.sh: no binaries in $build_dir/bin (build first, or drop --no-build)" >&2
        exit 1
    fi
    say "building ($build_dir)"
    "$root/deploy/deps.sh" build
    cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSS_TESTS=OFF >/dev/null
    cmake --build "$build_dir" -j"$(nproc)" >/dev/null
fi

say "binaries -> $D$bindir"
install -d -m 0755 "$D$bindir"
for b in $bins; do
    install -m 0755 "$build_dir/bin/$b" "$D$bindir/$b.new"
    mv -f "$D$bindir/$b.new" "$D$bindir/$b"   # atomic: a running daemon keeps its old file
done

say "dashboard, examples, Grafana dashboard -> $D$sharedir; docs -> $D$docdir"
rm -rf "$D$sharedir/web.new"
install -d -m 0755 "$D$sharedir" "$D$sharedir/examples" "$D$docdir"
cp -R "$root/web" "$D$sharedir/web.new"
find "$D$sharedir/web.new" -type d -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
rm -rf "$D$sharedir/web"
mv "$D$sharedir/web.new" "$D$sharedir/web"
# Redis extras (docs/OPERATIONS.md): ACL users, a TLS tunnel and its unit
for f in "$root"/deploy/*.conf.example "$root/deploy/redis.conf" "$root/deploy/redis-acl.conf" \
         "$root/deploy/stunnel-redis.conf" "$root/deploy/streamscale-redis-tunnel.service"; do
    install -m 0644 "$f" "$D$sharedir/examples/$(basename "$f")"
done
install -m 0644 "$root/deploy/grafana-dashboard.json" "$D$sharedir/grafana-dashboard.json"
install -m 0644 "$root/README.md" "$D$docdir/README.md"
for f in "$root"/docs/*.md; do install -m 0644 "$f" "$D$docdir/$(basename "$f")"; done

say "the system user $user"
install -d -m 0755 "$D$sysusersdir" "$D$tmpfilesdir"
cat >"$D$sysusersdir/streamscale.conf" <<EOF
# streamscale: the user both daemons run as (installed by deploy/install.sh)
u $user - "streamscale video encoding" $statedir /usr/sbin/nologin
EOF
cat >"$D$tmpfilesdir/streamscale.conf" <<EOF
# streamscale state: scratch space, file:// outputs, uploads (deploy/install.sh)
d $statedir         0750 $user $user -
d $statedir/scratch 0750 $user $user -
d $statedir/out     0750 $user $user -
d $statedir/uploads 0750 $user $user -
EOF
chmod 0644 "$D$sysusersdir/streamscale.conf" "$D$tmpfilesdir/streamscale.conf"
if [ -n "$D" ]; then
    install -d -m 0755 "$D/etc"
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers --root="$D" "$D$sysusersdir/streamscale.conf"
    fi
elif ! getent passwd "$user" >/dev/null; then
    if command -v systemd-sysusers >/dev/null; then
        systemd-sysusers "$sysusersdir/streamscale.conf"
    else
        useradd --system --user-group --home-dir "$statedir" --no-create-home \
                --shell /usr/sbin/nologin --comment "streamscale video encoding" "$user"
    fi
fi
# chown to the service user/group: by name on this machine; with --destdir
# by the numbers in the staged root's passwd/group (left alone without them)
own() {   # own USER|root GROUP FILE...
    local u=$1 g=$2 uid gid
    shift 2
    if [ -z "$D" ]; then
        chown "$u:$g" "$@"
        return
    fi
    gid=$(awk -F: -v n="$g" '$1 == n { print $3 }' "$D/etc/group" 2>/dev/null || true)
    [ -n "$gid" ] || return 0
    if [ "$u" = root ]; then
        uid=0
    else
        uid=$(awk -F: -v n="$u" '$1 == n { print $3 }' "$D/etc/passwd")
    fi
    chown "$uid:$gid" "$@" 2>/dev/null || true
}

say "state -> $D$statedir"
install -d -m 0750 "$D$statedir" "$D$statedir/scratch" "$D$statedir/out" "$D$statedir/uploads"
own "$user" "$user" "$D$statedir" "$D$statedir/scratch" "$D$statedir/out" "$D$statedir/uploads"

say "configuration -> $D$etcdir (existing files are kept)"
install -d -m 0750 "$D$etcdir"
own root "$user" "$D$etcdir"
edit_prefix() {   # the examples name /usr/local; follow --prefix
    if [ "$prefix" = /usr/local ]; then cat; else sed "s#/usr/local/#$prefix/#g"; fi
}
for c in coordinator worker; do
    if [ ! -e "$D$etcdir/$c.conf" ]; then
        edit_prefix <"$root/deploy/$c.conf.example" >"$D$etcdir/$c.conf"
        chmod 0640 "$D$etcdir/$c.conf"
        own root "$user" "$D$etcdir/$c.conf"
        say "  wrote $etcdir/$c.conf (from the example: edit redis, storage, ...)"
    fi
done
if [ ! -e "$D$etcdir/coordinator.env" ]; then
    token=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    umask 077
    printf '# Secrets of the coordinator (systemd EnvironmentFile). Clients send\n# Authorization: Bearer <STREAMSCALE_API_TOKEN>.\nSTREAMSCALE_API_TOKEN=%s\n# STREAMSCALE_WEBHOOK_SECRET=\n' \
        "$token" >"$D$etcdir/coordinator.env"
    umask 022
    chmod 0640 "$D$etcdir/coordinator.env"
    own root "$user" "$D$etcdir/coordinator.env"
    say "  wrote $etcdir/coordinator.env with a new random API token"
fi
if [ ! -e "$D$etcdir/worker.env" ]; then
    umask 077
    printf '# Secrets of the worker (systemd EnvironmentFile), e.g. S3 keys:\n# AWS_ACCESS_KEY_ID=\n# AWS_SECRET_ACCESS_KEY=\n' >"$D$etcdir/worker.env"
    umask 022
    chmod 0640 "$D$etcdir/worker.env"
    own root "$user" "$D$etcdir/worker.env"
fi

say "systemd units -> $D$unitdir"
install -d -m 0755 "$D$unitdir"
for u in $units; do
    sed -e "s#/usr/local/bin/#$bindir/#g" -e "s#/usr/local/share/#$prefix/share/#g" \
        "$root/deploy/$u" >"$D$unitdir/$u.new"
    chmod 0644 "$D$unitdir/$u.new"
    mv -f "$D$unitdir/$u.new" "$D$unitdir/$u"
done
if systemd_running; then
    systemctl daemon-reload
    command -v systemd-tmpfiles >/dev/null && systemd-tmpfiles --create "$tmpfilesdir/streamscale.conf" || true
fi

cat <<EOF

streamscale is installed${D:+ under $D}. Next:
  1. edit $etcdir/coordinator.conf and $etcdir/worker.conf (redis, storage)
  2. systemctl enable --now streamscale-coordinator   (API, dashboard, /metrics)
     systemctl enable --now streamscale-worker        (on every encoding machine)
  3. the API token is in $etcdir/coordinator.env; the dashboard is at http://<listen>/
Operations guide: $docdir/OPERATIONS.md
EOF
