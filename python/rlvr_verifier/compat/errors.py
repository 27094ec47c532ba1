"""Math-Verify's ``errors`` module."""


class TimeoutException(BaseException):
    """A comparison ran past ``timeout_seconds`` (a BaseException, as in Math-Verify)."""
