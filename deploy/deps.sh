#!/bin/sh
# Install the Debian packages listed in deploy/packages/<set>.txt that are
# missing. Usage: deploy/deps.sh build [run] [test] ...
# Runs apt-get only when something is missing (sudo when not root).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
missing=""
for set in "$@"; do
    list="$here/packages/$set.txt"
    [ -f "$list" ] || { echo "deps: no package list $list" >&2; exit 2; }
    for p in $(sed -e 's/#.*//' "$list"); do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
            case " $missing " in *" $p "*) ;; *) missing="$missing $p" ;; esac
        fi
    done
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
