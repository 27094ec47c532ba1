"""A client for the shared verifier service (``verifier serve``): math grading, code judging
and SandboxFusion's ``/run_code``.

It is the Rust client the trainer uses (``protocol::client``), so the rules are the same:
requests go round-robin over the replicas, and a retry goes to the next replica; connection
errors, 429 and 503 are retried with exponential backoff (``base_delay_s · 2ⁿ``, capped at
``max_delay_s``), any other error status fails at once with :class:`VerifierError`. Every call
releases the GIL while it waits, so threads can share one client; the ``a``-prefixed methods
are the same calls for asyncio code. Plain ``http://`` only: the verifier is meant for
loopback or a private network (the bearer token travels in clear text).
"""

import asyncio
import json
import os
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Union

from . import _native

__all__ = ["VerifierClient"]


class VerifierClient:
    """Client for one or more verifier replicas.

    Args:
        urls: a base URL (``"http://127.0.0.1:8470"``), several separated by commas, or a list.
        token: bearer token, when the service runs with ``--auth-token-file``. Default none.
        timeout_s: per-attempt HTTP timeout, seconds. Default 120.
        max_attempts: attempts per request, the first included. Default 8.
        base_delay_s: first backoff, seconds. Default 0.1.
        max_delay_s: backoff cap, seconds. Default 5.
        patience_s: instead of ``max_attempts``: retry until the waits add up to this many
            seconds (how long a verifier may be down or overloaded before a call fails).
    """

    def __init__(
        self,
        urls: Union[str, Sequence[str]],
        token: Optional[str] = None,
        *,
        timeout_s: float = 120.0,
        max_attempts: int = 8,
        base_delay_s: float = 0.1,
        max_delay_s: float = 5.0,
        patience_s: Optional[float] = None,
    ):
        joined = urls if isinstance(urls, str) else ",".join(urls)
        self._args = dict(
            urls=joined,
            token=token,
            timeout_s=float(timeout_s),
            max_attempts=int(max_attempts),
            base_delay_s=float(base_delay_s),
            max_delay_s=float(max_delay_s),
            patience_s=None if patience_s is None else float(patience_s),
        )
        self._connect()

    def _connect(self) -> None:
        self._native = _native.NativeClient(**self._args)
        self._pid = os.getpid()

    def _client(self) -> "_native.NativeClient":
        # A forked child must not reuse the parent's connections.
        if self._pid != os.getpid():
            self._connect()
        return self._native

    # Pickling keeps the settings, not the connections (TRL and verl may ship reward
    # functions holding a client to other processes).
    def __getstate__(self) -> Dict[str, Any]:
        return dict(self._args)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self._args = state
        self._connect()

    def __repr__(self) -> str:
        return f"VerifierClient({self.urls!r})"

    @property
    def urls(self) -> List[str]:
        """The replicas' base URLs."""
        return self._native.urls

    def healthz(self) -> None:
        """``GET /healthz`` on the first replica; raises :class:`VerifierError` unless 200."""
        self._client().healthz()

    def grade_math(
        self, responses: Sequence[str], ground_truths: Sequence[str], **options: Any
    ) -> List[Dict[str, Any]]:
        """``POST /v1/math/grade``: the same options and result dicts as
        :func:`rlvr_verifier.grade_math_batch`, graded by the service."""
        if len(responses) != len(ground_truths):
            raise ValueError(
                f"{len(responses)} responses but {len(ground_truths)} ground truths"
            )
        items = []
        for r, g in zip(responses, ground_truths):
            item: Dict[str, Any] = {"response": r, "ground_truth": g}
            if options:
                item["options"] = options
            items.append(item)
        return self.grade_math_items(items)

    def grade_math_items(self, items: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """``POST /v1/math/grade`` with items as the HTTP API spells them
        (``{"id"?, "response", "ground_truth", "options"?}``)."""
        answer = self._client().grade_math(json.dumps({"items": list(items)}))
        return json.loads(answer)["results"]

    def judge_code(self, items: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """``POST /v1/code/judge``: items as the HTTP API spells them (``{"language",
        "response" | "source_code", "tests", ...}``, see docs/code-judging.md); one result dict
        per item, in order."""
        answer = self._client().judge_code(json.dumps({"items": list(items)}))
        return json.loads(answer)["results"]

    def run_code(self, code: str, language: str = "python", **fields: Any) -> Dict[str, Any]:
        """``POST /run_code`` (SandboxFusion's request: ``stdin``, ``compile_timeout``,
        ``run_timeout``, ``memory_limit_MB``, ``files``); SandboxFusion's response dict."""
        request = dict(fields, code=code, language=language)
        return json.loads(self._client().run_code(json.dumps(request)))

    async def agrade_math(
        self, responses: Sequence[str], ground_truths: Sequence[str], **options: Any
    ) -> List[Dict[str, Any]]:
        """:meth:`grade_math` for asyncio code."""
        return await _in_executor(partial(self.grade_math, responses, ground_truths, **options))

    async def ajudge_code(self, items: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """:meth:`judge_code` for asyncio code."""
        return await _in_executor(partial(self.judge_code, items))

    async def arun_code(self, code: str, language: str = "python", **fields: Any) -> Dict[str, Any]:
        """:meth:`run_code` for asyncio code."""
        return await _in_executor(partial(self.run_code, code, language, **fields))


async def _in_executor(call):
    # The native call releases the GIL while it waits on the network.
    return await asyncio.get_running_loop().run_in_executor(None, call)
