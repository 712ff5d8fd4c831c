"""The ownCloud properties (`http://owncloud.org/ns`) that sync clients read in PROPFIND, for
the local driver's files and folders, and the request headers by which the host that
authorised a request tells the driver what the caller may do and how big the space may grow
(the host sets them and drops any a client sent)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from wsgidav.xml_tools import etree

from storage import checksums, file_ids
from storage.folder_tree import FolderTree

OC = "{http://owncloud.org/ns}"
# The letters of what the caller may do in the space (R share, D delete, N rename, V move,
# W write a file, C create a file, K create a folder); absent: no `oc:permissions` answered.
PERMISSIONS_HEADER = "X-Spacereg-Permissions"
QUOTA_HEADER = "X-Spacereg-Quota"  # the space's quota in bytes; absent or 0: unlimited
UNLIMITED = "-3"  # ownCloud's quota-available-bytes when no quota is set
_FILE_LETTERS = frozenset("SRMDNVW")
_FOLDER_LETTERS = frozenset("SRMDNVCK")
_NOT_AT_ROOT = frozenset("DNV")  # a space's root is neither deleted nor renamed nor moved
PERMISSION_ORDER = "SRMDNVWCK"
ENVIRON_PERMISSIONS = "HTTP_" + PERMISSIONS_HEADER.upper().replace("-", "_")
ENVIRON_QUOTA = "HTTP_" + QUOTA_HEADER.upper().replace("-", "_")


@dataclass
class Item:
    """A file or folder of a space, as a request sees it."""

    space_id: str
    space_dir: str
    file_path: str
    is_dir: bool
    environ: dict[str, Any]

    @cached_property
    def at_root(self) -> bool:
        return os.path.normpath(self.file_path) == os.path.normpath(self.space_dir)


class UnknownProperty(KeyError):
    pass


def value(name: str, item: Item, tree: FolderTree) -> Any:
    """The value of the ownCloud property `name` (Clark notation) of `item`."""
    local = name.removeprefix(OC)
    if local in ("id", "fileid"):
        number = item_number(item)
        return file_ids.item_id(item.space_id, _root_or(item, number)) if local == "id" else number
    if local == "permissions" and ENVIRON_PERMISSIONS in item.environ:
        return permissions(item.environ[ENVIRON_PERMISSIONS], item.is_dir, item.at_root)
    if local == "size":
        return str(size(item, tree))
    if local == "checksums" and not item.is_dir:
        element = etree.Element(name)
        etree.SubElement(element, OC + "checksum").text = checksums.listed(item.file_path)
        return element
    if local == "share-types":
        return etree.Element(name)  # shares of single files and folders do not exist yet
    if local == "data-fingerprint":
        return ""  # no restore from a backup has happened
    raise UnknownProperty(name)


def item_number(item: Item) -> str:
    if item.at_root:
        return file_ids.root_number(item.space_id)
    return file_ids.number_of(item.file_path)


def _root_or(item: Item, number: str) -> str:
    """A space's root is `<space-id>!<space-id>`, the drive's root item id."""
    return item.space_id if item.at_root else number


def size(item: Item, tree: FolderTree) -> int:
    if item.is_dir:
        return tree.summary(item.file_path).size
    return os.stat(item.file_path).st_size


def available(item: Item, tree: FolderTree) -> str:
    """What is left of the space's quota: `quota-available-bytes`."""
    total = item.environ.get(ENVIRON_QUOTA, "")
    if not total.isascii() or not total.isdigit() or int(total) == 0:
        return UNLIMITED
    return str(max(0, int(total) - tree.summary(item.space_dir).size))


def permissions(letters: str, is_dir: bool, at_root: bool) -> str:
    """The caller's letters that apply to a file or a folder, in the order ownCloud writes them."""
    allowed = (_FOLDER_LETTERS if is_dir else _FILE_LETTERS) - (_NOT_AT_ROOT if at_root else set())
    granted = set(letters) & allowed
    return "".join(letter for letter in PERMISSION_ORDER if letter in granted)
