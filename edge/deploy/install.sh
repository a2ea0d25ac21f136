#!/usr/bin/env bash
# fer-edge installer: Raspberry Pi OS Bookworm/Trixie (aarch64), plain Debian or Ubuntu.
#
#   sudo ./install.sh                        install or upgrade: /opt/fer-edge, /etc/fer-edge/edge.toml,
#                                            /var/lib/fer-edge, user fer-edge (video group), fer-edge.service
#   sudo ./install.sh --uninstall            remove all of it (--keep-data keeps the config and event log)
#   ./install.sh --prefix DIR --no-systemd   everything under DIR, no user, no unit, no root needed
#   ./install.sh --status [--prefix DIR]     what is installed
#
# Options: --wheels DIR (offline: pip --no-index --find-links DIR), --config FILE (install this edge.toml),
# --python PY, --runtime auto|litert|tflite-runtime, --with-mqtt, --no-apt, --user NAME, --keep-releases N.
#
# Upgrades build a new release next to the running one (DIR/releases/<id>) and switch the
# DIR/current symlink only once it passed its checks, so a failed run changes nothing. The config
# is never overwritten (a newer default lands beside it as edge.toml.new) and the event log stays.
set -euo pipefail
umask 022
export LC_ALL=C PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

PROG=install.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "$PROG: $*"; }
die() { echo "$PROG: error: $*" >&2; exit 2; }    # bad input: bundle, option, Python; retrying cannot help
fail() { echo "$PROG: error: $*" >&2; exit 1; }   # the environment: apt, pip, network; a retry may help
usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

PREFIX="" SYSTEMD=1 APT=1 ACTION=install KEEP_DATA=0 PYTHON=python3 WHEELS="" CONFIG_SRC=""
SERVICE_USER=fer-edge RUNTIME=auto MQTT=0 KEEP_RELEASES=2
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a folder}; shift ;;
        --prefix=*) PREFIX=${1#*=} ;;
        --no-systemd) SYSTEMD=0 ;;
        --no-apt) APT=0 ;;
        --uninstall) ACTION=uninstall ;;
        --keep-data) KEEP_DATA=1 ;;
        --status) ACTION=status ;;
        --python) PYTHON=${2:?--python needs an interpreter}; shift ;;
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift ;;
        --config) CONFIG_SRC=${2:?--config needs a file}; shift ;;
        --user) SERVICE_USER=${2:?--user needs a name}; shift ;;
        --runtime) RUNTIME=${2:?--runtime needs auto, litert or tflite-runtime}; shift ;;
        --with-mqtt) MQTT=1 ;;
        --keep-releases) KEEP_RELEASES=${2:?}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case "$RUNTIME" in auto|litert|tflite-runtime) ;; *) die "--runtime must be auto, litert or tflite-runtime" ;; esac

# ---- layout ---------------------------------------------------------------------------------------
if [ -n "$PREFIX" ]; then
    PREFIX=$(realpath -m -- "$PREFIX")
    APP=$PREFIX ETC=$PREFIX/etc STATE=$PREFIX/var/lib/fer-edge
else
    APP=/opt/fer-edge ETC=/etc/fer-edge STATE=/var/lib/fer-edge
fi
UNIT=/etc/systemd/system/fer-edge.service
RECORD=$APP/.install-record
CONFIG=$ETC/edge.toml

record_get() { [ -f "$RECORD" ] && sed -n "s/^$1=//p" "$RECORD" | tail -n 1 || true; }

status() {
    if [ ! -L "$APP/current" ]; then
        echo "$PROG: status: not installed at $APP"
        return 0
    fi
    local env release service=""
    release=$(basename "$(readlink "$APP/current")")
    env=$APP/current/bundle.env
    # shellcheck disable=SC1090
    (. "$env"; printf '%s' "$PROG: status: fer-edge $VERSION ($MODEL/$ARTIFACT) release $release at $APP;") || true
    printf ' config %s; events %s; runtime %s; ' "$CONFIG" "$STATE" "$(cat "$APP/current/runtime" 2>/dev/null || echo '?')"
    if [ "$(record_get SYSTEMD)" = 1 ] && command -v systemctl >/dev/null; then
        service=$(systemctl is-active fer-edge.service 2>/dev/null || true)
        echo "service fer-edge: ${service:-unknown} ($(systemctl is-enabled fer-edge.service 2>/dev/null || true))"
    else
        echo "service: none (--no-systemd); run: $APP/venv/bin/fer-edge run --config $CONFIG"
    fi
}

# ---- uninstall ------------------------------------------------------------------------------------
uninstall() {
    [ -f "$RECORD" ] || [ -L "$APP/current" ] || die "nothing installed at $APP (no $RECORD)"
    local systemd_used user_created apt_added
    systemd_used=$(record_get SYSTEMD) user_created=$(record_get USER_CREATED) apt_added=$(record_get APT_ADDED)
    if [ "$systemd_used" = 1 ]; then
        [ "$(id -u)" = 0 ] || die "uninstalling the service needs root (sudo)"
        systemctl disable --now fer-edge.service >/dev/null 2>&1 || true
        rm -f "$UNIT"
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
    if [ -n "$user_created" ] && id "$user_created" >/dev/null 2>&1; then
        userdel "$user_created" >/dev/null 2>&1 || say "warning: could not remove user $user_created"
        getent group "$user_created" >/dev/null 2>&1 && groupdel "$user_created" >/dev/null 2>&1 || true
    fi
    if [ -n "$apt_added" ] && command -v apt-mark >/dev/null; then
        # shared system packages are not removed (other software may use them); marking them
        # automatic lets `apt autoremove` take them once nothing needs them
        # shellcheck disable=SC2086
        apt-mark auto $apt_added >/dev/null 2>&1 || true
        say "apt packages it added are marked automatic ($apt_added): 'apt autoremove' removes them"
    fi
    rm -rf -- "$APP/releases" "$APP/current" "$APP/venv" "$APP/models" "$APP/demo" "$APP/.staging" "$RECORD"
    if [ "$KEEP_DATA" = 0 ]; then
        rm -f -- "$CONFIG" "$CONFIG.new" "$CONFIG".bak-* "$CONFIG".rejected-*
        rm -rf -- "$STATE"
        rmdir -- "$ETC" 2>/dev/null || true
        if [ -n "$PREFIX" ]; then rmdir -p -- "$PREFIX/var/lib" 2>/dev/null || true; fi
    else
        say "kept $CONFIG and $STATE (--keep-data)"
    fi
    rmdir -- "$APP" 2>/dev/null || true
    say "uninstalled fer-edge from $APP"
}

case "$ACTION" in
    status) status; exit 0 ;;
    uninstall) uninstall; exit 0 ;;
esac

# ---- preflight: nothing is changed until every check passed ---------------------------------------
cd "$HERE"
[ -f SHA256SUMS ] && [ -f bundle.env ] || die "$HERE is not a fer-edge bundle (no SHA256SUMS or bundle.env)"
command -v sha256sum >/dev/null || die "sha256sum (coreutils) is missing"
if ! checked=$(sha256sum --strict -c SHA256SUMS 2>&1); then
    bad=$(echo "$checked" | grep -v ': OK$' | grep -v '^sha256sum: WARNING' | sed 's/: FAILED.*//' | xargs)
    die "bundle is corrupt or tampered with, sha256 mismatch: ${bad:-see SHA256SUMS}; nothing was installed"
fi
unlisted=$(find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | comm -23 - <(sed 's/^[0-9a-f]*  //' SHA256SUMS | sort) || true)
[ -z "$unlisted" ] || die "bundle holds files not in SHA256SUMS (tampered?): $(echo "$unlisted" | tr '\n' ' ')- nothing was installed"
# shellcheck disable=SC1091
. ./bundle.env
MIN_PYTHON=${MIN_PYTHON:-3.11}

if [ "$SYSTEMD" = 1 ]; then
    [ "$(id -u)" = 0 ] || die "installing the service needs root: sudo $0 (or --prefix DIR --no-systemd)"
    [ -d /run/systemd/system ] || die "systemd is not running here; use --no-systemd (and --prefix DIR)"
fi
if [ "$APT" = 1 ] && { [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; }; then
    APT=0  # not root or not Debian: use what is there
fi
[ -z "$WHEELS" ] || [ -d "$WHEELS" ] || die "--wheels $WHEELS is not a folder"
[ -z "$WHEELS" ] || WHEELS=$(cd "$WHEELS" && pwd)
[ -z "$CONFIG_SRC" ] || [ -f "$CONFIG_SRC" ] || die "--config $CONFIG_SRC does not exist"
[ -z "$CONFIG_SRC" ] || CONFIG_SRC=$(cd "$(dirname "$CONFIG_SRC")" && pwd)/$(basename "$CONFIG_SRC")

python_ok() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info[:2] >= tuple(map(int, '$MIN_PYTHON'.split('.'))) else 1)" 2>/dev/null
}
if command -v "$PYTHON" >/dev/null 2>&1; then
    PYVER=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) \
        || die "$PYTHON does not run"
    python_ok "$PYTHON" || die "Python $PYVER ($PYTHON) is too old: fer-edge needs Python >= $MIN_PYTHON (Raspberry Pi OS Bookworm or newer); nothing was installed"
elif [ "$APT" = 0 ]; then
    die "$PYTHON not found: install Python >= $MIN_PYTHON; nothing was installed"
fi

# ---- rollback on failure --------------------------------------------------------------------------
FRESH=0; [ -L "$APP/current" ] || FRESH=1
CREATED=()     # paths this run created, removed again if it fails
STAGE=""
USER_NEW=""
DONE=0
cleanup() {
    local rc=$?
    if [ "$DONE" = 1 ]; then return; fi
    if [ -n "$STAGE" ]; then rm -rf -- "$STAGE"; fi
    if [ "$FRESH" = 1 ]; then
        local i
        for ((i=${#CREATED[@]}-1; i>=0; i--)); do rm -rf -- "${CREATED[$i]}"; done
        if [ -n "$USER_NEW" ]; then
            systemctl disable fer-edge.service >/dev/null 2>&1 || true
            userdel "$USER_NEW" >/dev/null 2>&1 || true
        fi
    fi
    [ "$rc" = 0 ] || echo "$PROG: install failed (exit $rc); $( [ "$FRESH" = 1 ] && echo 'nothing was left behind' || echo 'the running release is unchanged')" >&2
}
trap cleanup EXIT
mkdir_tracked() {  # mkdir -p, remembering each folder it created
    local d=$1 missing=()
    while [ ! -e "$d" ]; do missing+=("$d"); d=$(dirname "$d"); done
    mkdir -p -- "$1"
    local i; for ((i=${#missing[@]}-1; i>=0; i--)); do CREATED+=("${missing[$i]}"); done
}

# ---- apt: python3, venv, numpy, opencv, picamera2 where the archive has them ----------------------
APT_ADDED=$(record_get APT_ADDED)
if [ "$APT" = 1 ]; then
    want=()
    for pkg in python3 python3-venv python3-pip python3-numpy python3-opencv python3-picamera2; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || want+=("$pkg")
    done
    if [ ${#want[@]} -gt 0 ]; then
        # refresh lists unless they are recent (python3-picamera2 exists only in Raspberry Pi OS's archive,
        # so "no candidate" alone is no reason to update on every run)
        if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -360 2>/dev/null | head -n 1)" ]; then
            say "apt: updating package lists"
            apt-get update -qq || say "warning: apt-get update failed; using the lists already there"
        fi
        avail=()
        for pkg in "${want[@]}"; do
            cand=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: //p')
            if [ -n "$cand" ] && [ "$cand" != "(none)" ]; then avail+=("$pkg"); fi
        done
        if [ ${#avail[@]} -gt 0 ]; then
            say "apt: installing ${avail[*]}"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${avail[@]}" >/dev/null \
                || fail "apt-get install ${avail[*]} failed"
            APT_ADDED=$(echo "$APT_ADDED ${avail[*]}" | xargs -n1 | sort -u | xargs)
        fi
    fi
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found after apt"
    python_ok "$PYTHON" || die "Python $("$PYTHON" -V 2>&1) is too old: fer-edge needs >= $MIN_PYTHON; nothing was installed"
fi
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null \
    || die "$PYTHON cannot create virtual environments: install python3-venv (apt install python3-venv)"

# ---- build the release in a staging folder --------------------------------------------------------
mkdir_tracked "$APP/releases"
RELEASE=$BUNDLE_ID-$(date -u +%Y%m%dT%H%M%SZ)
REL=$APP/releases/$RELEASE
# a venv cannot move, so the release is built at its final path; until `current` points at it,
# a failure removes it (STAGE) and the running release never notices
STAGE=$REL
mkdir -p "$REL"
say "installing fer-edge $VERSION ($MODEL/$ARTIFACT) into $REL with $PYTHON ($("$PYTHON" -V 2>&1))"
cp -R models "$REL/models"
if [ -d demo ]; then cp -R demo "$REL/demo"; fi
cp bundle.env install.sh "$REL/"
cp -R systemd config "$REL/"

"$PYTHON" -m venv --system-site-packages "$REL/venv"
# the installed CLI's default config (fer-edge detect/run/validate-config without --config; edge/config_source.py)
echo "CONFIG=$CONFIG" > "$REL/venv/fer-edge-install.env"
VPY=$REL/venv/bin/python
PIP=("$VPY" -m pip install -q --find-links "$HERE/wheels")
OFFLINE=0
if [ -n "$WHEELS" ]; then OFFLINE=1; PIP+=(--no-index --find-links "$WHEELS"); fi
if ls wheels/*.whl 2>/dev/null | grep -qv '/fer_edge-'; then OFFLINE=1; PIP+=(--no-index); fi
[ "$OFFLINE" = 0 ] || say "offline: pip uses only the bundled wheels${WHEELS:+ and $WHEELS}"

probe_numpy() { "$VPY" -c 'import numpy; print(numpy.__version__)' 2>/dev/null || true; }
NUMPY=$(probe_numpy)
CONSTRAINTS=$REL/constraints.txt
: > "$CONSTRAINTS"
# apt's numpy (seen through --system-site-packages) must stay: a pip numpy 2 over it breaks
# tflite-runtime and apt's python3-opencv
if [ -n "$NUMPY" ]; then echo "numpy==$NUMPY" > "$CONSTRAINTS"; fi
say "numpy: ${NUMPY:-none yet}"

"${PIP[@]}" --no-deps "$HERE"/wheels/fer_edge-*.whl

MODEL_CHECK='
import sys, numpy as np, cv2
from edge.vision.classifier import Classifier
c = Classifier(sys.argv[1], sys.argv[2])
_, h, w, ch = c.input_shape
p = c.predict(np.full((2, h, w, ch), 128, np.uint8))
assert p.shape == (2, len(c.labels)) and abs(float(p[0].sum()) - 1.0) < 0.1, p
assert not cv2.CascadeClassifier(sys.argv[3]).empty(), "cannot load the Haar cascade"
print(c.runtime, np.__version__, cv2.__version__)
'
model_check() { "$VPY" -c "$MODEL_CHECK" "$REL/models/manifest.json" "$ARTIFACT" "$REL/models/haarcascade_frontalface_default.xml"; }

# opencv: apt's python3-opencv when it is there, else pip's headless build
if ! "$VPY" -c 'import cv2; cv2.CascadeClassifier' 2>/dev/null; then
    say "opencv: not found, installing opencv-python-headless from pip"
    "${PIP[@]}" -c "$CONSTRAINTS" "opencv-python-headless>=4.8,<5" || fail "cannot install opencv-python-headless"
    [ -n "$NUMPY" ] || { NUMPY=$(probe_numpy); [ -z "$NUMPY" ] || echo "numpy==$NUMPY" > "$CONSTRAINTS"; }
else
    say "opencv: $("$VPY" -c 'import cv2; print(cv2.__version__, "from", cv2.__file__)')"
fi

# the TFLite runtime that fits this numpy: tflite-runtime 2.14 imports only with numpy 1.x,
# current ai-edge-litert wants numpy 2
case "$RUNTIME" in
    litert) candidates=(litert) ;;
    tflite-runtime) candidates=(tflite-runtime) ;;
    *) if [ -z "$NUMPY" ]; then candidates=(litert tflite-runtime)
       elif [ "${NUMPY%%.*}" -lt 2 ]; then candidates=(tflite-runtime litert)
       else candidates=(litert); fi ;;
esac
CHOSEN="" check_output=""
for candidate in "${candidates[@]}"; do
    case "$candidate" in
        litert) spec=(ai-edge-litert) module=ai_edge_litert ;;
        tflite-runtime) spec=("tflite-runtime>=2.13"); [ -n "$NUMPY" ] || spec+=("numpy<2"); module=tflite_runtime ;;
    esac
    if ! "$VPY" -c "import $module.interpreter" 2>/dev/null; then
        say "runtime: installing ${spec[*]} (numpy ${NUMPY:-from pip})"
        if ! "${PIP[@]}" -c "$CONSTRAINTS" "${spec[@]}"; then
            say "runtime: ${spec[0]} has no install for this Python/numpy/architecture, trying the next"
            continue
        fi
    fi
    if check_output=$(model_check 2>&1); then CHOSEN=$candidate; break; fi
    say "runtime: $candidate installed but the model does not run: $(echo "$check_output" | tail -n 1)"
    "$VPY" -m pip uninstall -q -y "${spec[0]}" >/dev/null 2>&1 || true
done
[ -n "$CHOSEN" ] || fail "no TFLite runtime works here (tried ${candidates[*]} with numpy ${NUMPY:-none}): $(echo "$check_output" | tail -n 1)"
echo "$check_output" | tail -n 1 | awk '{print $1}' > "$REL/runtime"
say "model check: $(echo "$check_output" | tail -n 1 | awk '{print $1 " with numpy " $2 ", opencv " $3}')"
if [ "$MQTT" = 1 ]; then
    "${PIP[@]}" -c "$CONSTRAINTS" "paho-mqtt>=2.0" || fail "cannot install paho-mqtt"
fi
"$REL/venv/bin/fer-edge" --help >/dev/null || die "the installed fer-edge does not start"

# ---- render the config and the unit for this layout -----------------------------------------------
render() {  # default paths -> this layout
    sed -e "s#/opt/fer-edge#$APP#g" -e "s#/var/lib/fer-edge#$STATE#g" -e "s#/etc/fer-edge/edge.toml#$CONFIG#g" \
        -e "s#/etc/fer-edge#$ETC#g" "$1"
}
render config/edge.toml > "$REL/config/edge.toml"
render systemd/fer-edge.service | sed -e "s#^User=.*#User=$SERVICE_USER#" -e "s#^Group=.*#Group=$SERVICE_USER#" \
    > "$REL/systemd/fer-edge.service"
# check the default config against this release's own models before anything points at it
"$REL/venv/bin/fer-edge" validate-config "$REL/config/edge.toml" \
    --set "model.manifest=$REL/models/manifest.json" \
    --set "detector.cascade=$REL/models/haarcascade_frontalface_default.xml" >/dev/null \
    || die "the bundled config does not validate"

# ---- switch: current -> this release ---------------------------------------------------------------
PREVIOUS=""; [ -L "$APP/current" ] && PREVIOUS=$(readlink "$APP/current")
ln -sfn "releases/$RELEASE" "$APP/.current.tmp"
mv -Tf "$APP/.current.tmp" "$APP/current"
if [ "$FRESH" = 1 ]; then CREATED+=("$APP/current"); fi
for link in venv models demo; do
    if [ ! -L "$APP/$link" ]; then
        rm -rf -- "${APP:?}/$link"
        ln -s "current/$link" "$APP/$link"
        if [ "$FRESH" = 1 ]; then CREATED+=("$APP/$link"); fi
    fi
done
STAGE=""

# config: never overwrite the user's
mkdir_tracked "$ETC"
CONFIG_BACKUP=""  # the config --config replaced: put back if this release is rolled back
if [ -n "$CONFIG_SRC" ]; then
    if [ -f "$CONFIG" ] && ! cmp -s "$CONFIG_SRC" "$CONFIG"; then
        CONFIG_BACKUP="$CONFIG.bak-$(date -u +%Y%m%dT%H%M%SZ)"
        cp -p "$CONFIG" "$CONFIG_BACKUP"; say "config: saved the old one beside it ($(basename "$CONFIG_BACKUP"))"
    fi
    install -m 0640 "$CONFIG_SRC" "$CONFIG.tmp" && mv -f "$CONFIG.tmp" "$CONFIG"
    say "config: installed $CONFIG_SRC as $CONFIG"
elif [ -f "$CONFIG" ]; then
    if cmp -s "$REL/config/edge.toml" "$CONFIG"; then rm -f "$CONFIG.new"
    else cp "$REL/config/edge.toml" "$CONFIG.new"; say "config: kept $CONFIG (this release's default is $CONFIG.new)"; fi
else
    install -m 0640 "$REL/config/edge.toml" "$CONFIG"
    if [ "$FRESH" = 1 ]; then CREATED+=("$CONFIG"); fi
    say "config: wrote $CONFIG"
fi
mkdir_tracked "$STATE"

# ---- service user and systemd unit ----------------------------------------------------------------
USER_CREATED=$(record_get USER_CREATED)
if [ "$SYSTEMD" = 1 ]; then
    if ! id "$SERVICE_USER" >/dev/null 2>&1; then
        nologin=$(command -v nologin || echo /usr/sbin/nologin)
        useradd --system --user-group --no-create-home --home-dir "$STATE" --shell "$nologin" \
            --comment "fer-edge camera daemon" "$SERVICE_USER"
        USER_CREATED=$SERVICE_USER USER_NEW=$SERVICE_USER
        say "user: created system user $SERVICE_USER"
    fi
    for group in video render; do  # the camera (/dev/video*, /dev/media*) and, on Pi 5, /dev/dri
        if getent group "$group" >/dev/null; then usermod -aG "$group" "$SERVICE_USER"; fi
    done
    chown root:"$SERVICE_USER" "$CONFIG" && chmod 0640 "$CONFIG"
    chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE"
    if [ "$FRESH" = 1 ] && [ ! -e "$UNIT" ]; then CREATED+=("$UNIT"); fi
    install -m 0644 "$REL/systemd/fer-edge.service" "$UNIT.tmp" && mv -f "$UNIT.tmp" "$UNIT"
    systemctl daemon-reload
    systemctl enable fer-edge.service >/dev/null 2>&1
    if ! systemctl restart fer-edge.service; then
        journal=$(journalctl -u fer-edge.service -n 5 --no-pager 2>/dev/null | tail -n 5 || true)
        if [ -n "$PREVIOUS" ]; then
            ln -sfn "$PREVIOUS" "$APP/.current.tmp" && mv -Tf "$APP/.current.tmp" "$APP/current"
            restored=""
            if [ -n "$CONFIG_BACKUP" ]; then  # the previous release ran with the previous config
                cp -p "$CONFIG" "$CONFIG.rejected-${CONFIG_BACKUP##*.bak-}"
                cp -p "$CONFIG_BACKUP" "$CONFIG.tmp" && mv -f "$CONFIG.tmp" "$CONFIG"
                restored=" and to the previous config (the new one is $CONFIG.rejected-${CONFIG_BACKUP##*.bak-})"
            fi
            systemctl restart fer-edge.service || true
            rm -rf -- "$REL"
            DONE=1
            die "fer-edge.service did not start with release $RELEASE, rolled back to $(basename "$PREVIOUS")$restored: $journal"
        fi
        say "warning: fer-edge.service did not start (fix $CONFIG, then: systemctl restart fer-edge): $journal"
    fi
fi

{
    echo "# written by fer-edge install.sh; used by --uninstall and --status"
    echo "PREFIX=$PREFIX"; echo "ETC=$ETC"; echo "STATE=$STATE"; echo "SYSTEMD=$SYSTEMD"
    echo "USER_CREATED=$USER_CREATED"; echo "APT_ADDED=$APT_ADDED"; echo "RELEASE=$RELEASE"
} > "$RECORD.tmp" && mv -f "$RECORD.tmp" "$RECORD"
DONE=1

# keep the running release and the one before it (for a manual rollback); drop the rest
ls -1dt "$APP"/releases/*/ 2>/dev/null | tail -n +"$((KEEP_RELEASES + 1))" | while read -r old; do
    [ "$(readlink -f "$old")" = "$(readlink -f "$APP/current")" ] || rm -rf -- "$old"
done
say "installed fer-edge $VERSION ($MODEL/$ARTIFACT, runtime $(cat "$REL/runtime")) at $APP"
status
