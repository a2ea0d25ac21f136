#!/bin/bash
# fer-edge first boot: install the bundle that `fer-edge flash-prepare` put next to this script.
#
# Runs once the network is up, from fer-edge-firstboot.service (which firstrun.sh enables on
# Raspberry Pi OS Bookworm, with `firstboot.sh --enable-unit`) or from cloud-init's runcmd (Trixie
# and 2025+ images). It checks the bundle's sha256, runs install.sh with the arguments in
# install.args (and edge.toml, if one was given), retries while apt or pip cannot reach the network,
# and disables itself after a success. A failure leaves fer-edge-firstboot.service enabled (and
# enables it when cloud-init started this: runcmd runs only once), so the next boot tries again.
# Log: /var/log/fer-edge-firstboot.log.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=${FER_EDGE_ROOT:-}            # tests run this against a folder instead of /
LOG=${FER_EDGE_FIRSTBOOT_LOG:-$ROOT/var/log/fer-edge-firstboot.log}
DONE_MARK=$ROOT/var/lib/fer-edge-firstboot.done
UNIT_DIR=$ROOT/etc/systemd/system
ATTEMPTS=${FER_EDGE_FIRSTBOOT_ATTEMPTS:-5}

enable_unit() {  # the one-shot unit that runs this script at every boot until an install succeeded
    mkdir -p "$UNIT_DIR/multi-user.target.wants"
    cat > "$UNIT_DIR/fer-edge-firstboot.service" <<UNIT
[Unit]
Description=fer-edge first-boot install (fer-edge flash-prepare)
Wants=network-online.target
After=network-online.target time-sync.target
ConditionPathExists=!/var/lib/fer-edge-firstboot.done

[Service]
Type=oneshot
ExecStart=/bin/bash $HERE/firstboot.sh
TimeoutStartSec=infinity
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
UNIT
    ln -sf ../fer-edge-firstboot.service "$UNIT_DIR/multi-user.target.wants/fer-edge-firstboot.service"
}
if [ "${1:-}" = --enable-unit ]; then enable_unit; exit 0; fi  # firstrun.sh: early, offline, before the network

mkdir -p "$(dirname "$LOG")" "$(dirname "$DONE_MARK")"
exec > >(tee -a "$LOG") 2>&1
echo "fer-edge firstboot: $(date -u +%FT%TZ) starting from $HERE"
if [ -e "$DONE_MARK" ]; then echo "fer-edge firstboot: already done ($DONE_MARK)"; exit 0; fi
# (the braces keep 2>/dev/null to this line: on exec itself it would silence install.sh's errors for good)
{ exec 9>"${ROOT:-}/run/fer-edge-firstboot.lock"; } 2>/dev/null || exec 9>"$LOG.lock"
flock 9  # firstrun's unit and cloud-init may both start this

disable_self() {
    rm -f "$UNIT_DIR/multi-user.target.wants/fer-edge-firstboot.service" "$UNIT_DIR/fer-edge-firstboot.service"
    if [ -z "$ROOT" ] && command -v systemctl >/dev/null; then systemctl daemon-reload --no-block 2>/dev/null || true; fi
}

shopt -s nullglob
bundles=("$HERE"/fer-edge-*.tar.gz)
if [ ${#bundles[@]} -ne 1 ]; then echo "fer-edge firstboot: error: expected one fer-edge-*.tar.gz in $HERE"; exit 2; fi
bundle=${bundles[0]}
if [ -f "$bundle.sha256" ] && ! (cd "$HERE" && sha256sum --quiet -c "$(basename "$bundle").sha256"); then
    echo "fer-edge firstboot: error: $bundle does not match its .sha256 (corrupt card?)"; exit 2
fi
args=()
if [ -f "$HERE/install.args" ]; then
    while IFS= read -r line; do [ -z "$line" ] || args+=("$line"); done < "$HERE/install.args"
fi
if [ -f "$HERE/edge.toml" ]; then args+=(--config "$HERE/edge.toml"); fi

work=$(mktemp -d "${ROOT:-}/var/tmp/fer-edge-firstboot.XXXXXX" 2>/dev/null || mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -xzf "$bundle" -C "$work" || { echo "fer-edge firstboot: error: cannot unpack $bundle"; exit 2; }
installer=("$work"/*/install.sh)

for attempt in $(seq 1 "$ATTEMPTS"); do
    echo "fer-edge firstboot: attempt $attempt/$ATTEMPTS: install.sh ${args[*]}"
    "${installer[0]}" "${args[@]}"
    rc=$?
    if [ $rc -eq 0 ]; then
        touch "$DONE_MARK"
        disable_self
        echo "fer-edge firstboot: done"
        exit 0
    fi
    if [ $rc -eq 2 ]; then break; fi  # a bad bundle, Python or option: retrying cannot help
    sleep "${FER_EDGE_FIRSTBOOT_RETRY_SECONDS:-30}"  # the network (apt, pip) may not be there yet
done
enable_unit  # already there when the unit started this; cloud-init's runcmd would not run it again
echo "fer-edge firstboot: error: install failed (exit $rc);" \
    "fer-edge-firstboot.service runs it again at the next boot (log: $LOG)"
exit 1
