"""Errors raised by rlvr_verifier."""

from typing import Optional


class VerifierError(Exception):
    """The verifier service failed a request: it answered with an error status (``status``,
    after retries where the status is retryable), could not be reached (``status`` is None),
    or sent a malformed answer (``status`` is None).

    Wrong answers and failing programs are never errors: they are verdicts in the answer.
    """

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status
