"""`anxin hotline`: run the hotline (receiver + operator console) until Ctrl-C or SIGTERM;
`--add-operator NAME --role R` and `--reset-password NAME` manage logins and exit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import web

from hotline import auth, dc09
from hotline.app import make_app
from hotline.store import AsyncHotlineStore, HotlineStore

logger = logging.getLogger(__name__)

SECRET_ENV = "ANXIN_HOTLINE_SECRET"


async def serve(host: str, port: int, secret: bytes, db_path: str, *,
                supervision_s: float = 120.0, mqtt_url: str | None = None,
                mqtt_prefix: str = "anxin", mqtt_share_group: str | None = None,
                dc09_port: int | None = None,
                dc09_accounts: dict[str, dc09.Account] | None = None,
                trusted_proxies: frozenset[str] = frozenset()) -> None:
    """Receive alerts on host:port (and the MQTT uplink, and SIA DC-09 on `dc09_port`, if
    given) into `db_path`."""
    store = await AsyncHotlineStore(db_path).open()
    password = await auth.ensure_first_admin(store, time.time())
    if password is not None:
        show_first_password(password, db_path)
    runner = web.AppRunner(make_app(secret, store, supervision_s=supervision_s,
                                    mqtt_url=mqtt_url, mqtt_prefix=mqtt_prefix,
                                    mqtt_share_group=mqtt_share_group,
                                    dc09_listen=(host, dc09_port) if dc09_port else None,
                                    dc09_accounts=dc09_accounts,
                                    trusted_proxies=trusted_proxies),
                           access_log=None, shutdown_timeout=2.0)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        logger.info("hotline receiving on http://%s:%d/alerts (page: http://%s:%d/)",
                    host, port, host, port)
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
        await store.close()


def show_first_password(password: str, db_path: str) -> None:
    """Give the first admin's password to whoever started the hotline, once, never to a log.

    On a terminal it is printed. Under systemd (or any redirect) stdout is the journal, so
    it goes instead to `<db>.admin-password` (mode 0600, next to the database) and only the
    file's path is printed: read it, log in, delete it.
    """
    if sys.stdout.isatty():
        print(f"\n安心 接警台: first start, created operator 'admin' (role admin)\n"
              f"  password / 密码: {password}\n"
              "  shown only now: log in and add operators; "
              "`anxin hotline --reset-password admin --db …` makes a new one\n", flush=True)
        return
    path = Path(f"{db_path}.admin-password")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"admin\n{password}\n")
    print(f"安心 接警台: first start, created operator 'admin'; its password is in {path} "
          "(readable by this user only): log in, then delete the file", flush=True)


def _secret(args: argparse.Namespace) -> tuple[bytes | None, str | None]:
    given = [s for s in (args.secret is not None, args.secret_file is not None,
                         bool(os.environ.get(SECRET_ENV))) if s]
    if args.secret is not None and args.secret_file is not None:
        return None, "give --secret or --secret-file, not both"
    if args.secret is not None:
        return args.secret.encode(), None
    if args.secret_file is not None:
        try:
            return Path(args.secret_file).read_bytes().rstrip(b"\r\n"), None
        except OSError as e:
            return None, f"cannot read --secret-file {args.secret_file!r}: {e.strerror}"
    if given:
        return os.environ[SECRET_ENV].encode(), None
    return None, (f"a shared secret is required: --secret, --secret-file or the {SECRET_ENV} "
                  "environment variable (the same secret as the gateway's [[hotline]] entry)")


def ensure_operator(db_path: str, username: str, role: str = "admin") -> tuple[str, str]:
    """Create `username` (or give it a new password) in the hotline's database; returns
    (username, generated password). For `anxin demo` (a fresh login printed in its banner
    at each start) and for benchmarks; a real centre uses --add-operator."""
    password = auth.new_password()
    store = HotlineStore(db_path)
    try:
        hashed = auth.hash_password(password)
        if not store.update_operator(username, password_hash=hashed):
            store.add_operator(username, role, hashed, time.time())
    finally:
        store.close()
    return username, password


def _manage_operator(args: argparse.Namespace) -> int:
    """--add-operator / --reset-password on the database, without starting the server."""
    name = args.add_operator or args.reset_password
    problem = auth.username_problem(name)
    if problem:
        print(f"anxin hotline: {problem}", file=sys.stderr)
        return 2
    password = auth.new_password()
    store = HotlineStore(args.db)
    try:
        if args.add_operator:
            try:
                store.add_operator(name, args.role, auth.hash_password(password), time.time())
            except ValueError as e:
                print(f"anxin hotline: {e} (use --reset-password)", file=sys.stderr)
                return 1
        elif not store.update_operator(name, password_hash=auth.hash_password(password)):
            print(f"anxin hotline: no operator {name!r} in {args.db}", file=sys.stderr)
            return 1
    finally:
        store.close()
    print(f"operator {name}: password / 密码 {password}  (shown once)", flush=True)
    return 0


def main(argv: list[str]) -> int:
    """The `anxin hotline` command; returns the exit code."""
    p = argparse.ArgumentParser(prog="anxin hotline",
                                description="The anxin hotline: alert receiver and operator "
                                            "console (login required).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=9000, help="port to listen on")
    p.add_argument("--secret", help="shared HMAC secret (visible in ps; prefer --secret-file)")
    p.add_argument("--secret-file", help="file holding the shared HMAC secret")
    p.add_argument("--db", default="./hotline.db", help="SQLite file for received alerts")
    p.add_argument("--mqtt", metavar="URL", help="also receive the MQTT uplink from this "
                   "central broker, e.g. mqtts://broker.example:8883")
    p.add_argument("--mqtt-prefix", default="anxin", help="uplink topic prefix")
    p.add_argument("--mqtt-share-group", help="subscribe as $share/<group>/… (several "
                   "receivers sharing the uplink)")
    p.add_argument("--supervision-s", type=float, default=120.0,
                   help="raise loss of supervision for a gateway silent this long (0 = off)")
    p.add_argument("--add-operator", metavar="NAME", help="create an operator login, print "
                   "its generated password once, and exit")
    p.add_argument("--role", choices=auth.ROLES, default="operator",
                   help="role for --add-operator (default operator)")
    p.add_argument("--reset-password", metavar="NAME", help="give an operator a new "
                   "generated password (printed once; their sessions end), and exit")
    p.add_argument("--trusted-proxy", metavar="ADDR", action="append",
                   help="address of a reverse proxy that terminates TLS in front of the "
                        "console (repeat for more): its X-Forwarded-Proto/-For are believed, "
                        "so cookies are Secure and login limits count the real client")
    p.add_argument("--dc09-port", type=int, help="also receive SIA DC-09 alarms over TCP on "
                   "this port (same address as --host)")
    p.add_argument("--dc09-accounts", metavar="FILE", help="TOML file of DC-09 accounts: "
                   "[[account]] number, home_id, key or key_file (see hotline/dc09.py)")
    args = p.parse_args(argv)
    if args.add_operator or args.reset_password:
        return _manage_operator(args)
    accounts: dict[str, dc09.Account] = {}
    if args.dc09_port:
        if not args.dc09_accounts:
            print("anxin hotline: --dc09-port needs --dc09-accounts", file=sys.stderr)
            return 2
        try:
            accounts = dc09.load_accounts(args.dc09_accounts)
        except ValueError as e:
            print(f"anxin hotline: {e}", file=sys.stderr)
            return 2
    secret, problem = _secret(args)
    if secret is None:
        print(f"anxin hotline: {problem}", file=sys.stderr)
        return 2
    if not secret:
        print("anxin hotline: the secret is empty", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    print(f"安心 接警台 hotline: open http://{args.host}:{args.port}/  "
          f"(alerts are POSTed to http://{args.host}:{args.port}/alerts)", flush=True)

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await serve(args.host, args.port, secret, args.db,
                        supervision_s=args.supervision_s, mqtt_url=args.mqtt,
                        mqtt_prefix=args.mqtt_prefix, mqtt_share_group=args.mqtt_share_group,
                        dc09_port=args.dc09_port, dc09_accounts=accounts,
                        trusted_proxies=frozenset(args.trusted_proxy or ()))

    try:
        asyncio.run(run())
    except OSError as e:
        print(f"anxin hotline: cannot listen on {args.host}:{args.port}: {e.strerror}",
              file=sys.stderr)
        return 1
    print("hotline stopped.", flush=True)
    return 0
