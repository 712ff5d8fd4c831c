"""`spacereg serve --workers N`: N processes of the registry answering on one port.

uvicorn starts the worker processes and restarts one that dies; each builds the whole app from
the same settings (the parent hands them on in the environment, which outranks the file, with
the path of the file), and the workers act as replicas of one node: the database is shared,
`WorkerBus` tells every worker of a change (unless NATS does), and the jobs that must run once
per node run in the one worker that holds the node's lock (`NodeJobs`). `/metrics` sums the
instruments of every worker (`Metrics.collect`).
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette

from federation.keys import SigningKeys
from registry.auth.idp.keys import IdpKeys
from registry.auth.idp.users import load_users
from registry.runtime.metrics import MULTIPROCESS_DIR_VARIABLE
from registry.runtime.settings import Settings, load_settings

logger = logging.getLogger("spacereg")

# The configuration file of the `serve` that started the workers (empty: none).
CONFIG_FILE_VARIABLE = "SPACEREG_WORKER_CONFIG_FILE"

Run = Callable[..., None]


def serve(settings: Settings, config_file: Path | None, run: Run) -> None:
    """Make what the workers would otherwise race to make, then run them with `run` (the
    CLI's way of running uvicorn) until stopped."""
    _prepare(settings)
    with tempfile.TemporaryDirectory(prefix="spacereg-metrics-") as metrics:
        os.environ.update(
            {
                CONFIG_FILE_VARIABLE: str(config_file.resolve()) if config_file else "",
                "SPACEREG_DATA_DIR": str(settings.data_dir),
                "SPACEREG_HOST": settings.host,
                "SPACEREG_PORT": str(settings.port),
                "SPACEREG_WORKERS": str(settings.workers),
                MULTIPROCESS_DIR_VARIABLE: metrics,
            }
        )
        logger.info("starting %d worker processes", settings.workers)
        run(
            f"{__name__}:worker_app",
            settings.host,
            settings.port,
            settings.tls_certfile,
            settings.tls_keyfile,
            factory=True,
            workers=settings.workers,
        )


def _prepare(settings: Settings) -> None:
    """The keys and the embedded IdP's demo users, made once (each worker only loads them)."""
    SigningKeys.load_or_create(settings.data_dir / "federation-keys")
    if settings.embedded_idp:
        directory = settings.data_dir / "idp"
        IdpKeys.load_or_create(directory)
        load_users(directory, settings.idp_users, logger.warning)


def worker_app() -> Starlette:
    """The app of one worker process (uvicorn calls this in each)."""
    from registry.runtime.app import create_app
    from registry.runtime.cli import configure_logging

    config_file = os.environ.get(CONFIG_FILE_VARIABLE)
    settings = load_settings(Path(config_file) if config_file else None)
    configure_logging(settings.log_format)
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app
