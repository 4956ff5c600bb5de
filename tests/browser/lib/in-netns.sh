#!/bin/sh
# Chromium inside the network namespace $CHORUS_NETNS (made by the Rust test that shapes a link):
# playwright drives it over --remote-debugging-pipe, whose file descriptors cross the namespace.
exec ip netns exec "$CHORUS_NETNS" "${CHORUS_CHROMIUM:-/usr/bin/chromium}" "$@"
