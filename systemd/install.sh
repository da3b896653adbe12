#!/usr/bin/env bash
# anxin on a Raspberry Pi (or any Debian bookworm box, arm64 or amd64), in one command, as root:
#
#   sudo systemd/install.sh [--lan IFACE | --no-lan]    install, or bring an install up to date
#   sudo systemd/install.sh --uninstall                 units, venv, broker config removed;
#                                                       /etc/anxin and /var/lib/anxin kept
#   sudo systemd/install.sh --uninstall --purge         ... and config, data and the user too
#
# What it does: Mosquitto, python3-venv and logrotate from apt; a system user `anxin`; a
# venv in /opt/anxin/venv with anxin from the source tree this script is in; /etc/anxin with a
# commented starting config (an existing one is never touched) and the secrets as files for
# systemd's LoadCredential (root only, 0600); data in /var/lib/anxin; Mosquitto with no
# anonymous access, one generated password per user `anxin broker-acl --users` names (the
# gateway, Zigbee2MQTT, each anxin-native device, the speaker) and the access list
# `anxin broker-acl` writes; journald bounded; anxin.service enabled and started.
#
# Running it again changes nothing that is already right: passwords are generated only for
# users that have none, the config is never rewritten, the venv is rebuilt only when the
# source tree changed. Run it again after adding an anxin-native device so the device gets
# its broker user. Tested by tests/test_install.py (into a temporary --root, with a real
# Mosquitto).
#
# Options:
#   --lan IFACE      also listen on this network interface (e.g. wlan0, eth0) so devices on the
#                    home network reach the broker (the default is 127.0.0.1 only); remembered
#   --no-lan         127.0.0.1 only again
#   --python PATH    the interpreter for the venv (default /usr/bin/python3)
#   --root DIR       install into DIR as a self-contained tree instead of / (for tests): every
#                    path written names a place inside DIR, users go to DIR/etc/passwd (which
#                    must exist), packages are checked on this machine, and no service is
#                    touched
# Environment:
#   ANXIN_PIP_ARGS   extra pip arguments, e.g. "-i https://<mirror>/simple" for a PyPI mirror,
#                    or "--no-index --find-links /media/usb/wheels" for an offline install
set -euo pipefail

say() { printf 'anxin-install: %s\n' "$*"; }
die() { printf 'anxin-install: error: %s\n' "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT=""
MODE=install
PURGE=0
LAN_OPT=""      # "" = keep what was chosen before, "none" = localhost only, else an interface
PYTHON=/usr/bin/python3

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT="$2"; shift 2 ;;
    --lan) [ $# -ge 2 ] || die "--lan needs an interface name (e.g. wlan0)"; LAN_OPT="$2"; shift 2 ;;
    --no-lan) LAN_OPT=none; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs a path"; PYTHON="$2"; shift 2 ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see $0 --help)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages, a system user and units): sudo $0 $*"
[ "$PURGE" -eq 0 ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT: no such directory"
  ROOT="$(cd "$ROOT" && pwd)"
  [ "$ROOT" != / ] || ROOT=""
fi
if [ -n "$LAN_OPT" ] && [ "$LAN_OPT" != none ]; then
  [[ "$LAN_OPT" =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || die "--lan $LAN_OPT is not an interface name (ip -br link lists them)"
  [ -e "/sys/class/net/$LAN_OPT" ] || die "--lan $LAN_OPT: no such network interface here (ip -br link lists them)"
fi

OPT="$ROOT/opt/anxin"
VENV="$OPT/venv"
ETC="$ROOT/etc/anxin"
CONFIG="$ETC/anxin.toml"
CRED="$ETC/credentials"
DATA="$ROOT/var/lib/anxin"
UNIT="$ROOT/etc/systemd/system/anxin.service"
JOURNALD="$ROOT/etc/systemd/journald.conf.d/anxin.conf"
MQ="$ROOT/etc/mosquitto"
MQ_CONF="$MQ/conf.d/anxin.conf"
MQ_PASSWD="$MQ/anxin.passwd"
MQ_ACL="$MQ/anxin.acl"

# systemd is asked to do anything only on the real system, and only when it is PID 1's
# manager (not in a container or a chroot): the same test sd_booted() makes.
SYSTEMD=0
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then SYSTEMD=1; fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/passwd"; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group"; }
prefix_args() { if [ -n "$ROOT" ]; then printf '%s\n' --prefix "$ROOT"; fi; }

# Owner, group and mode set every run (cheap, and repairs a hand-made mistake); ids come from
# $ROOT/etc/passwd so a --root tree is owned by its own users.
own() {  # own USER GROUP MODE PATH
  chown "$(uid_of "$1"):$(gid_of "$2")" "$4"
  chmod "$3" "$4"
}

ensure_dir() {  # ensure_dir USER GROUP MODE PATH
  [ -d "$4" ] || mkdir -p "$4"
  own "$@"
}

# put USER GROUP MODE DEST < content: write only if the content differs; return 0 if written.
put() {
  local new="$TMP/put"
  cat > "$new"
  if [ -f "$4" ] && cmp -s "$new" "$4"; then
    own "$@"
    return 1
  fi
  mkdir -p "$(dirname "$4")"
  # beside the target, then renamed: a power cut leaves the old file or the new, never half
  cp "$new" "$4.anxin-new"
  own "$1" "$2" "$3" "$4.anxin-new"
  mv -f "$4.anxin-new" "$4"
  say "wrote ${4#"$ROOT"}"
  return 0
}

systemctl_or_say() {
  if [ "$SYSTEMD" -eq 1 ]; then
    systemctl "$@"
  else
    say "systemd is not running here${ROOT:+ (--root)}: skipped systemctl $*"
  fi
}

uninstall() {
  if [ "$SYSTEMD" -eq 1 ] && [ -f "$UNIT" ]; then
    systemctl disable --now anxin.service || true
  fi
  rm -f "$UNIT" "$MQ_CONF" "$MQ_PASSWD" "$MQ_ACL" "$JOURNALD"
  rm -rf "$OPT"
  say "removed anxin.service, ${OPT#"$ROOT"}/, Mosquitto's anxin config and the journald limit"
  if [ "$SYSTEMD" -eq 1 ]; then
    systemctl daemon-reload
    systemctl try-restart mosquitto.service systemd-journald.service || true
  else
    systemctl_or_say daemon-reload
  fi
  if [ "$PURGE" -eq 1 ]; then
    rm -rf "$ETC" "$DATA"
    if [ -n "$(uid_of anxin)" ]; then
      # shellcheck disable=SC2046  # prefix_args prints whole words or nothing
      userdel $(prefix_args) anxin
    fi
    say "purged ${ETC#"$ROOT"}, ${DATA#"$ROOT"} and the user anxin"
  else
    say "kept ${ETC#"$ROOT"} (config, secrets) and ${DATA#"$ROOT"} (alerts, history):" \
        "--uninstall --purge removes them"
  fi
  say "Mosquitto itself stays installed (apt-get purge mosquitto removes it)"
}

packages() {
  local p need=()
  # logrotate: Mosquitto logs to /var/log/mosquitto, which its package rotates only through
  # logrotate (not in a minimal Debian); the journal is bounded by journald()
  for p in mosquitto python3-venv logrotate; do
    if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
      need+=("$p")
    fi
  done
  if [ ${#need[@]} -eq 0 ]; then
    say "mosquitto, python3-venv and logrotate are installed: apt skipped"
    return
  fi
  say "installing ${need[*]} (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

check_platform() {
  local id="" codename=""
  if [ -r /etc/os-release ]; then
    id="$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"')"
    codename="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')"
  fi
  case "$id/$codename" in
    debian/bookworm|raspbian/bookworm) ;;
    *) say "warning: made for Debian bookworm / Raspberry Pi OS, this is ${id:-?} ${codename:-?}" ;;
  esac
  case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
    arm64|amd64) ;;
    *) say "warning: tested on arm64 and amd64, this is $(dpkg --print-architecture 2>/dev/null || uname -m)" ;;
  esac
}

user() {
  if [ -z "$(uid_of anxin)" ]; then
    [ -f "$ROOT/etc/passwd" ] || die "$ROOT/etc/passwd is missing (--root needs etc/passwd, group, shadow, gshadow)"
    # shellcheck disable=SC2046  # prefix_args prints whole words or nothing
    useradd $(prefix_args) --system --user-group --home-dir /var/lib/anxin --no-create-home \
      --shell /usr/sbin/nologin --comment "anxin safety gateway" anxin
    say "created the system user anxin"
  fi
  [ -n "$(gid_of mosquitto)" ] || die "no group mosquitto in $ROOT/etc/group: is the mosquitto package installed?"
}

# The source as pip would see it, as a reproducible tar: its hash says whether the venv
# already holds exactly this tree.
source_tar() {
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    --exclude=./venv --exclude=./.venv --exclude=./.git --exclude=./var --exclude=./build \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    -C "$SRC" -cf "$TMP/src.tar" .
}

venv() {
  local stamp="$OPT/source.sha256" sum pip_extra=()
  [ -f "$SRC/pyproject.toml" ] || die "$SRC is not an anxin source tree (no pyproject.toml)"
  ensure_dir root root 0755 "$OPT"
  source_tar
  sum="$(sha256sum < "$TMP/src.tar" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/anxin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    say "venv ${VENV#"$ROOT"} already has this source tree (sha256 ${sum:0:12}): kept"
    return 1
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    [ -x "$PYTHON" ] || die "no python at $PYTHON (--python PATH)"
    "$PYTHON" -m venv "$VENV" || die "could not create the venv with $PYTHON (apt-get install python3-venv)"
  fi
  mkdir "$TMP/src"
  tar -C "$TMP/src" -xf "$TMP/src.tar"
  read -r -a pip_extra <<< "${ANXIN_PIP_ARGS:-}"
  say "installing anxin from $SRC into ${VENV#"$ROOT"} (pip; a few minutes on a Pi)"
  # -I: a PYTHONPATH or user site of the shell running this must not change what is installed
  if "$VENV/bin/python" -I -m pip show --quiet anxin >/dev/null 2>&1; then
    "$VENV/bin/python" -I -m pip uninstall --quiet --yes anxin
  fi
  "$VENV/bin/python" -I -m pip install --quiet --disable-pip-version-check \
    "${pip_extra[@]}" "$TMP/src" || die "pip could not install anxin (network? ANXIN_PIP_ARGS for a mirror)"
  printf '%s\n' "$sum" > "$stamp"
  return 0
}

starter_config() {
  local gw
  if [ -e "$CONFIG" ]; then
    say "kept the existing config ${CONFIG#"$ROOT"}"
    own anxin anxin 0640 "$CONFIG"
    return 1
  fi
  gw="gw-$( (hostname -s 2>/dev/null || echo 1) | tr -c 'A-Za-z0-9_.\n-' '-' | cut -c1-60)"
  [ "$gw" != "gw-" ] || gw="gw-1"
  put anxin anxin 0640 "$CONFIG" <<EOF
# anxin gateway config, written by systemd/install.sh as a starting point (it never rewrites
# this file). Every key, its default and meaning: gateway/config.py in the source tree, or
# README.md. Check it with:  sudo -u anxin $VENV/bin/anxin check-config $CONFIG
# then:  sudo systemctl restart anxin   (commissioning on the technician pages edits this file)

[gateway]
id = "$gw"                      # unique at the service centre
timezone = "Asia/Shanghai"
data_dir = "$DATA"

[mqtt]
# The home's Mosquitto (configured by install.sh: no anonymous access, an access list).
url = "mqtt://127.0.0.1:1883"
username = "anxin-gateway"
password_file = "/run/credentials/anxin.service/mqtt-password"   # LoadCredential, root-only file

[home]
id = "home-1"                   # the home's id at the service centre
address = ""                    # street address, sent with alerts so help can be dispatched
# speaker_topic = "anxin/home-1/speaker"

# [[home.residents]]
# name = "…"
# age = 82
# ability_level = 2             # GB/T 42195-2022: 0 能力完好 … 4 完全失能

[web]                           # the technician pages (login code: $DATA/technician-code)
enabled = true
host = "127.0.0.1"              # the LAN address to let a technician's phone in
port = 8080

# Devices: add them on the technician pages (/discover) or with
#   anxin devices add --config $CONFIG …
# An anxin-native device needs its own broker user: run install.sh again after adding one;
# its password is then in ${CRED#"$ROOT"}/mqtt/<device id>.
# [[devices]]
# id = "smoke-kitchen"
# source = "zigbee2mqtt"
# topic = "zigbee2mqtt/kitchen_smoke"
# model = "HS1SA"
# room = "kitchen"

# The service centre: TLS is required for any host but this box (https:// or mqtts://).
# The HMAC key install.sh generated is in ${CRED#"$ROOT"}/hotline-secret (give it to the
# centre, or replace it with theirs).
# [[hotline]]
# kind = "webhook"
# url = "https://hotline.example/alerts"
# secret_file = "/run/credentials/anxin.service/hotline-secret"
EOF
}

# A secret generated once, from the kernel's CSPRNG (Python's secrets), never regenerated.
secret() {  # secret PATH KIND(hex|token)
  [ -s "$1" ] && { own root root 0600 "$1"; return 1; }
  local code='import secrets; print(secrets.token_urlsafe(24))'
  [ "$2" = hex ] && code='import secrets; print(secrets.token_hex(32))'
  (umask 077; "$PYTHON" -I -c "$code" > "$1.anxin-new")
  own root root 0600 "$1.anxin-new"
  mv -f "$1.anxin-new" "$1"
  say "generated ${1#"$ROOT"}"
  return 0
}

password_path() {  # the file holding broker user $1's password; the gateway's is its credential
  if [ "$1" = "$GATEWAY_USER" ]; then echo "$CRED/mqtt-password"; else echo "$CRED/mqtt/$1"; fi
}

broker() {  # sets BROKER_RELOAD / BROKER_RESTART
  local users user have lan template create
  BROKER_RELOAD=0
  BROKER_RESTART=0
  ensure_dir root root 0700 "$CRED/mqtt"
  ensure_dir root root 0755 "$MQ"
  ensure_dir root root 0755 "$MQ/conf.d"
  users="$("$VENV/bin/anxin" broker-acl --users --config "$CONFIG")" \
    || die "anxin broker-acl failed (above): check ${CONFIG#"$ROOT"} (anxin check-config) and run again"
  GATEWAY_USER="$(head -n1 <<< "$users")"
  for user in $users; do
    [[ "$user" =~ ^[A-Za-z0-9_.-]+$ ]] \
      || die "broker user '$user' (a device id) may hold only letters, digits, _ . -: rename the device"
    secret "$(password_path "$user")" token || true
  done
  have=""
  [ -f "$MQ_PASSWD" ] && have="$(cut -d: -f1 "$MQ_PASSWD")"
  for user in $users; do
    if ! grep -qxF "$user" <<< "$have"; then
      # -b puts the password on mosquitto_passwd's command line for a moment; at install time
      # only root is logged in to the box.
      create=()
      [ -f "$MQ_PASSWD" ] || create=(-c)
      mosquitto_passwd "${create[@]}" -b "$MQ_PASSWD" "$user" "$(cat "$(password_path "$user")")"
      say "broker user $user added"
      BROKER_RELOAD=1
    fi
  done
  for user in $have; do
    if ! grep -qxF "$user" <<< "$users"; then
      mosquitto_passwd -D "$MQ_PASSWD" "$user"
      say "broker user $user removed (no longer in the config; its password file is kept)"
      BROKER_RELOAD=1
    fi
  done
  own root mosquitto 0640 "$MQ_PASSWD"
  "$VENV/bin/anxin" broker-acl --config "$CONFIG" > "$TMP/acl"
  put root mosquitto 0640 "$MQ_ACL" < "$TMP/acl" && BROKER_RELOAD=1

  lan=""
  [ -f "$ETC/install.conf" ] && lan="$(sed -n 's/^lan_interface=//p' "$ETC/install.conf")"
  case "$LAN_OPT" in
    "") ;;
    none) lan="" ;;
    *) lan="$LAN_OPT" ;;
  esac
  printf '# systemd/install.sh options, kept for its next run\nlan_interface=%s\n' "$lan" \
    | put root root 0644 "$ETC/install.conf" || true
  template="$(sed -e "s#/etc/mosquitto/#$MQ/#g" \
    "$SRC/systemd/mosquitto-anxin.conf")"
  {
    printf '%s\n' "$template"
    if [ -n "$lan" ]; then
      printf '\n# the home network (install.sh --lan %s): devices on the LAN reach the broker;\n' "$lan"
      printf '# the same users and access list apply\nlistener 1883\nbind_interface %s\n' "$lan"
    fi
  } | put root root 0644 "$MQ_CONF" && BROKER_RESTART=1
  say "broker: ${lan:+127.0.0.1 and $lan}${lan:-127.0.0.1 only}, port 1883, users: $(tr '\n' ' ' <<< "$users")"
}

journald() {
  put root root 0644 "$JOURNALD" <<'EOF'
# anxin (systemd/install.sh): an SD card must never fill with logs. The journal on disk stays
# under 64 MB and a month, in RAM (no persistent journal, Raspberry Pi OS's default) 16 MB.
[Journal]
SystemMaxUse=64M
SystemKeepFree=256M
RuntimeMaxUse=16M
MaxRetentionSec=1month
EOF
}

unit() {
  # Under --root the unit names the tree's own paths, so systemd-analyze verify can check it.
  sed -e "s#/opt/anxin/#$OPT/#g" -e "s#/etc/anxin/#$ETC/#g" -e "s#ReadWritePaths=/etc/anxin#ReadWritePaths=$ETC#" \
    "$SRC/systemd/anxin.service" | put root root 0644 "$UNIT"
}

if [ "$MODE" = uninstall ]; then
  uninstall
  exit 0
fi

check_platform
packages
user
ensure_dir root root 0755 "$ROOT/etc"
ensure_dir anxin anxin 0750 "$ETC"
ensure_dir root root 0700 "$CRED"
ensure_dir anxin anxin 0750 "$DATA"
CHANGED=0
venv && CHANGED=1
starter_config && CHANGED=1
secret "$CRED/hotline-secret" hex || true
broker
journald && systemctl_or_say restart systemd-journald.service
unit && { CHANGED=1; systemctl_or_say daemon-reload; }

if [ "$SYSTEMD" -eq 1 ]; then
  systemctl enable --quiet mosquitto.service anxin.service
  if [ "$BROKER_RESTART" -eq 1 ] || ! systemctl is-active --quiet mosquitto.service; then
    systemctl restart mosquitto.service
  elif [ "$BROKER_RELOAD" -eq 1 ]; then
    systemctl reload mosquitto.service
  fi
  # Type=notify: start returns once the gateway is READY (subscribed), or fails.
  if [ "$CHANGED" -eq 1 ]; then action=restart; else action=start; fi
  if ! systemctl "$action" anxin.service; then
    journalctl -u anxin.service -n 30 --no-pager || true
    die "anxin.service did not start: see above, fix ${CONFIG#"$ROOT"} (anxin check-config) and run: systemctl restart anxin"
  fi
  say "anxin.service is running: $VENV/bin/anxin status --config $CONFIG"
else
  say "systemd is not running here${ROOT:+ (--root)}: units written, not enabled or started"
fi
say "done. Config ${CONFIG#"$ROOT"}; device passwords in ${CRED#"$ROOT"}/mqtt/ (root only); data ${DATA#"$ROOT"}"
