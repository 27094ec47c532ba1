//! `grade_math` in-process: one item, or a batch graded on every core with the GIL released.

use std::cell::RefCell;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::{MathItem, MathOptions, MathResult};
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Batches smaller than this are graded on the calling thread: starting threads costs more
/// than grading a handful of typical items (a few microseconds each).
const PARALLEL_MIN_ITEMS: usize = 32;

/// Options from their JSON form (the `options` object of `POST /v1/math/grade`): unknown keys
/// and out-of-range values raise `ValueError` naming the field.
pub(crate) fn options_from_json(json: Option<&str>) -> PyResult<MathOptions> {
    let Some(json) = json else {
        return Ok(MathOptions::default());
    };
    // Callers pass the same options call after call: the last valid ones are kept per thread.
    if let Some(o) = LAST_OPTIONS.with_borrow(|last| {
        last.as_ref()
            .filter(|(text, _)| text == json)
            .map(|(_, o)| o.clone())
    }) {
        return Ok(o);
    }
    let o: MathOptions = serde_json::from_str(json)
        .map_err(|e| PyValueError::new_err(format!("invalid grading option: {e}")))?;
    o.validate().map_err(PyValueError::new_err)?;
    LAST_OPTIONS.set(Some((json.to_owned(), o.clone())));
    Ok(o)
}

thread_local! {
    /// The last options parsed on this thread: their JSON and their value (validated).
    static LAST_OPTIONS: RefCell<Option<(String, MathOptions)>> = const { RefCell::new(None) };
}

/// Options from keyword arguments (`grade_math(r, g, float_rounding=3)`): the JSON form's rules
/// (unknown keys and out-of-range values raise `ValueError`; a value JSON cannot encode raises
/// `TypeError`). The last options seen on this thread are kept as a deep copy with their parsed
/// value, so the same options call after call cost one dict comparison, and a caller mutating
/// its lists later cannot match stale options.
fn options_from_kwargs(
    py: Python<'_>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<MathOptions> {
    let Some(kwargs) = kwargs.filter(|d| !d.is_empty()) else {
        return Ok(MathOptions::default());
    };
    let hit = LAST_KWARGS.with_borrow(|last| -> PyResult<Option<MathOptions>> {
        match last {
            Some((seen, o)) if seen.bind(py).eq(kwargs)? => Ok(Some(o.clone())),
            _ => Ok(None),
        }
    })?;
    if let Some(o) = hit {
        return Ok(o);
    }
    let json: String = py
        .import(intern!(py, "json"))?
        .call_method1(intern!(py, "dumps"), (kwargs,))?
        .extract()?;
    let o = options_from_json(Some(&json))?;
    let copy = py
        .import(intern!(py, "copy"))?
        .call_method1(intern!(py, "deepcopy"), (kwargs,))?
        .cast_into::<PyDict>()?;
    LAST_KWARGS.set(Some((copy.unbind(), o.clone())));
    Ok(o)
}

thread_local! {
    /// The last keyword options seen on this thread (a deep copy) and their parsed value.
    static LAST_KWARGS: RefCell<Option<(Py<PyDict>, MathOptions)>> = const { RefCell::new(None) };
}

/// A result as the dict `POST /v1/math/grade` returns for it.
fn result_dict<'py>(py: Python<'py>, r: &MathResult) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    if let Some(id) = &r.id {
        d.set_item(intern!(py, "id"), id)?;
    }
    d.set_item(intern!(py, "correct"), r.correct)?;
    d.set_item(intern!(py, "reward"), r.reward)?;
    d.set_item(intern!(py, "verdict"), r.verdict.as_str())?;
    d.set_item(intern!(py, "extracted"), r.extracted.as_deref())?;
    d.set_item(intern!(py, "elapsed_us"), r.elapsed_us)?;
    Ok(d)
}

/// `rlvr_verifier.grade_math(response, ground_truth, **options)`: grades one model `response`
/// against `ground_truth` with the options of `POST /v1/math/grade` as keyword arguments, and
/// returns that endpoint's result fields as a dict. Releases the GIL while grading.
///
/// >>> grade_math("so the answer is \\boxed{\\frac{1}{2}}", "0.5")["correct"]
/// True
#[pyfunction]
#[pyo3(signature = (response, ground_truth, **options))]
pub(crate) fn grade_math_kw<'py>(
    py: Python<'py>,
    response: String,
    ground_truth: String,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let item = MathItem {
        id: None,
        response,
        ground_truth,
        options: Some(options_from_kwargs(py, options)?),
    };
    let r = py.detach(|| verifier::math::grade(&item));
    result_dict(py, &r)
}

/// Grades one response against its gold answer; `options_json` is the options object as JSON
/// (`None`: the defaults). Releases the GIL while grading.
#[pyfunction]
#[pyo3(signature = (response, ground_truth, options_json=None))]
pub(crate) fn grade_math<'py>(
    py: Python<'py>,
    response: String,
    ground_truth: String,
    options_json: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let item = MathItem {
        id: None,
        response,
        ground_truth,
        options: Some(options_from_json(options_json)?),
    };
    let r = py.detach(|| verifier::math::grade(&item));
    result_dict(py, &r)
}

/// Grades `responses[i]` against `ground_truths[i]` for every `i`, on `threads` threads
/// (default: every core) with the GIL released; results in input order.
#[pyfunction]
#[pyo3(signature = (responses, ground_truths, options_json=None, threads=None))]
pub(crate) fn grade_math_batch<'py>(
    py: Python<'py>,
    responses: Vec<String>,
    ground_truths: Vec<String>,
    options_json: Option<&str>,
    threads: Option<usize>,
) -> PyResult<Bound<'py, PyList>> {
    if responses.len() != ground_truths.len() {
        return Err(PyValueError::new_err(format!(
            "{} responses but {} ground truths: they must pair up one to one",
            responses.len(),
            ground_truths.len()
        )));
    }
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    let options = options_from_json(options_json)?;
    let items: Vec<MathItem> = responses
        .into_iter()
        .zip(ground_truths)
        .map(|(response, ground_truth)| MathItem {
            id: None,
            response,
            ground_truth,
            options: Some(options.clone()),
        })
        .collect();
    let threads = threads.unwrap_or_else(default_threads);
    let results = py.detach(|| grade_all(&items, threads));
    let out = PyList::empty(py);
    for r in &results {
        out.append(result_dict(py, r)?)?;
    }
    Ok(out)
}

/// The default batch parallelism: the cores this process may run on.
#[pyfunction]
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Grades every item on up to `threads` scoped threads that take items from a shared counter
/// (uneven item costs balance out); results in input order.
fn grade_all(items: &[MathItem], threads: usize) -> Vec<MathResult> {
    let threads = threads.min(items.len());
    if threads <= 1 || items.len() < PARALLEL_MIN_ITEMS {
        return items.iter().map(verifier::math::grade).collect();
    }
    let next = AtomicUsize::new(0);
    let mut graded: Vec<(usize, MathResult)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, verifier::math::grade(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(mine) => mine,
                // The grader does not panic (it is fuzzed); if it ever did, re-raise it here
                // so PyO3 turns it into a Python exception.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    graded.sort_unstable_by_key(|(i, _)| *i);
    graded.into_iter().map(|(_, r)| r).collect()
}

/// The grading options (as JSON) for a conformance case's `config` object (as JSON): the
/// verifier's own mapping (`verifier::math::conformance`), so the Python conformance test
/// grades each case exactly as the Rust one does.
#[pyfunction]
pub(crate) fn conformance_options(config_json: &str) -> PyResult<String> {
    let config: serde_json::Value = serde_json::from_str(config_json)
        .map_err(|e| PyValueError::new_err(format!("invalid case config: {e}")))?;
    let o = verifier::math::conformance::options_from_case_config(&config);
    serde_json::to_string(&o).map_err(|e| PyValueError::new_err(e.to_string()))
}
