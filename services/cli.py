"""``buergerbuero``: run the whole system, one service, or manage local staff accounts."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from pathlib import Path

import uvicorn

from services.common.logging import configure_logging, new_correlation_id
from services.common.natsauth import secured_embedded_nats
from services.common.natsserver import EmbeddedNats
from services.common.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="buergerbuero", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run the whole system locally (embedded NATS, SQLite)")
    _server_options(up)
    up.add_argument(
        "--queue-processes",
        type=int,
        default=None,
        metavar="N",
        help="queue processes sharing the port (default: one per core, 0 on one core); "
        "0 runs everything in one process",
    )

    serve = commands.add_parser("serve", help="run services alone (as in Kubernetes)")
    serve.add_argument("service", nargs="+", choices=_service_names())
    _server_options(serve)
    serve.add_argument("--reuse-port", action="store_true",
                       help="share the port with other processes (SO_REUSEPORT)")
    serve.add_argument("--private-port", type=int,
                       help="also listen on this loopback port (health checks of this process)")
    serve.add_argument("--forward-to", metavar="URL",
                       help="pass every route these services do not serve on to this address")

    staff = commands.add_parser("staff", help="local staff accounts").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser("add", help="create an account or change its password and roles")
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name, e.g. 'Anna Schmidt'")
    add.add_argument(
        "--role",
        action="append",
        choices=["staff", "dpo", "operator"],
        default=None,
        help="global role (repeatable); default: staff",
    )
    add.add_argument(
        "--department",
        action="append",
        default=[],
        metavar="SLUG[:admin]",
        help="put on a department's roster (repeatable)",
    )
    add.add_argument("--password", help="read from a prompt when omitted")
    add.add_argument("--data-dir", type=Path)
    lister = staff.add_parser("list", help="list the accounts")
    lister.add_argument("--data-dir", type=Path)
    password = staff.add_parser(
        "password", help="change an account's password (its sessions end everywhere)"
    )
    password.add_argument("username")
    password.add_argument("--password", help="read from a prompt when omitted")
    password.add_argument("--data-dir", type=Path)
    for command, text in (
        ("disable", "stop an account from signing in and end its sessions everywhere"),
        ("enable", "let a disabled account sign in again"),
    ):
        switch = staff.add_parser(command, help=text)
        switch.add_argument("username")
        switch.add_argument("--data-dir", type=Path)

    audit = commands.add_parser("audit", help="the audit log: verify an export, make a key")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check an export offline")
    verify.add_argument("export", type=Path, help="the JSON Lines file from /api/v1/audit/export")
    verify.add_argument("--key", required=True,
                        help="the log's verifier key (or a file holding it): /api/v1/audit/key")
    verify.add_argument("--checkpoint", type=Path,
                        help="a signed checkpoint kept elsewhere that the export must extend")
    verify.add_argument("--consistency-proof", type=Path, metavar="FILE",
                        help="for a kept checkpoint older than the export's start: the JSON of "
                        "/api/v1/audit/proof/consistency?first=KEPT&second=END")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    keygen = audit_commands.add_parser("keygen", help="make a signing key for the log")
    keygen.add_argument("--origin", default="buergerbuero.local/audit")
    keygen.add_argument("--key-file", type=Path,
                        help="write the key to this new file (0600) for BB_AUDIT_SIGNING_KEY_FILE")

    args = parser.parse_args(argv)
    if args.command == "audit":
        return _audit(args)
    if args.command == "staff":
        return _staff(args)
    return _run(args)


def _audit(args: argparse.Namespace) -> int:
    from services.audit.cli import keygen_command, verify_command

    if args.audit_command == "keygen":
        return keygen_command(args.origin, args.key_file)
    return verify_command(args.export, args.key, args.checkpoint, args.json,
                          args.consistency_proof)


def _service_names() -> list[str]:
    from services.system import PAGES, SERVICES

    return [*SERVICES, PAGES]


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--data-dir", type=Path, help="where NATS and the stores keep data")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k in ("host", "port", "data_dir") if (v := getattr(args, k, None))}
    settings = Settings(**overrides)
    if settings.metrics_port is not None and settings.metrics_port == settings.port:
        raise SystemExit("error: BB_METRICS_PORT must be another port than the public one")
    return settings


def _run(args: argparse.Namespace) -> int:
    from services.common.logging import get_logger

    settings = _settings(args)
    names: list[str] | None = args.service if args.command == "serve" else None
    configure_logging(settings.log_level, settings.log_json, "+".join(names or ["buergerbuero"]))
    _private_files(settings)
    log = get_logger("buergerbuero")
    nats = None
    if settings.uses_embedded_nats:
        # Never open: a user per service, and settings that tell each service its own.
        nats, settings = secured_embedded_nats(settings)
        nats.start()
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    try:
        if args.command == "up":
            processes = args.queue_processes
            if processes is None:
                from services.processes import default_queue_processes

                processes = default_queue_processes()
            if processes > 0:
                from services.processes import ProcessTree

                # Queue processes share the port with SO_REUSEPORT: they would also share
                # it with another running system, so make sure nobody holds it now.
                for port in filter(None, (settings.port, settings.metrics_port)):
                    if not port_is_free(settings.host, port):
                        raise SystemExit(
                            f"error: cannot listen on {settings.host}:{port}: "
                            "Address already in use"
                        )

                url = nats.url if nats else str(settings.nats_url)
                tree = ProcessTree(settings, url, processes)
                return tree.run(lambda: _banner(base, settings, nats, processes))
        # Imported only here: the process tree's parent stays small (no aiortc, no stores).
        from services.system import build_app

        app = build_app(settings, names, nats, getattr(args, "forward_to", None))
        if args.command == "up":
            _banner(base, settings, nats)
        log.info("starting", url=base, services=names or "all")
        _serve(app, settings, args)
    finally:
        if nats:
            nats.stop()
    return 0


def _serve(app: object, settings: Settings, args: argparse.Namespace) -> None:
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,  # it prints query strings (tokens); RequestContext logs requests
        forwarded_allow_ips=settings.trusted_proxies,
        ws_max_size=settings.max_websocket_message_bytes,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.http_keep_alive_seconds,
    )
    reuse_port = getattr(args, "reuse_port", False)
    sockets = [_listen(settings.host, settings.port, reuse_port)]
    if settings.metrics_port:  # operators' listener (services/common/operator_access.py)
        sockets.append(_listen(settings.host, settings.metrics_port, reuse_port))
    if private_port := getattr(args, "private_port", None):
        sockets.append(_listen("127.0.0.1", private_port, reuse_port=False))
    uvicorn.Server(config).run(sockets=sockets)


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SystemExit(f"error: cannot listen on {host}:{port}: {error.strerror}") from error
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Bound without ``SO_REUSEPORT``: taken even by another system's process tree."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _banner(
    base: str, settings: Settings, nats: EmbeddedNats | None, queue_processes: int = 0
) -> None:
    from services.rooms.seed import DEMO_PASSWORD, STAFF

    lines = [
        "",
        "Bürgerbüro is starting.",
        f"  Citizens' start page:  {base}/",
        f"  API (OpenAPI):          {base}/api/docs",
        f"  Departments (JSON):     {base}/api/v1/departments",
        f"  Health / metrics:       {base}/readyz  {_metrics_url(base, settings)}",
        f"  NATS:                   {nats.url if nats else settings.nats_url}",
        f"  Data:                   {settings.database_url or settings.data_dir.resolve()}",
        "  Booking mail:           "
        + (f"SMTP {settings.booking_smtp_host}" if settings.booking_smtp_host
           else f"{(settings.data_dir / 'mail').resolve()} (one .eml file per mail)"),
        "  Processes:              "
        + (f"{queue_processes} queue processes on the port, rooms/audit/media in one more"
           if queue_processes else "one (--queue-processes 0)"),
    ]
    if settings.seed_demo:
        lines.append(f"  Demo staff logins (password '{DEMO_PASSWORD}'):")
        for username, name, roles, departments in STAFF:
            lines.append(
                f"    {username:<6} {name:<18} {', '.join(roles)}"
                f"{': ' + ', '.join(departments) if departments else ''}"
            )
    print("\n".join(lines) + "\n", file=sys.stderr, flush=True)


def _metrics_url(base: str, settings: Settings) -> str:
    if not settings.metrics_port:
        return f"{base}/metrics"
    return f"http://{settings.host}:{settings.metrics_port}/metrics (operators' port)"


def _private_files(settings: Settings) -> None:
    """Stores, keys, NATS's data, logs: created 0600 in a 0700 data directory."""
    from services.common.files import private_directory, use_private_umask

    use_private_umask()
    private_directory(settings.data_dir)


def _staff(args: argparse.Namespace) -> int:
    settings = _settings(args)
    _private_files(settings)
    from services.common.eventstore import store_env
    from services.common.identity import AccountError, LocalAccounts

    accounts = LocalAccounts(env=store_env(settings, "identity"))
    if args.staff_command == "list":
        for identity in accounts.list():
            print(
                f"{identity.staff_id}\t{identity.display_name}\t{','.join(sorted(identity.roles))}"
                + ("" if accounts.is_active(identity.staff_id) else "\tdisabled")
            )
        return 0
    try:
        if args.staff_command in ("disable", "enable"):
            # The running system ends the account's sessions (it follows this store).
            accounts.set_active(args.username, args.staff_command == "enable")
            print(f"account {args.username} {args.staff_command}d")
            return 0
        password = args.password or getpass.getpass(f"Password for {args.username}: ")
        if args.staff_command == "password":
            accounts.change_password(args.username, password)
            print(f"password of {args.username} changed; its sessions end")
            return 0
        accounts.add(args.username, args.name, password, args.role or ["staff"])
    except AccountError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.department:
        return _assign(settings, args.username, args.department)
    print(f"account {args.username} saved")
    return 0


def _assign(settings: Settings, username: str, departments: list[str]) -> int:
    """Put the account on rosters: written to the rooms store, published by its relay."""
    from services.common.eventstore import store_env
    from services.rooms.application import Rooms, UnknownDepartment
    from services.rooms.domain import Department

    rooms = Rooms(env=store_env(settings, "rooms"))
    try:
        for item in departments:
            slug, _, role = item.partition(":")
            try:
                rooms.assign_staff(
                    Department.create_id(slug), username, role or "staff", new_correlation_id()
                )
            except UnknownDepartment:
                print(f"error: no department '{slug}'", file=sys.stderr)
                return 2
    finally:
        rooms.close()
    print(f"account {username} saved and assigned to {', '.join(departments)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
