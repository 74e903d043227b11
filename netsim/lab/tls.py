"""The lab's TLS: a certificate authority made when the lab starts, and one server
certificate for every server's host name and loopback address (``trustme``, on
``cryptography``), so ``curl --cacert``, ``openssl s_client -CAfile`` and Python's ``ssl``
verify the lab's servers as they would a real provider's.
"""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

__all__ = ["LabTLS"]


class LabTLS:
    """The CA, its certificate on disk (``ca_path``) and the servers' TLS context.

    Args:
        names: The servers' host names and loopback addresses (the certificate's names).
        folder: Where the CA certificate is written; a new temporary folder if None.
    """

    def __init__(self, names: list[str], folder: Path | None = None) -> None:
        import trustme

        self._ca = trustme.CA(organization_name="netsim lab")
        certificate = self._ca.issue_cert(*names)
        folder = Path(tempfile.mkdtemp(prefix="netsim-lab-")) if folder is None else folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_path = folder / "netsim-lab-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self.server_context)

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts the lab's CA (and verifies host names)."""
        context = ssl.create_default_context(cafile=str(self.ca_path))
        return context
