#!/bin/sh
# preStop hook for media pods: wait until no Twilio Media Stream is connected, then return so
# the kubelet sends SIGTERM.
#
# Two phases of a drain: this hook lets calls FINISH (while it runs the pod is Terminating, it
# has left the Service endpoints, and new calls go to other replicas); the SIGTERM that follows
# MOVES whatever is still live: the media process itself (services/media/__main__.py) then
# refuses new streams, reports /readyz 503, gives live calls MEDIA_DRAIN_S more, and hands
# the rest over (stream.ended with handover, socket closed 1000) so after-stream resumes them
# on another replica with their history. uvicorn's own shutdown (close code 1012) runs only
# after that, so SIGTERM no longer hangs up on callers (tests/e2e/test_media_failover.py).
#
# Active calls are counted as ESTABLISHED TCP connections on MEDIA_PORT in this pod's network
# namespace (/proc/net/tcp{,6}); only sh and grep are needed. Short-lived probe connections can
# show up for a moment, which only delays the exit by one poll.
# Bounded by DRAIN_TIMEOUT_S (keep it below terminationGracePeriodSeconds).
#
# UNTESTED on a cluster (no Docker/Kubernetes on the dev machine); logic checked by reading.
set -u
port_hex=$(printf '%04X' "${MEDIA_PORT:-8020}")
timeout=${DRAIN_TIMEOUT_S:-570}
poll=${DRAIN_POLL_S:-5}
# Give endpoint controllers / load balancers a moment to stop routing new calls here.
sleep "${DRAIN_INITIAL_DELAY_S:-5}"
waited=0
while [ "$waited" -lt "$timeout" ]; do
  active=$(cat /proc/net/tcp /proc/net/tcp6 2>/dev/null \
    | grep -cE "^ *[0-9]+: [0-9A-F]+:${port_hex} [0-9A-F]+:[0-9A-F]+ 01 ")
  if [ "${active:-0}" -eq 0 ]; then
    echo "media-drain: no active streams after ${waited}s"
    exit 0
  fi
  echo "media-drain: ${active} active stream(s), waited ${waited}s"
  sleep "$poll"
  waited=$((waited + poll))
done
echo "media-drain: timeout after ${timeout}s with calls still active"
exit 0
