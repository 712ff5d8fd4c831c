"""Reading the WebDAV listings the space page shows: what the storage answered, or an error a
page can show (never a 500) when it is not a listing."""

from __future__ import annotations

import pytest

from registry.core.errors import BadRequest, NotFound, PayloadTooLarge, Unavailable
from registry.web.files import LISTING_MAX_BYTES, child, clean_path, listing

SPACE = "0123456789abcdef0123456789abcdef"
LISTED = f"""<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:">
<d:response><d:href>/dav/spaces/{SPACE}/a%20b/</d:href><d:propstat><d:prop>
<d:resourcetype><d:collection/></d:resourcetype></d:prop></d:propstat></d:response>
<d:response><d:href>/dav/spaces/{SPACE}/a%20b/z.txt</d:href><d:propstat><d:prop>
<d:resourcetype/><d:getcontentlength>12</d:getcontentlength>
<d:getlastmodified>not a date</d:getlastmodified></d:prop></d:propstat></d:response>
<d:response><d:href>/dav/spaces/{SPACE}/a%20b/y/</d:href><d:propstat><d:prop>
<d:resourcetype><d:collection/></d:resourcetype>
<d:getlastmodified>Mon, 30 Nov 2026 10:00:00 GMT</d:getlastmodified></d:prop></d:propstat>
</d:response>
</d:multistatus>""".encode()


def test_a_listing_names_the_folders_first_then_the_files() -> None:
    folder, file = listing(207, LISTED, SPACE, "/a b")
    assert (folder.name, folder.path, folder.folder, folder.size) == ("y", "/a b/y", True, None)
    assert folder.modified is not None and folder.modified.year == 2026
    assert (file.name, file.size, file.modified) == ("z.txt", 12, None)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, b"", NotFound),
        (207, b"<d:multistatus xmlns:d='DAV:'><d:resp", Unavailable),
        (207, b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', Unavailable),
        (207, b" " * LISTING_MAX_BYTES, PayloadTooLarge),
    ],
)
def test_what_is_not_a_listing_is_an_error_a_page_can_show(
    status: int, body: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        listing(status, body, SPACE, "/")


def test_paths_from_forms_stay_inside_the_space() -> None:
    assert clean_path("../../etc/passwd") == "/etc/passwd"
    assert clean_path("") == "/"
    assert child("/a", " b ") == "/a/b"
    for bad in ("", "..", "x/y"):
        with pytest.raises(BadRequest):
            child("/a", bad)
