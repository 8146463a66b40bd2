#!/bin/sh
# hookbox as the package installs it: the service's configuration (/etc/hookbox/hookbox.toml)
# and data (/var/lib/hookbox) unless told otherwise, run as the service's user when started
# by root so that what it writes stays the service's. E.g. `sudo hookbox token create --name
# ci`, `sudo hookbox admin create --username alice`, `sudo hookbox backup /var/backups/h.db`.
set -e
: "${HOOKBOX_CONFIG:=/etc/hookbox/hookbox.toml}"
: "${HOOKBOX_DATA_DIR:=/var/lib/hookbox}"
export HOOKBOX_CONFIG HOOKBOX_DATA_DIR
if [ "$(id -u)" = 0 ]; then
  exec setpriv --reuid=hookbox --regid=hookbox --init-groups --inh-caps=-all \
    /usr/lib/hookbox/hookbox "$@"
fi
exec /usr/lib/hookbox/hookbox "$@"
