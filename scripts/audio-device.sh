#!/usr/bin/env bash
# scripts/audio-device.sh: a private, real-time-paced PortAudio output device for tests and CI.
#
# It runs a private PulseAudio user daemon with one null sink, "gate_sink" (48 kHz, mono, s16le,
# norewinds=1), and an ALSA config that defines "gatefile": a `type file` tee PCM that writes the
# raw bytes the app plays to $PLAYBACK_GATE_TEE_FILE and forwards them to gate_sink. Pulse sets
# the pace. The daemon and all of its state live under the project-local dir $REPO/.audio/
# (git-ignored), or under $PLAYBACK_GATE_AUDIO_DIR if that is set. It never touches a
# developer's own PulseAudio: its socket, pid file, cookie and config are all private.
#
# Usage:
#   eval "$(scripts/audio-device.sh start)"   # install if needed, start or reuse, print exports
#   scripts/audio-device.sh env               # print the exports (does not start anything)
#   scripts/audio-device.sh status            # exit 0 if the daemon is up and gate_sink exists
#   scripts/audio-device.sh stop              # stop the private daemon (no-op if not running)
#
# Only the `export ...` lines go to stdout; all diagnostics go to stderr.
#
# Environment (all optional):
#   PLAYBACK_GATE_AUDIO_DIR       state dir (default: <repo>/.audio)
#   PLAYBACK_GATE_AUDIO_TIMEOUT   seconds to wait for the daemon to become ready (default: 10)
#   PLAYBACK_GATE_NO_INSTALL=1    never run apt-get; fail with exit code 3 if packages are missing
#
# Exit codes:
#   0  success
#   1  `status`: daemon not running or gate_sink missing
#   2  usage error
#   3  required packages missing and cannot install them (not root, or no apt-get)
#   4  apt-get failed
#   5  the daemon did not start or did not become ready within the timeout
#   6  unsupported platform (not Linux)
set -euo pipefail

readonly EXIT_NOT_RUNNING=1
readonly EXIT_USAGE=2
readonly EXIT_MISSING_PACKAGES=3
readonly EXIT_INSTALL_FAILED=4
readonly EXIT_DAEMON_FAILED=5
readonly EXIT_UNSUPPORTED=6

readonly PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins)
readonly SINK=gate_sink
readonly RATE=48000
readonly CHANNELS=1
readonly ALSA_DEVICE=gatefile

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -- "$SCRIPT_DIR/.." && pwd)
D=${PLAYBACK_GATE_AUDIO_DIR:-$REPO/.audio}
TIMEOUT=${PLAYBACK_GATE_AUDIO_TIMEOUT:-10}

log() { printf 'audio-device: %s\n' "$*" >&2; }
die() {
    local code=$1
    shift
    log "error: $*"
    exit "$code"
}

# Resolve all paths. A unix socket path must fit in sun_path (108 bytes), so if the state dir
# is too deep the runtime dir (socket + pid file) moves to a short per-dir path under /tmp.
resolve_paths() {
    mkdir -p -- "$D"
    D=$(cd -- "$D" && pwd)
    RUNTIME_DIR=$D/run
    if ((${#RUNTIME_DIR} + 13 > 100)); then  # 13 = ${#"/pulse/native"}
        local hash
        hash=$(printf '%s' "$D" | sha1sum | cut -c1-12)
        RUNTIME_DIR=${TMPDIR:-/tmp}/playback-gate-$(id -u)-$hash
    fi
    PULSE_DIR=$RUNTIME_DIR/pulse
    SOCKET=$PULSE_DIR/native
    PA_FILE=$D/default.pa
    CLIENT_CONF=$D/client.conf
    ALSA_CONF=$D/asound-gate.conf
    TEE_FILE=$D/played.raw
    PULSE_LOG=$D/pulse.log
    APT_LOG=$D/apt.log
    DAEMON_HOME=$D/home
    ALSA_BASE_CONF=/usr/share/alsa/alsa.conf
}

# Shell-quoted `export` lines for the caller's environment.
print_env() {
    local name value
    for name in XDG_RUNTIME_DIR PULSE_RUNTIME_PATH PULSE_SERVER PULSE_CLIENTCONFIG \
        ALSA_CONFIG_PATH PLAYBACK_GATE_AUDIO_DIR PLAYBACK_GATE_AUDIO_DEVICE \
        PLAYBACK_GATE_TEE_FILE PLAYBACK_GATE_SAMPLERATE PLAYBACK_GATE_CHANNELS; do
        case $name in
            XDG_RUNTIME_DIR) value=$RUNTIME_DIR ;;
            PULSE_RUNTIME_PATH) value=$PULSE_DIR ;;
            PULSE_SERVER) value=unix:$SOCKET ;;
            PULSE_CLIENTCONFIG) value=$CLIENT_CONF ;;
            ALSA_CONFIG_PATH) value=$ALSA_BASE_CONF:$ALSA_CONF ;;
            PLAYBACK_GATE_AUDIO_DIR) value=$D ;;
            PLAYBACK_GATE_AUDIO_DEVICE) value=$ALSA_DEVICE ;;
            PLAYBACK_GATE_TEE_FILE) value=$TEE_FILE ;;
            PLAYBACK_GATE_SAMPLERATE) value=$RATE ;;
            PLAYBACK_GATE_CHANNELS) value=$CHANNELS ;;
        esac
        printf 'export %s=%q\n' "$name" "$value"
    done
}

# Run a command with the private daemon's environment (never the developer's).
with_env() {
    env XDG_RUNTIME_DIR="$RUNTIME_DIR" PULSE_RUNTIME_PATH="$PULSE_DIR" \
        PULSE_SERVER="unix:$SOCKET" PULSE_CLIENTCONFIG="$CLIENT_CONF" \
        HOME="$DAEMON_HOME" "$@"
}

pactl_ok() {
    [[ -S $SOCKET ]] || return 1
    with_env timeout 3 pactl info >/dev/null 2>&1
}

sink_ok() {
    with_env timeout 3 pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx "$SINK"
}

missing_packages() {
    local p status
    for p in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || printf '%s\n' "$p"
    done
}

ensure_packages() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        # Not Debian-like: trust what is on PATH.
        command -v pulseaudio >/dev/null 2>&1 && command -v pactl >/dev/null 2>&1 && return 0
        die "$EXIT_MISSING_PACKAGES" "pulseaudio/pactl not found and this is not a Debian-like" \
            "system; install PortAudio, PulseAudio, its utils and the ALSA pulse plugin yourself."
    fi
    local missing
    missing=$(missing_packages)
    [[ -z $missing ]] && return 0
    # shellcheck disable=SC2086  # word-splitting the package list is intended
    set -- $missing
    if [[ ${PLAYBACK_GATE_NO_INSTALL:-0} == 1 ]] || [[ $(id -u) -ne 0 ]] ||
        ! command -v apt-get >/dev/null 2>&1; then
        die "$EXIT_MISSING_PACKAGES" "missing packages: $*." \
            "Install them with: sudo apt-get install --no-install-recommends $*"
    fi
    log "installing: $* (apt-get, about 10 s; log in $APT_LOG)"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get update -qq >"$APT_LOG" 2>&1; then
        tail -n 20 -- "$APT_LOG" >&2
        die "$EXIT_INSTALL_FAILED" "apt-get update failed"
    fi
    if ! apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "$@" \
        >>"$APT_LOG" 2>&1; then
        tail -n 20 -- "$APT_LOG" >&2
        die "$EXIT_INSTALL_FAILED" "apt-get install $* failed"
    fi
    log "installed in $((SECONDS - t0)) s"
}

write_configs() {
    # The paths are embedded in ALSA strings, a shell command and file-plugin name templates.
    case $D$RUNTIME_DIR in
        *[\'\"%\\]* | *[[:space:]]*)
            die "$EXIT_USAGE" "state dir '$D' must not contain quotes, %, \\ or spaces;" \
                "set PLAYBACK_GATE_AUDIO_DIR to a plain path"
            ;;
    esac
    mkdir -p -- "$PULSE_DIR" "$DAEMON_HOME"
    chmod 700 -- "$RUNTIME_DIR" "$PULSE_DIR"
    # The socket lives in a 0700 dir, so anonymous auth is safe and avoids cookie problems.
    cat >"$PA_FILE.tmp" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$SOCKET
load-module module-null-sink sink_name=$SINK rate=$RATE channels=$CHANNELS format=s16le norewinds=1
set-default-sink $SINK
PA
    mv -f -- "$PA_FILE.tmp" "$PA_FILE"
    # Clients must never autospawn a daemon (it would pick up the developer's config).
    cat >"$CLIENT_CONF.tmp" <<CC
autospawn = no
default-server = unix:$SOCKET
CC
    mv -f -- "$CLIENT_CONF.tmp" "$CLIENT_CONF"
    # The tee: the file gets exactly the bytes the app wrote; gate_sink sets the pace. The pulse
    # slave names its server and sink itself, so it works even if PULSE_SERVER is unset.
    # The file plugin opens its file lazily, at the first write of each newly opened PCM, with
    # O_TRUNC, so each new stream would wipe the previous one (and `truncate false` does not
    # append: it writes to "$TEE_FILE.0001", ".0002", ...). Piping to `cat >>` instead gives
    # O_APPEND semantics: every stream is appended, and truncating the file between tests is
    # clean even while a stream is open (no sparse hole at the old offset). pclose() at
    # snd_pcm_close waits for cat, so the file is complete once the stream is closed.
    cat >"$ALSA_CONF.tmp" <<AC
pcm.$ALSA_DEVICE {
    type file
    slave.pcm {
        type pulse
        server "unix:$SOCKET"
        device "$SINK"
    }
    file "|exec cat >>'$TEE_FILE'"
    format "raw"
}
AC
    mv -f -- "$ALSA_CONF.tmp" "$ALSA_CONF"
}

start_daemon() {
    if pactl_ok; then
        log "reusing running daemon at $SOCKET"
    else
        # A stale daemon (pid alive, socket dead) is ours: its pid file is in our private dir.
        with_env pulseaudio --kill >/dev/null 2>&1 || true
        rm -f -- "$SOCKET" "$PULSE_DIR/pid"
        log "starting private pulseaudio (runtime dir $RUNTIME_DIR)"
        # Root in user mode is fine (it warns); --system is deliberately not used.
        if ! with_env timeout "$TIMEOUT" pulseaudio --daemonize=yes --exit-idle-time=-1 \
            --use-pid-file=yes -n --file="$PA_FILE" \
            --log-target="file:$PULSE_LOG" --log-level=notice >/dev/null 2>&1; then
            log "pulseaudio failed to start; last lines of $PULSE_LOG:"
            tail -n 20 -- "$PULSE_LOG" >&2 2>/dev/null || true
            exit "$EXIT_DAEMON_FAILED"
        fi
    fi
    local deadline=$((SECONDS + TIMEOUT))
    until pactl_ok; do
        if ((SECONDS >= deadline)); then
            log "pulseaudio not ready after ${TIMEOUT}s; last lines of $PULSE_LOG:"
            tail -n 20 -- "$PULSE_LOG" >&2 2>/dev/null || true
            exit "$EXIT_DAEMON_FAILED"
        fi
        sleep 0.05
    done
    if ! sink_ok; then
        log "loading $SINK into the running daemon"
        with_env timeout 3 pactl load-module module-null-sink sink_name=$SINK rate=$RATE \
            channels=$CHANNELS format=s16le norewinds=1 >/dev/null ||
            die "$EXIT_DAEMON_FAILED" "could not load $SINK"
        with_env timeout 3 pactl set-default-sink $SINK >/dev/null || true
    fi
}

cmd_start() {
    [[ $(uname -s) == Linux ]] || die "$EXIT_UNSUPPORTED" "only Linux is supported"
    ensure_packages
    write_configs
    start_daemon
    log "ready: ALSA device '$ALSA_DEVICE' -> pulse sink '$SINK', tee file $TEE_FILE"
    print_env
}

cmd_stop() {
    if [[ -e $PULSE_DIR/pid ]] || [[ -S $SOCKET ]]; then
        with_env timeout 5 pulseaudio --kill >/dev/null 2>&1 || true
        local deadline=$((SECONDS + 5))
        while with_env pulseaudio --check >/dev/null 2>&1 && ((SECONDS < deadline)); do
            sleep 0.05
        done
        rm -f -- "$SOCKET"
        log "stopped"
    else
        log "not running"
    fi
}

cmd_status() {
    if pactl_ok && sink_ok; then
        log "running: socket $SOCKET, sink $SINK, tee file $TEE_FILE"
        return 0
    fi
    log "not running (runtime dir $RUNTIME_DIR)"
    return "$EXIT_NOT_RUNNING"
}

main() {
    local cmd=${1:-}
    case $cmd in
        start | stop | status | env) ;;
        *)
            printf 'usage: %s {start|stop|status|env}\n' "$0" >&2
            exit "$EXIT_USAGE"
            ;;
    esac
    resolve_paths
    # Serialise concurrent invocations on the same state dir (e.g. parallel make jobs).
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$D/.lock"
        flock -w "$((TIMEOUT + 120))" 9 || die "$EXIT_DAEMON_FAILED" "could not lock $D/.lock"
    fi
    case $cmd in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        env) print_env ;;
    esac
}

main "$@"
