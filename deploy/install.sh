#!/usr/bin/env bash
# pager-edge installer for Raspberry Pi OS (bookworm) and Debian 12.
#
#   sudo deploy/install.sh                   install, or upgrade in place (config and data kept)
#   sudo deploy/install.sh --kiosk console   the wait-board on the bare console instead of cage+foot
#   sudo deploy/install.sh --web off         without the web board for tablets (pager-edge-web)
#   sudo deploy/install.sh --uninstall       remove units and venv; keep /etc/pager-edge and data
#   sudo deploy/install.sh --uninstall --purge   ... and the config, the data and the users
#
# Run with --help for every option. Safe to run again: that is how you upgrade.
set -euo pipefail

PROG=pager-edge-install
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Target layout (paths inside the target root).
PREFIX=/opt/pager-edge
VENV=$PREFIX/venv
ETC=/etc/pager-edge
DATA=/var/lib/pager-edge
UNIT_DIR=/etc/systemd/system
AGENT_USER=pager-edge
KIOSK_USER=pager-kiosk
KIOSK_HOME=/var/cache/pager-kiosk
NOLOGIN=/usr/sbin/nologin
AGENT_UNIT=pager-edge.service
WEB_UNIT=pager-edge-web.service
KIOSK_UNITS=(pager-edge-kiosk.service pager-edge-kiosk-console.service)
# Debian's cage 0.1.4 exits at start without the Xwayland binary, even for Wayland-only clients
# like foot (cage-kiosk/cage#293), and does not depend on it: install it explicitly.
KIOSK_APT=(cage foot fonts-dejavu xwayland)

ROOT=/
SOURCE=""
KIOSK=""
WEB=""
PYTHON=""
DO_VENV=1
DO_PIP=1
DO_SYSTEMCTL=1
DO_APT=1
UNINSTALL=0
PURGE=0

usage() {
    cat <<EOF
Usage: install.sh [options]

Installs pager-edge: system users, a virtual environment in $PREFIX, $ETC/config.toml (0640)
and secrets.env (0600), the data directory $DATA, and the systemd units, then enables them.
Running it again upgrades in place and keeps the configuration and the data.

Options:
  --root DIR          install into DIR instead of / (packaging, tests); implies --no-systemctl
                      and --no-apt
  --source DIR|WHEEL  what to pip install (default: the checkout this script is in: $(dirname "$SCRIPT_DIR"))
  --python PATH       interpreter for the virtual environment (default: /usr/bin/python3)
  --kiosk ROUTE       cage (default: full-screen cage + foot), console (plain Linux console) or
                      none; on an upgrade the default is the route already installed
  --web on|off        the web board for tablets, $WEB_UNIT (default: on; on an upgrade,
                      what is installed). It starts once secrets.env has PAGER_EDGE_WEB_PIN
  --skip-pip          create the virtual environment but install no packages into it
  --no-venv           do not create the virtual environment at all (implies --skip-pip)
  --no-systemctl      install unit files but do not enable, start or reload anything
  --no-apt            do not install Debian packages (python3-venv; cage foot fonts-dejavu
                      xwayland)
  --uninstall         remove the units and $PREFIX; keep $ETC, $DATA and the users
  --purge             with --uninstall: also remove $ETC, $DATA and the users
  -h, --help          this text
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --root) ROOT=${2:?--root needs a directory}; shift 2 ;;
        --root=*) ROOT=${1#*=}; shift ;;
        --source) SOURCE=${2:?--source needs a directory or a wheel}; shift 2 ;;
        --source=*) SOURCE=${1#*=}; shift ;;
        --python) PYTHON=${2:?--python needs a path}; shift 2 ;;
        --python=*) PYTHON=${1#*=}; shift ;;
        --kiosk) KIOSK=${2:?--kiosk needs cage, console or none}; shift 2 ;;
        --kiosk=*) KIOSK=${1#*=}; shift ;;
        --web) WEB=${2:?--web needs on or off}; shift 2 ;;
        --web=*) WEB=${1#*=}; shift ;;
        --skip-pip) DO_PIP=0; shift ;;
        --no-venv) DO_VENV=0; DO_PIP=0; shift ;;
        --no-systemctl) DO_SYSTEMCTL=0; shift ;;
        --no-apt) DO_APT=0; shift ;;
        --uninstall) UNINSTALL=1; shift ;;
        --purge) PURGE=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option: $1" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "run as root (sudo $0 $*)"
[[ $PURGE -eq 0 || $UNINSTALL -eq 1 ]] || die "--purge only goes with --uninstall"
case $KIOSK in
    "" | cage | console | none) ;;
    *) die "--kiosk must be cage, console or none, not '$KIOSK'" ;;
esac
case $WEB in
    "" | on | off) ;;
    *) die "--web must be on or off, not '$WEB'" ;;
esac

[[ -d $ROOT ]] || die "target root $ROOT is not a directory"
ROOT=$(cd "$ROOT" && pwd -P)
if [[ $ROOT != / ]]; then
    DO_SYSTEMCTL=0
    DO_APT=0
fi
if [[ $DO_SYSTEMCTL -eq 1 ]] && ! [[ -d /run/systemd/system ]]; then
    say "systemd is not running here; unit files are installed but not enabled"
    DO_SYSTEMCTL=0
fi

# Path of a target path inside the target root.
r() {
    if [[ $ROOT == / ]]; then
        printf '%s' "$1"
    else
        printf '%s%s' "$ROOT" "$1"
    fi
}

# useradd/groupadd/usermod/userdel/groupdel act on the target root's account files.
account_cmd() {
    local cmd=$1
    shift
    if [[ $ROOT == / ]]; then
        "$cmd" "$@"
    else
        "$cmd" --root "$ROOT" "$@"
    fi
}

# Field $2 (3 = uid/gid) of entry $1 in the target's passwd or group file ($3).
account_field() {
    awk -F: -v name="$1" -v field="$2" '$1 == name { print $field; found = 1; exit } END { exit !found }' \
        "$(r "/etc/$3")"
}
has_user() { account_field "$1" 3 passwd >/dev/null 2>&1; }
has_group() { account_field "$1" 3 group >/dev/null 2>&1; }
uid_of() { account_field "$1" 3 passwd; }
gid_of() { account_field "$1" 3 group; }

systemctl_() {
    if [[ $DO_SYSTEMCTL -eq 1 ]]; then
        systemctl "$@"
    fi
}

# The kiosk route already installed, if any.
installed_kiosk() {
    if [[ -e $(r "$UNIT_DIR/pager-edge-kiosk.service") ]]; then
        echo cage
    elif [[ -e $(r "$UNIT_DIR/pager-edge-kiosk-console.service") ]]; then
        echo console
    else
        echo none
    fi
}

# Whether the web board is installed already.
installed_web() {
    if [[ -e $(r "$UNIT_DIR/$WEB_UNIT") ]]; then echo on; else echo off; fi
}

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}

ensure_users() {
    if ! has_group "$AGENT_USER"; then
        say "creating group $AGENT_USER"
        account_cmd groupadd --system "$AGENT_USER"
    fi
    if ! has_user "$AGENT_USER"; then
        say "creating system user $AGENT_USER"
        account_cmd useradd --system --gid "$AGENT_USER" --home-dir "$DATA" --no-create-home \
            --shell "$NOLOGIN" --comment "pager-edge agent" "$AGENT_USER"
    fi
    if [[ $KIOSK != none ]]; then
        # The kiosk reads the database and config.toml through the pager-edge group; video,
        # render and input help when logind cannot hand it the seat's devices.
        local groups=$AGENT_USER g
        for g in video render input; do
            if has_group "$g"; then groups+=",$g"; fi
        done
        if ! has_user "$KIOSK_USER"; then
            say "creating system user $KIOSK_USER (groups $groups)"
            account_cmd useradd --system --user-group --groups "$groups" --home-dir "$KIOSK_HOME" \
                --no-create-home --shell "$NOLOGIN" --comment "pager-edge kiosk" "$KIOSK_USER"
        else
            account_cmd usermod --append --groups "$groups" "$KIOSK_USER"
        fi
    fi
}

# install -d with numeric owners (names may not resolve outside the target root).
make_dir() { # mode owner group path
    install -d -m "$1" -o "$2" -g "$3" "$(r "$4")"
    chown "$2:$3" "$(r "$4")" # an existing directory keeps whatever it had otherwise
    chmod "$1" "$(r "$4")"
}

# Copy a file only if it is not there yet; always (re)assert mode and owners.
keep_file() { # mode owner group source target
    local dst
    dst=$(r "$5")
    if [[ -e $dst ]]; then
        say "keeping $5"
    else
        say "writing $5"
        install -m "$1" -o "$2" -g "$3" "$4" "$dst"
    fi
    chown "$2:$3" "$dst"
    chmod "$1" "$dst"
}

create_venv() {
    local venv python
    venv=$(r "$VENV")
    python=${PYTHON:-/usr/bin/python3}
    [[ -x $python ]] || die "no Python at $python (apt-get install python3 python3-venv)"
    # Keep the environment unless it is broken or was made by another Python minor version (a
    # Debian release upgrade): its site-packages would not be found any more.
    local want have=""
    want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    if [[ -f $venv/pyvenv.cfg ]]; then
        have=$(sed -n 's/^version *= *\([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg")
    fi
    if [[ $have == "$want" ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        say "keeping virtual environment $VENV"
    else
        say "creating virtual environment $VENV ($("$python" -V 2>&1))"
        rm -rf "$venv"
        if [[ $DO_PIP -eq 1 ]]; then
            "$python" -m venv "$venv"
        else
            "$python" -m venv --without-pip "$venv"
        fi
    fi
    if [[ $DO_PIP -eq 1 ]]; then
        local source=${SOURCE:-$(dirname "$SCRIPT_DIR")}
        [[ -e $source ]] || die "--source $source does not exist"
        source=$(realpath "$source")
        say "installing $source into $VENV"
        local pip=("$venv/bin/python" -m pip install --quiet)
        # In an alternate root, byte-code is compiled below, with the target's paths in it.
        [[ $ROOT != / ]] && pip+=(--no-compile)
        if [[ -d $source ]]; then
            # Build from a clean copy: no root-owned build/ or *.egg-info left in the checkout,
            # and no stale build/ output from an earlier version slipping into the install.
            local tree
            tree=$(mktemp -d)
            tar -C "$source" --exclude=.git --exclude=.venv --exclude=venv --exclude=build \
                --exclude=dist --exclude='*.egg-info' --exclude=__pycache__ -cf - . |
                tar -C "$tree" -xf -
            "${pip[@]}" --upgrade "$tree" || {
                rm -rf "$tree"
                die "pip could not install $source"
            }
            rm -rf "$tree"
        else
            # A wheel at an already installed version needs --force-reinstall.
            "${pip[@]}" --upgrade "$source"
            "${pip[@]}" --force-reinstall --no-deps "$source"
        fi
        "$venv/bin/python" -c 'import agent; print("pager-edge", agent.__version__)' >&2
    fi
    if [[ $ROOT != / ]]; then
        # venv and pip write absolute paths; make them the ones the target will see.
        local f
        while IFS= read -r -d '' f; do
            if grep -Iq -- "$venv" "$f"; then
                sed -i "s|$venv|$VENV|g" "$f"
            fi
        done < <(find "$venv/bin" "$venv/pyvenv.cfg" -maxdepth 1 -type f -print0)
        if [[ $DO_PIP -eq 1 ]]; then
            # /opt is read-only for the agent (ProtectSystem=strict): ship the byte-code.
            "$venv/bin/python" -m compileall -q -f -j 0 -s "$ROOT" -p / "$venv/lib" >/dev/null
        fi
    fi
}

# With no kiosk on tty1 any more, bring the login prompt back there.
give_back_tty1() {
    if [[ $DO_SYSTEMCTL -eq 1 ]] && systemctl is-enabled --quiet getty@tty1.service 2>/dev/null; then
        systemctl start getty@tty1.service || true
    fi
}

install_units() {
    local unit keep
    install -m 0644 -o 0 -g 0 "$SCRIPT_DIR/systemd/$AGENT_UNIT" "$(r "$UNIT_DIR/$AGENT_UNIT")"
    case $KIOSK in
        cage) keep=pager-edge-kiosk.service ;;
        console) keep=pager-edge-kiosk-console.service ;;
        none) keep="" ;;
    esac
    for unit in "${KIOSK_UNITS[@]}"; do
        if [[ $unit == "$keep" ]]; then
            install -m 0644 -o 0 -g 0 "$SCRIPT_DIR/systemd/$unit" "$(r "$UNIT_DIR/$unit")"
        elif [[ -e $(r "$UNIT_DIR/$unit") ]]; then
            say "removing kiosk unit $unit (kiosk route: $KIOSK)"
            systemctl_ disable --now "$unit" || true
            rm -f "$(r "$UNIT_DIR/$unit")"
        fi
    done
    if [[ -z $keep ]]; then
        give_back_tty1
    fi
    local web=""
    if [[ $WEB == on ]]; then
        install -m 0644 -o 0 -g 0 "$SCRIPT_DIR/systemd/$WEB_UNIT" "$(r "$UNIT_DIR/$WEB_UNIT")"
        web=$WEB_UNIT
    elif [[ -e $(r "$UNIT_DIR/$WEB_UNIT") ]]; then
        say "removing $WEB_UNIT (--web off)"
        systemctl_ disable --now "$WEB_UNIT" || true
        rm -f "$(r "$UNIT_DIR/$WEB_UNIT")"
    fi
    say "installed units: $AGENT_UNIT${keep:+ $keep}${web:+ $web}"
}

do_install() {
    local upgrade=0 route
    [[ -e $(r "$ETC/config.toml") ]] && upgrade=1
    route=$(installed_kiosk)
    if [[ -z $KIOSK ]]; then
        KIOSK=cage
        [[ $upgrade -eq 1 ]] && KIOSK=$route
    fi
    if [[ -z $WEB ]]; then
        WEB=on
        [[ $upgrade -eq 1 ]] && WEB=$(installed_web)
    fi
    say "$([[ $upgrade -eq 1 ]] && echo upgrading || echo installing) pager-edge into $ROOT (kiosk: $KIOSK, web: $WEB)"

    if [[ $DO_APT -eq 1 ]]; then
        local pkgs=(python3 python3-venv)
        [[ $KIOSK == cage ]] && pkgs+=("${KIOSK_APT[@]}")
        apt_install "${pkgs[@]}"
    fi

    [[ -e $(r /etc/passwd) && -e $(r /etc/group) ]] ||
        die "$ROOT has no /etc/passwd and /etc/group to add the users to; prepare it first, e.g.
  mkdir -p $ROOT/etc && cp /etc/passwd /etc/group $ROOT/etc/    (this host's accounts), or
  debootstrap bookworm $ROOT                                     (a whole Debian root)"
    local d
    for d in /var/lib /var/cache /opt "$UNIT_DIR"; do
        [[ -d $(r "$d") ]] || install -d -m 0755 "$(r "$d")"
    done
    ensure_users
    local uid gid
    uid=$(uid_of "$AGENT_USER")
    gid=$(gid_of "$AGENT_USER")

    make_dir 0755 0 0 "$PREFIX"
    make_dir 0750 0 "$gid" "$ETC"
    make_dir 0750 "$uid" "$gid" "$DATA"
    if [[ $KIOSK != none ]]; then
        make_dir 0750 "$(uid_of "$KIOSK_USER")" "$(gid_of "$KIOSK_USER")" "$KIOSK_HOME"
    fi

    keep_file 0640 0 "$gid" "$SCRIPT_DIR/config.toml" "$ETC/config.toml"
    install -m 0640 -o 0 -g "$gid" "$SCRIPT_DIR/config.toml" "$(r "$ETC/config.toml.example")"
    keep_file 0600 "$uid" "$gid" "$SCRIPT_DIR/secrets.env" "$ETC/secrets.env"
    keep_file 0644 0 0 "$SCRIPT_DIR/foot.ini" "$ETC/foot.ini"
    install -m 0644 -o 0 -g 0 "$SCRIPT_DIR/README.md" "$(r "$PREFIX/README.md")"

    if [[ $DO_VENV -eq 1 ]]; then
        create_venv
    else
        say "skipping the virtual environment (--no-venv)"
    fi

    install_units

    if [[ $DO_SYSTEMCTL -eq 0 ]]; then
        say "not enabling units (alternate root or --no-systemctl)"
    else
        systemctl daemon-reload
        local units=("$AGENT_UNIT")
        [[ $KIOSK == cage ]] && units+=(pager-edge-kiosk.service)
        [[ $KIOSK == console ]] && units+=(pager-edge-kiosk-console.service)
        [[ $WEB == on ]] && units+=("$WEB_UNIT")
        systemctl enable "${units[@]}"
        if [[ $upgrade -eq 1 ]]; then
            say "restarting ${units[*]}"
            systemctl restart "${units[@]}"
        else
            say "enabled ${units[*]}; they start at boot"
            local pin=""
            [[ $WEB == on ]] && pin=" (PAGER_EDGE_WEB_PIN: the tablets' sign-in)"
            say "next: edit $ETC/config.toml (site id, controller host, timezone) and"
            say "      $ETC/secrets.env$pin, then: sudo systemctl start ${units[*]}"
        fi
    fi
    say "done"
}

do_uninstall() {
    local unit
    say "uninstalling pager-edge from $ROOT$([[ $PURGE -eq 1 ]] && echo ' (purge)')"
    for unit in "$WEB_UNIT" "${KIOSK_UNITS[@]}" "$AGENT_UNIT"; do
        if [[ -e $(r "$UNIT_DIR/$unit") ]]; then
            systemctl_ disable --now "$unit" || true
            rm -f "$(r "$UNIT_DIR/$unit")"
        fi
    done
    systemctl_ daemon-reload || true
    give_back_tty1
    rm -rf "$(r "$PREFIX")"
    if [[ $PURGE -eq 1 ]]; then
        rm -rf "$(r "$ETC")" "$(r "$DATA")" "$(r "$KIOSK_HOME")"
        local user
        for user in "$KIOSK_USER" "$AGENT_USER"; do
            if has_user "$user"; then
                say "removing user $user"
                account_cmd userdel "$user"
            fi
            if has_group "$user"; then
                account_cmd groupdel "$user"
            fi
        done
        say "removed everything, including the configuration and the database"
    else
        say "kept $ETC (configuration, secrets) and $DATA (database, backups)."
        say "reinstall to use them again, or --uninstall --purge to remove them too"
    fi
}

if [[ $UNINSTALL -eq 1 ]]; then
    do_uninstall
else
    do_install
fi
