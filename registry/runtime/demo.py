"""`spacereg demo`: zurich.test and paris.test, two federated registries on this machine.

One process serves both over TLS (a local CA), answers DNS for `*.test` on loopback and peers
the two through their peering services; `--share` seeds a folder shared with Marie at paris.
The data directory keeps the CA, each registry's configuration, keys and database, so a second
start finds everything as the first left it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import shlex
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx2
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from federation.dnsserver import DnsServer
from registry.runtime.app import create_app
from registry.runtime.demo_ca import CertFiles, make_certs
from registry.runtime.settings import Settings, load_settings
from registry.runtime.wiring import Services

DOMAINS = ("zurich.test", "paris.test")
USERS = (
    ("einstein", "relativity", "Albert Einstein"),
    ("marie", "radioactivity", "Marie Curie"),
    ("richard", "superfluidity", "Richard Feynman"),
    ("admin", "admin", "Administrator"),
)
PROJECT, FOLDER, FILE = "Demo project", "Research", "welcome.txt"
SHARED_WITH = "marie@paris.test"
Migrate = Callable[[Settings, str], Awaitable[None]]


@dataclass(frozen=True)
class Options:
    data_dir: Path
    ports: tuple[int, int]  # zurich's, paris's
    dns_port: int
    share: bool


@dataclass(frozen=True)
class Site:
    domain: str
    config: Path
    settings: Settings

    @property
    def host(self) -> str:
        return f"registry.{self.domain}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops both servers on one Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _toml(value: Any) -> str:
    """Strings, numbers, booleans and lists of them: JSON spells them as TOML does."""
    return json.dumps(value)


def write_config(options: Options, domain: str, port: int, certs: CertFiles) -> Path:
    """The registry's TOML file in its own directory, for this demo and for `spacereg
    --config FILE token USER` beside it."""
    directory = (options.data_dir / domain).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    top = {
        "data_dir": str(directory),
        "host": "127.0.0.1",
        "port": port,
        "base_url": f"https://registry.{domain}:{port}",
        "domain": domain,
        "tls_certfile": certs.cert_file,
        "tls_keyfile": certs.key_file,
    }
    federation = {
        "dns_nameservers": [f"127.0.0.1:{options.dns_port}"],
        "allow_private_networks": ["127.0.0.1/32"],
        "ca_file": certs.ca_file,
    }
    lines = [f"{key} = {_toml(value)}" for key, value in top.items()]
    lines += ["", "[federation]", *(f"{k} = {_toml(v)}" for k, v in federation.items())]
    for username, password, name in USERS:
        user = {"username": username, "password": password, "display_name": name}
        lines += ["", "[[idp_users]]", *(f"{k} = {_toml(v)}" for k, v in user.items())]
    config = directory / "spacereg.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def local_certs(data_dir: Path) -> CertFiles:
    """The CA and certificate of an earlier start, or new ones."""
    certs = CertFiles.in_directory(data_dir.resolve())
    if certs.exist():
        return certs
    return make_certs(data_dir.resolve(), [f"registry.{d}" for d in DOMAINS] + ["127.0.0.1"])


async def run(options: Options, migrate: Migrate, out: TextIO) -> None:
    """Serve both domains until SIGINT or SIGTERM."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    certs = local_certs(options.data_dir)
    sites = [
        Site(domain, config, load_settings(config, env={}))
        for domain, port in zip(DOMAINS, options.ports, strict=True)
        for config in [write_config(options, domain, port, certs)]
    ]
    sockets = [_bound(site.settings.port) for site in sites]  # a port in use fails here, early
    with contextlib.ExitStack() as held, DnsServer().running(options.dns_port) as dns:
        for sock in sockets:
            held.enter_context(sock)
        for site in sites:
            dns.add(site.host, "A", ["127.0.0.1"])
            srv = f"10 5 {site.settings.port} {site.host}."
            dns.add(f"_spacereg._tcp.{site.domain}", "SRV", [srv])
        for site in sites:
            await migrate(site.settings, "head")
        await _serve(sites, sockets, certs, options, out)


def _bound(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock


async def _serve(
    sites: list[Site], sockets: list[socket.socket], certs: CertFiles, options: Options, out: TextIO
) -> None:
    apps = [create_app(site.settings) for site in sites]
    servers = [
        _Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=site.settings.port,
                ssl_certfile=certs.cert_file,
                ssl_keyfile=certs.key_file,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        for app, site in zip(apps, sites, strict=True)
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, sockets, strict=True)
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    services: list[Services] = [app.state.services for app in apps]
    try:
        while not all(server.started for server in servers):
            if any(task.done() for task in tasks):
                raise RuntimeError("a registry of the demo did not start (see above)")
            await asyncio.sleep(0.05)
        await peer(services[0], services[1])
        if options.share:
            await seed_share(sites[0], services[0], certs)
        out.write(instructions(sites, certs, options))
        out.flush()
        await stop.wait()
    finally:
        # Each registry's pool holds idle TLS connections to the other: close them first, or
        # each server waits for them at shutdown.
        for held in services:
            await held.outbound.aclose()
            await held.discovery.aclose()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


async def peer(zurich: Services, paris: Services) -> None:
    """An invitation from zurich accepted at paris, unless they are partners already."""
    if any(record.domain == "paris.test" for record in await zurich.peering.list()):
        return
    issued = await zurich.peering.invite("demo")
    await paris.peering.accept(str(issued.invitation))


async def seed_share(zurich: Site, services: Services, certs: CertFiles) -> None:
    """Einstein's project at zurich with a folder shared with Marie at paris, through the
    registry's own LibreGraph API (the invite makes the share as a browser's would)."""
    assert services.idp is not None

    def client(username: str) -> httpx2.AsyncClient:
        assert services.idp is not None
        return httpx2.AsyncClient(
            base_url=f"https://127.0.0.1:{zurich.settings.port}/graph/v1beta1",
            headers={"Authorization": f"Bearer {services.idp.access_token_for(username)}"},
            verify=ssl.create_default_context(cafile=certs.ca_file),
            timeout=30,
        )

    async with client("einstein") as einstein, client("admin") as admin:
        drives = (await einstein.get("/me/drives")).raise_for_status().json()["value"]
        if any(drive["name"] == PROJECT for drive in drives):
            return
        drive = (await admin.post("/drives", json={"name": PROJECT})).raise_for_status()
        drive_id = drive.json()["id"]
        manager = {"recipients": [{"objectId": "einstein"}], "roles": ["manager"]}
        (await admin.post(f"/drives/{drive_id}/root/invite", json=manager)).raise_for_status()
        files = f"https://127.0.0.1:{zurich.settings.port}/dav/spaces/{drive_id}/{FOLDER}"
        (await einstein.request("MKCOL", files)).raise_for_status()
        welcome = b"Hello Marie, this folder lives at zurich.test.\n"
        (await einstein.put(f"{files}/{FILE}", content=welcome)).raise_for_status()
        invite = {
            "recipients": [{"objectId": SHARED_WITH, "@libre.graph.recipient.type": "user"}],
            "roles": ["editor"],
        }
        where = f"/drives/{drive_id}/root:/{FOLDER}:/invite"
        (await einstein.post(where, json=invite)).raise_for_status()


def spki_hash(cert_file: str) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: the base64 SHA-256 of the
    certificate's public key."""
    with open(cert_file, "rb") as handle:
        cert = x509.load_pem_x509_certificates(handle.read())[0]
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def own_command() -> str:
    """This spacereg, as a shell can run it from any directory: the console script beside the
    interpreter (a newcomer's `.venv/bin` is not on their PATH), else the interpreter's `-m`."""
    script = Path(sys.executable).parent / "spacereg"
    if script.is_file():
        return shlex.quote(str(script.absolute()))
    return shlex.join([str(Path(sys.executable).absolute()), "-m", "registry"])


def instructions(sites: list[Site], certs: CertFiles, options: Options) -> str:
    """What a person needs: URLs, users, the CA, a browser command and a curl line each."""
    users = ", ".join(f"{name} / {password}" for name, password, _ in USERS)
    lines = ["", "spacereg demo: two federated domains, peered", ""]
    lines += [f"  {site.domain:<12} {site.settings.base_url}" for site in sites]
    lines += ["", f"  users at both (user / password): {users}", f"  CA: {certs.ca_file}"]
    if options.share:
        shared = f"{PROJECT}/{FOLDER} at zurich.test with {SHARED_WITH}"
        lines.append(f"  shared: {shared} (pending until she accepts at paris)")
    profile = (options.data_dir / "chromium").resolve()
    lines += [
        "",
        "Browser (Chromium resolves *.test to the demo and trusts its certificate):",
        f"  chromium --user-data-dir={profile} "
        "--host-resolver-rules='MAP *.test 127.0.0.1' "
        f"--ignore-certificate-errors-spki-list={spki_hash(certs.cert_file)} "
        + " ".join(site.settings.base_url for site in sites),
        "",
        "curl:",
    ]
    for site, user in zip(sites, ("einstein", "marie"), strict=True):
        port = site.settings.port
        token = f"$({own_command()} --config {site.config} token {user})"
        lines.append(
            f"  curl -s --cacert {certs.ca_file} --resolve {site.host}:{port}:127.0.0.1 "
            f'-H "Authorization: Bearer {token}" {site.settings.base_url}/graph/v1.0/me/drives'
        )
    lines += ["", "Ctrl-C stops both; a second start reuses " + str(options.data_dir), ""]
    return "\n".join(lines) + "\n"
