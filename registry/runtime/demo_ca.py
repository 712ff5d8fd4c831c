"""A local certificate authority and one TLS certificate for a set of names, as PEM files
(`spacereg demo` and the tests serve HTTPS on loopback with them; trustme makes them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass
class CertFiles:
    ca_file: str
    cert_file: str
    key_file: str

    @classmethod
    def in_directory(cls, directory: Path) -> CertFiles:
        return cls(
            str(directory / "ca.pem"), str(directory / "cert.pem"), str(directory / "key.pem")
        )

    def exist(self) -> bool:
        return all(Path(name).is_file() for name in (self.ca_file, self.cert_file, self.key_file))


def make_certs(directory: Path, names: Sequence[str]) -> CertFiles:
    """A new CA and one leaf certificate for `names`, as PEM files in `directory`."""
    ca = trustme.CA()
    leaf = ca.issue_cert(*names)
    files = CertFiles.in_directory(directory)
    ca.cert_pem.write_to_path(files.ca_file)
    leaf.private_key_pem.write_to_path(files.key_file)
    with open(files.cert_file, "wb") as handle:
        for blob in leaf.cert_chain_pems:
            handle.write(blob.bytes())
    return files
