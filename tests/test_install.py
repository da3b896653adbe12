"""systemd/install.sh run for real into a temporary root: the tree it makes (modes, owners,
secrets), that a second run changes nothing, --uninstall and --purge, and that the Mosquitto
config, passwords and access list it writes work on a real Mosquitto.

How it stays fast and offline (tests never reach the network): install.sh creates a real venv
with `python -m venv` and pip-installs anxin into it from a snapshot of this source tree, but
with ANXIN_PIP_ARGS="--no-index --no-deps --no-build-isolation" (the installer's documented
offline knob), and with PYTHONPATH naming this test environment's site-packages so the
installed `anxin` finds numpy, aiohttp, … and the build backend (setuptools) without
downloading them. pip itself runs isolated (`python -I`) in install.sh, so what it installs is
only anxin, into the venv: `import gateway` in the venv's python resolves to the venv's copy.
The users go to the root's own etc/passwd (useradd --prefix); apt is skipped because mosquitto,
python3-venv and logrotate are installed (CI installs them); systemd is not touched under --root.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from tests._mosquitto import _wait_listening, free_port, mosquitto_binary
from tests.test_broker_acl import receive

REPO = Path(__file__).resolve().parents[1]
SITE = sysconfig.get_paths()["purelib"]
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root (CI does)")


def snapshot(dest: Path) -> Path:
    """A copy of what install.sh needs from this tree (other work in the tree cannot change it
    between two runs of a test); returns the copy's install.sh."""
    dest = dest / "src"  # beside the root, not above it: the root is no part of the source
    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = [p.rstrip("*") for p in data["tool"]["setuptools"]["packages"]["find"]["include"]]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    for name in [*packages, "systemd"]:
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    return dest / "systemd" / "install.sh"


def new_root(tmp: Path) -> Path:
    """An empty root with the host's account files (the host's mosquitto group among them),
    less any anxin user a real install on this machine made."""
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow"):
        if Path("/etc", name).exists():
            lines = Path("/etc", name).read_text().splitlines(keepends=True)
            (root / "etc" / name).write_text("".join(ln for ln in lines
                                                     if not ln.startswith("anxin:")))
            shutil.copystat(Path("/etc", name), root / "etc" / name)
    return root


def run(script: Path, root: Path, *args: str, check: bool = True) -> str:
    """install.sh --root root …; its output (stdout and stderr)."""
    env = {**os.environ, "PYTHONPATH": SITE,
           "ANXIN_PIP_ARGS": "--no-index --no-deps --no-build-isolation"}
    out = subprocess.run(["bash", str(script), "--root", str(root), "--python", BASE_PYTHON,
                          *args], check=False, capture_output=True, text=True, env=env,
                         timeout=600)
    text = out.stdout + out.stderr
    if check:
        assert out.returncode == 0, text
    return text


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root: type and mode, owner, group, and the content's sha256."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            what = ""
        found[str(path.relative_to(root))] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid,
                                              what)
    return found


def ids(root: Path, name: str) -> tuple[int, int]:
    """(uid, gid) of user `name` in root's etc/passwd."""
    for line in (root / "etc" / "passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == name:
            return int(f[2]), int(f[3])
    raise AssertionError(f"no user {name} in {root}/etc/passwd")


def group_id(root: Path, name: str) -> int:
    """gid of group `name` in root's etc/group."""
    return next(int(f[2]) for f in (ln.split(":") for ln in
                                    (root / "etc" / "group").read_text().splitlines())
                if f[0] == name)


def owner(root: Path, rel: str) -> tuple[str, int, int]:
    """(mode string, uid, gid) of root/rel."""
    st = (root / rel).stat()
    return stat.filemode(st.st_mode), st.st_uid, st.st_gid


def venv_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command from the installed venv, with this environment's dependencies."""
    return subprocess.run([str(root / "opt/anxin/venv/bin" / args[0]), *args[1:]], check=False,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SITE},
                          cwd=root, timeout=120)  # not the source tree's cwd: its gateway/


def test_shellcheck_finds_nothing():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: run `make test` (apt shellcheck)")
    out = subprocess.run([shellcheck, str(REPO / "systemd" / "install.sh")], check=False,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_refuses_to_run_as_a_user():
    with tempfile.TemporaryDirectory() as tmp:  # not pytest's: nobody may enter that
        os.chmod(tmp, 0o755)
        script = Path(tmp, "install.sh")
        shutil.copy2(REPO / "systemd" / "install.sh", script)
        out = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              "bash", str(script)], check=False, capture_output=True,
                             text=True, timeout=60)
    assert out.returncode == 1
    assert "must run as root" in out.stderr


def test_unknown_option_and_misuse_are_named(tmp_path):
    script = snapshot(tmp_path)
    root = new_root(tmp_path)
    out = run(script, root, "--frobnicate", check=False)
    assert "unknown option --frobnicate" in out
    assert "--purge goes with --uninstall" in run(script, root, "--purge", check=False)
    assert "no such network interface" in run(script, root, "--lan", "nosuch0", check=False)
    assert not (root / "opt").exists()


def test_install_twice_uninstall_purge(tmp_path):
    script = snapshot(tmp_path)
    root = new_root(tmp_path)
    first = run(script, root)
    assert "created the system user anxin" in first
    assert "apt skipped" in first  # tests reach no network
    assert "systemd is not running here (--root)" in first
    uid, gid = ids(root, "anxin")
    mosq = group_id(root, "mosquitto")

    # the tree, its modes and owners
    assert owner(root, "etc/anxin") == ("drwxr-x---", uid, gid)
    assert owner(root, "etc/anxin/anxin.toml") == ("-rw-r-----", uid, gid)
    assert owner(root, "etc/anxin/credentials") == ("drwx------", 0, 0)
    for secret in ("hotline-secret", "mqtt-password"):
        assert owner(root, f"etc/anxin/credentials/{secret}") == ("-rw-------", 0, 0)
    assert len((root / "etc/anxin/credentials/hotline-secret").read_text().strip()) == 64
    assert len((root / "etc/anxin/credentials/mqtt-password").read_text().strip()) >= 32
    assert owner(root, "var/lib/anxin") == ("drwxr-x---", uid, gid)
    assert owner(root, "etc/mosquitto/anxin.passwd") == ("-rw-r-----", 0, mosq)
    assert owner(root, "etc/mosquitto/anxin.acl") == ("-rw-r-----", 0, mosq)
    assert owner(root, "etc/mosquitto/conf.d/anxin.conf")[0] == "-rw-r--r--"
    journald = (root / "etc/systemd/journald.conf.d/anxin.conf").read_text()
    assert "SystemMaxUse=64M" in journald
    assert "RuntimeMaxUse=16M" in journald
    unit = (root / "etc/systemd/system/anxin.service").read_text()
    assert f"ExecStart={root}/opt/anxin/venv/bin/anxin run --config {root}/etc/anxin" in unit
    # every credential the unit loads, and the config directory it may write, are there
    credentials = re.findall(r"^LoadCredential=[\w-]+:(\S+)$", unit, re.MULTILINE)
    assert len(credentials) == 2
    for path in credentials:
        assert owner(root, str(Path(path).relative_to(root))) == ("-rw-------", 0, 0)
    assert f"ReadWritePaths={root}/etc/anxin\n" in unit
    # anxin in the venv is the copy pip installed there, from this tree
    where = venv_run(root, "python", "-c", "import gateway; print(gateway.__file__)")
    assert where.stdout.startswith(f"{root}/opt/anxin/venv/lib/"), where.stdout + where.stderr
    # the starting config loads as it is
    check = venv_run(root, "anxin", "check-config", str(root / "etc/anxin/anxin.toml"))
    assert check.returncode == 0, check.stdout + check.stderr
    # and the unit installed with these paths still verifies
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is not installed: run `make test` (apt systemd)"
    verify = subprocess.run([analyze, "verify", str(root / "etc/systemd/system/anxin.service")],
                            check=False, capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (verify.stdout + verify.stderr).splitlines() if "anxin.service" in ln]
    assert verify.returncode == 0 and problems == [], verify.stdout + verify.stderr

    # a second run changes nothing: no new passwords, no rewritten config, the venv kept
    before = tree(root)
    second = run(script, root)
    assert tree(root) == before
    assert "kept the existing config" in second and "already has this source tree" in second
    assert "generated" not in second and "wrote" not in second

    # a LAN listener when asked, remembered, and dropped when asked
    run(script, root, "--lan", "lo")
    conf = root / "etc/mosquitto/conf.d/anxin.conf"
    assert "listener 1883\nbind_interface lo" in conf.read_text()
    run(script, root)
    assert "bind_interface lo" in conf.read_text()
    run(script, root, "--no-lan")
    assert "bind_interface" not in conf.read_text()
    assert tree(root) == before

    # --uninstall: units, venv and broker config go; config, secrets and data stay
    (root / "var/lib/anxin/anxin.db").write_bytes(b"the home's history")
    kept = {k: v for k, v in tree(root).items() if k.startswith(("etc/anxin", "var/lib/anxin"))}
    out = run(script, root, "--uninstall")
    assert "kept /etc/anxin" in out
    for gone in ("opt/anxin", "etc/systemd/system/anxin.service", "etc/mosquitto/anxin.passwd",
                 "etc/mosquitto/anxin.acl", "etc/mosquitto/conf.d/anxin.conf",
                 "etc/systemd/journald.conf.d/anxin.conf"):
        assert not (root / gone).exists(), gone
    assert {k: v for k, v in tree(root).items()
            if k.startswith(("etc/anxin", "var/lib/anxin"))} == kept
    # installed again, it finds its config and passwords where it left them
    run(script, root)
    assert {k: v for k, v in tree(root).items()
            if k.startswith(("etc/anxin", "var/lib/anxin"))} == kept

    # --purge: config, data and the user go too
    run(script, root, "--uninstall", "--purge")
    assert not (root / "etc/anxin").exists()
    assert not (root / "var/lib/anxin").exists()
    assert not (root / "opt/anxin").exists()
    assert "\nanxin:" not in "\n" + (root / "etc/passwd").read_text()


@contextlib.contextmanager
def broker(root: Path, tmp: Path) -> Iterator[int]:
    """Mosquitto on the installed config: the conf.d file as written, with only its port
    moved to a free one, under a main config like Debian's /etc/mosquitto/mosquitto.conf."""
    port = free_port()
    confd = tmp / "conf.d"
    confd.mkdir()
    text = (root / "etc/mosquitto/conf.d/anxin.conf").read_text()
    assert "\nlistener 1883 127.0.0.1\n" in text
    (confd / "anxin.conf").write_text(text.replace("listener 1883 ", f"listener {port} "))
    (tmp / "mosquitto.conf").write_text(
        f"persistence true\npersistence_location {tmp}/\nlog_dest stderr\n"
        # Started as root, mosquitto drops to its own user, which cannot enter pytest's
        # private temporary directory; on the real system the files are root:mosquitto 0640.
        f"user root\ninclude_dir {confd}\n")
    binary = mosquitto_binary()
    assert binary, "mosquitto is not installed"
    proc = subprocess.Popen([binary, "-c", str(tmp / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()


@pytest.mark.mosquitto
async def test_the_broker_it_configures_lets_each_user_do_only_its_part(tmp_path):
    script = snapshot(tmp_path)
    root = new_root(tmp_path)
    run(script, root)
    cred = root / "etc/anxin/credentials"
    gateway_pw = (cred / "mqtt-password").read_text().strip()
    # the technician adds the speaker and a pendant (an anxin-native device), then runs the
    # installer again: the pendant and the speaker get users, the gateway keeps its password
    config = root / "etc/anxin/anxin.toml"
    text = config.read_text().replace('# speaker_topic = "anxin/home-1/speaker"',
                                      'speaker_topic = "anxin/home-1/speaker"')
    config.write_text(text + '\n[[devices]]\nid = "pendant"\nsource = "anxin"\n'
                             'topic = "anxin/sensor/pendant"\nmodel = "anxin-pendant"\n')
    out = run(script, root)
    assert "broker user pendant added" in out and "broker user speaker added" in out
    assert (cred / "mqtt-password").read_text().strip() == gateway_pw
    users = [ln.split(":")[0] for ln in (root / "etc/mosquitto/anxin.passwd").read_text()
             .splitlines()]
    assert sorted(users) == ["anxin-gateway", "pendant", "speaker"]
    assert owner(root, "etc/anxin/credentials/mqtt/pendant") == ("-rw-------", 0, 0)

    def password(user: str) -> str:
        return (cred / "mqtt" / user).read_text().strip()

    sub = tmp_path / "broker"
    sub.mkdir()
    with broker(root, sub) as port:
        def client(user: str | None, pw: str | None) -> aiomqtt.Client:
            return aiomqtt.Client("127.0.0.1", port, username=user, password=pw,
                                  identifier=f"t-{user}-{pw is not None}")

        with pytest.raises(aiomqtt.MqttError):  # anonymous: refused
            async with client(None, None):
                pass
        with pytest.raises(aiomqtt.MqttError):  # a wrong password: refused
            async with client("pendant", "guess"):
                pass
        async with client("anxin-gateway", gateway_pw) as gw, \
                client("speaker", password("speaker")) as speaker, \
                client("pendant", password("pendant")) as pendant:
            await gw.subscribe("anxin/sensor/#", qos=1)
            await speaker.subscribe("anxin/home-1/speaker", qos=1)
            await pendant.publish("anxin/home-1/speaker", b'{"say": "spoofed"}', qos=1)
            await pendant.publish("anxin/sensor/pendant", b'{"sos": true}', qos=1)
            await gw.publish("anxin/home-1/speaker", b'{"say": "ok"}', qos=1)
            heard = await receive(gw, 1.5)
            said = await receive(speaker, 0.5)
    assert heard == [("anxin/sensor/pendant", b'{"sos": true}')]
    assert said == [("anxin/home-1/speaker", b'{"say": "ok"}')]
    # the pendant leaves the config: its broker user goes, its password file stays
    config.write_text(text)
    out = run(script, root)
    assert "broker user pendant removed" in out
    assert re.findall(r"^(\S+?):", (root / "etc/mosquitto/anxin.passwd").read_text(),
                      re.MULTILINE) == ["anxin-gateway", "speaker"]

