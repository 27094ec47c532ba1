//! `rlvr_verifier._native`: the verifier crate's math grader and its HTTP client, for Python.
//!
//! * [`grading`]: `grade_math` and the batch form that releases the GIL and grades on every
//!   core, with the same options, verdicts and result fields as `POST /v1/math/grade`.
//! * [`answer`]: extracted answers as Python objects, for `rlvr_verifier.compat` (Math-Verify's
//!   `parse`/`verify` shape).
//! * [`client`]: the Rust `protocol::client::VerifierClient` (replica rotation, retries,
//!   bearer token) behind a blocking call that releases the GIL.
//!
//! The Python modules in `rlvr_verifier/` are the public API; this module is their engine.

use pyo3::prelude::*;

mod answer;
mod client;
mod grading;

/// Rust allocations in this extension (never memory handed to Python, which copies what it
/// keeps) use mimalloc: grading makes many small short-lived allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(grading::grade_math, m)?)?;
    m.add_function(wrap_pyfunction!(grading::grade_math_kw, m)?)?;
    m.add_function(wrap_pyfunction!(grading::grade_math_batch, m)?)?;
    m.add_function(wrap_pyfunction!(grading::default_threads, m)?)?;
    m.add_function(wrap_pyfunction!(grading::conformance_options, m)?)?;
    m.add_function(wrap_pyfunction!(answer::extract_answer, m)?)?;
    m.add_function(wrap_pyfunction!(answer::answers_equal, m)?)?;
    m.add_function(wrap_pyfunction!(answer::matches_unparsed_gold, m)?)?;
    m.add_class::<answer::ParsedAnswer>()?;
    m.add_class::<client::NativeClient>()?;
    Ok(())
}
