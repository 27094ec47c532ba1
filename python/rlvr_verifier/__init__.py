"""rlvr_verifier: the RLVR verifier's math grader in-process, and a client for its service.

* :func:`grade_math`, :func:`grade_math_batch`: the verifier's own grader (compiled in), with
  the options and result fields of ``POST /v1/math/grade``; the batch form releases the GIL
  and grades on every core.
* :class:`VerifierClient`: the shared service (math, code, SandboxFusion ``/run_code``), with
  replica rotation and retries.
* :mod:`rlvr_verifier.compat`: Math-Verify's ``parse``/``verify`` API.
* :mod:`rlvr_verifier.verl`, :mod:`rlvr_verifier.trl`, :mod:`rlvr_verifier.openrlhf`: reward
  functions for those trainers.

See docs/python.md.
"""

from ._native import __version__
from .client import VerifierClient
from .errors import VerifierError
from .grading import agrade_math_batch, default_threads, grade_math, grade_math_batch

__all__ = [
    "__version__",
    "grade_math",
    "grade_math_batch",
    "agrade_math_batch",
    "default_threads",
    "VerifierClient",
    "VerifierError",
]
