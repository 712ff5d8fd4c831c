"""Paths below a space's root as locks and properties key them: `/`, or `/a/b` without a
trailing slash, so that a folder named with or without one is the same resource."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from starlette.types import Scope

from registry.core.errors import BadRequest, UriTooLong
from storage.dav_paths import BadPath, PathTooLong, check_request


def check_paths(scope: Scope) -> None:
    """400 (414 for the request's own path) unless the request's path and any Destination
    are paths a space can hold (`storage.dav_paths`)."""
    try:
        check_request(scope)
    except PathTooLong as exc:
        raise UriTooLong(str(exc)) from exc
    except BadPath as exc:
        raise BadRequest(str(exc)) from exc


def normal(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped if stripped.startswith("/") else "/" + stripped


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def ancestors(path: str) -> list[str]:
    """`path` and every folder above it, up to `/`."""
    found = [path]
    while path != "/":
        path = parent(path)
        found.append(path)
    return found


def is_within(path: str, top: str) -> bool:
    """Whether `path` is `top` or below it."""
    return path == top or top == "/" or path.startswith(top + "/")


def moved(path: str, source: str, target: str) -> str:
    """Where `path`, at or below `source`, is once `source` became `target`."""
    return target + path[len(source) :] if path != source else target


def from_url(url: str, prefix: str) -> str | None:
    """The path below the space of a URL or an href whose path starts with `prefix` (the
    mount point and the space's id), else None."""
    path = unquote(urlsplit(url).path)
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return normal(path[len(prefix) :])
