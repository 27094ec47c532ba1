"""Math-Verify's ``math_metric``."""

import logging
from typing import Callable, List, Optional, Sequence, Tuple

from .grader import verify
from .parser import ExprExtractionConfig, ExtractionTarget, parse

logger = logging.getLogger(__name__)

__all__ = ["math_metric"]


def math_metric(
    gold_extraction_target: Sequence[ExtractionTarget] = (ExprExtractionConfig(),),
    pred_extraction_target: Sequence[ExtractionTarget] = (ExprExtractionConfig(),),
    aggregation_function: Callable[[List[float]], float] = max,
    precision: int = 6,
) -> Callable[[List[str], List[str]], Tuple[float, Optional[Tuple[List[str], List[str]]]]]:
    """A sample-level metric ``fn(golds, predictions) -> (score, (golds_str, preds_str))``:
    each prediction scores 1.0 when it matches any gold, and ``aggregation_function``
    combines the scores. Raises ``ValueError`` when a gold yields no answer."""

    def sample_level_fn(
        golds: List[str], predictions: List[str]
    ) -> Tuple[float, Optional[Tuple[List[str], List[str]]]]:
        extracted_predictions = [parse(p, pred_extraction_target) for p in predictions]
        extracted_golds = [parse(g, gold_extraction_target) for g in golds]
        if any(len(g) == 0 for g in extracted_golds):
            raise ValueError(
                f"No gold targets found for at least one gold. Gold: {golds}, Pred: {predictions}"
            )
        if all(len(p) == 0 for p in extracted_predictions):
            logger.warning(
                "We did not manage to extract a prediction in the correct format. "
                "Gold: %s, Pred: %s",
                golds,
                predictions,
            )
        strs = (
            [str(g) for gs in extracted_golds for g in gs],
            [str(p) for ps in extracted_predictions for p in ps],
        )
        scores = [
            1.0 if any(verify(g, p, precision) for g in extracted_golds) else 0.0
            for p in extracted_predictions
        ]
        return aggregation_function(scores), strs

    return sample_level_fn
