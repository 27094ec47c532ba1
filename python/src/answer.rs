//! Extracted answers as Python objects, for `rlvr_verifier.compat` (Math-Verify's
//! `parse`/`verify`): `parse` returns [`ParsedAnswer`]s where Math-Verify returns SymPy objects,
//! and `verify` compares them with the verifier's own comparison.

use protocol::{MathOptions, MathVerdict};
use pyo3::basic::CompareOp;
use pyo3::prelude::*;
use pyo3::types::PyString;
use verifier::math::extract::{self, ExtractError, Extracted};

use crate::grading::options_from_json;

/// An answer extracted from text and parsed into the grader's answer language. Opaque: compare
/// it with `rlvr_verifier.compat.verify`, or with `==` (against another answer, a string of
/// math, a number, or anything whose `str()` is math, such as a SymPy object).
#[pyclass(frozen, module = "rlvr_verifier._native")]
#[derive(Debug)]
pub(crate) struct ParsedAnswer {
    inner: Extracted,
}

#[pymethods]
impl ParsedAnswer {
    /// The answer's source text, as found in the input.
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }

    fn __str__(&self) -> &str {
        &self.inner.text
    }

    fn __repr__(&self) -> String {
        format!("ParsedAnswer({:?})", self.inner.text)
    }

    fn __richcmp__(
        &self,
        py: Python<'_>,
        other: &Bound<'_, PyAny>,
        op: CompareOp,
    ) -> PyResult<Py<PyAny>> {
        let eq = match op {
            CompareOp::Eq => true,
            CompareOp::Ne => false,
            _ => return Ok(py.NotImplemented()),
        };
        let same = match other.cast::<ParsedAnswer>() {
            Ok(o) => equal(&self.inner, &o.get().inner, &MathOptions::default()),
            Err(_) => {
                // A number, a string of math or a SymPy object: its text, with Python's `**`
                // as `^`, parsed whole.
                let text = other.str()?.to_string().replace("**", "^");
                match extract::gold(&text, &MathOptions::default()) {
                    Ok(o) => equal(&self.inner, &o, &MathOptions::default()),
                    Err(_) => false,
                }
            }
        };
        Ok((same == eq)
            .into_pyobject(py)?
            .to_owned()
            .into_any()
            .unbind())
    }
}

fn equal(gold: &Extracted, pred: &Extracted, o: &MathOptions) -> bool {
    verifier::math::compare(gold, pred, o) == MathVerdict::Correct
}

/// Extracts the answer from `text` under the options (JSON, as for `grade_math`). `whole`:
/// treat `text` as a gold answer (an unwrapped one is parsed whole) rather than a response.
/// Returns `(answer or None, the candidate's text or None)`: the text is there even when the
/// candidate did not parse (Math-Verify's string fallback).
#[pyfunction]
#[pyo3(signature = (text, options_json=None, whole=false))]
pub(crate) fn extract_answer(
    py: Python<'_>,
    text: String,
    options_json: Option<&str>,
    whole: bool,
) -> PyResult<(Option<ParsedAnswer>, Option<Py<PyString>>)> {
    let o = options_from_json(options_json)?;
    let found = py.detach(|| {
        if whole {
            extract::gold(&text, &o)
        } else {
            extract::pred(&text, &o)
        }
    });
    Ok(match found {
        Ok(e) => {
            let t = PyString::new(py, &e.text).unbind();
            (Some(ParsedAnswer { inner: e }), Some(t))
        }
        Err(ExtractError::Unparseable(t) | ExtractError::TooLarge(t)) => {
            (None, Some(PyString::new(py, &t).unbind()))
        }
        Err(ExtractError::NoAnswer) => (None, None),
    })
}

/// Is `pred` equal to `gold` (Math-Verify's asymmetric `verify(gold, pred)`), within the
/// grader's fuel and time budget (running out counts as not equal)? Releases the GIL.
#[pyfunction]
#[pyo3(signature = (gold, pred, float_rounding=6, strict=true, allow_set_relation_comp=false))]
pub(crate) fn answers_equal(
    py: Python<'_>,
    gold: &ParsedAnswer,
    pred: &ParsedAnswer,
    float_rounding: u32,
    strict: bool,
    allow_set_relation_comp: bool,
) -> bool {
    let o = MathOptions {
        float_rounding,
        strict,
        allow_set_relation_comp,
        ..MathOptions::default()
    };
    py.detach(|| equal(&gold.inner, &pred.inner, &o))
}

/// Does `pred` match a gold answer that did not parse (`gold` is its text)? The grader's rule:
/// written the same way, or as the value after the gold's last `=`.
#[pyfunction]
pub(crate) fn matches_unparsed_gold(gold: &str, pred: &ParsedAnswer) -> bool {
    verifier::math::matches_unparsed_gold(gold, &pred.inner.text)
}
