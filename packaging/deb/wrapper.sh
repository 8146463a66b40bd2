#!/bin/sh
# hookbox as the package installs it: the service's configuration (/etc/hookbox/hookbox.toml,
# when it is there) and data (/var/lib/hookbox) unless told otherwise, run as the service's
# user when started by root so that what it writes stays the service's. E.g. `sudo hookbox
# token create --name ci`, `sudo hookbox admin create --username alice`, `sudo hookbox backup
# /var/lib/hookbox/backup.db` (a path the hookbox user may write).
set -e
if [ -z "${HOOKBOX_CONFIG:-}" ] && [ -e /etc/hookbox/hookbox.toml ]; then
  export HOOKBOX_CONFIG=/etc/hookbox/hookbox.toml
fi
: "${HOOKBOX_DATA_DIR:=/var/lib/hookbox}"
export HOOKBOX_DATA_DIR
# A reload (SIGHUP) that comes before hookbox listens for it must not end it; hookbox takes
# SIGHUP over as it starts.
trap '' HUP
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=hookbox --regid=hookbox --init-groups --inh-caps=-all \
    /usr/lib/hookbox/hookbox "$@"
fi
exec /usr/lib/hookbox/hookbox "$@"
