"""The verifier service the adapters send code to: given explicitly, or from the environment
(``RLVR_VERIFIER_URL``, ``RLVR_VERIFIER_TOKEN``). One client per (URLs, token) per process."""

import os
import threading
from typing import Dict, Optional, Tuple

from .client import VerifierClient

URL_ENV = "RLVR_VERIFIER_URL"
TOKEN_ENV = "RLVR_VERIFIER_TOKEN"

_clients: Dict[Tuple[str, Optional[str]], VerifierClient] = {}
_lock = threading.Lock()


def service(url: Optional[str] = None, token: Optional[str] = None) -> VerifierClient:
    """The client for ``url`` (default ``$RLVR_VERIFIER_URL``); raises ``ValueError`` when no
    URL is configured."""
    url = url or os.environ.get(URL_ENV)
    if not url:
        raise ValueError(
            f"code rewards need the verifier service: pass verifier_url=... or set {URL_ENV}"
        )
    token = token or os.environ.get(TOKEN_ENV)
    key = (url, token)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = VerifierClient(url, token)
        return client
