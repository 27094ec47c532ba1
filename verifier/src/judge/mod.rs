//! Code judging: a submission and its tests → runs in a sandbox → per-test verdicts → the
//! submission's verdict and reward.
//!
//! * [`backend`]: which backend judges a Python item under `backend: auto`.
//! * [`language`]: compile and run commands per language.
//! * [`harness`]: the trusted checker of assert and function-call tests, code extraction.
//! * [`compare`]: output comparison outside the box.
//! * [`verdict`]: a run's outcome → a verdict.
//!
//! Compiled languages compile once per submission, in the same sandbox kind with their own
//! limits ([`RunLimits::for_compile`]); the binary is bound read-only into each test run.

pub mod backend;
pub mod compare;
pub mod harness;
pub mod language;
pub mod verdict;

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::{
    Backend, BackendChoice, CodeItem, CodeOptions, CodeResult, CodeTest, CodeVerdict, Language,
    RewardMode, RunReport, TestResult,
};

use crate::sandbox::{Bind, NsSandbox, RunLimits, RunOutcome, RunSpec, Sandbox};
use language::{Recipe, Toolchains};

/// One program to run once (SandboxFusion's `/run_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOnce {
    /// Language.
    pub language: Language,
    /// The program.
    pub code: String,
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Extra files: relative path under `/src` → content.
    pub files: Vec<(String, Vec<u8>)>,
    /// Compile wall-clock limit.
    pub compile_timeout: Duration,
    /// Run wall-clock limit.
    pub run_timeout: Duration,
    /// Memory of the run, bytes.
    pub memory_bytes: u64,
}

/// What [`Judge::run_once`] did: the compile step (compiled languages) and the run (absent
/// when compilation failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOnceResult {
    /// Compile outcome.
    pub compile: Option<RunOutcome>,
    /// Run outcome.
    pub run: Option<RunOutcome>,
}

/// Judges submissions with the sandboxes this host offers.
#[derive(Debug, Clone)]
pub struct Judge {
    ns: Option<Arc<NsSandbox>>,
    ns_error: Option<String>,
    wasm: Option<Arc<dyn Sandbox>>,
    #[cfg(feature = "wasm")]
    wasm_spares: Option<Arc<crate::sandbox::wasm::WasmSandbox>>,
    wasm_error: Option<String>,
    tools: Toolchains,
    work_dir: PathBuf,
}

static SUBMISSIONS: AtomicU64 = AtomicU64::new(0);

/// A submission's private host directories, removed when dropped.
struct Workdir {
    root: PathBuf,
    src: PathBuf,
    out: PathBuf,
    /// The checker of assert and call tests (bound read-only at `/judge`), once written.
    judge: Option<PathBuf>,
}

impl Workdir {
    /// Writes a file at `rel` under `src/` (created directories included), readable and not
    /// writable by the sandbox user.
    fn write_src(&self, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
        let p = self.src.join(rel);
        if let Some(dir) = p.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(&p, bytes)?;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644))
    }

    /// Writes the checker into `judge/` (read-only for the sandbox user).
    fn write_judge(&mut self) -> std::io::Result<()> {
        let dir = self.root.join("judge");
        fs::DirBuilder::new().mode(0o755).create(&dir)?;
        let file = dir.join("check.py");
        fs::write(&file, harness::CHECK_PY)?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644))?;
        self.judge = Some(dir);
        Ok(())
    }

    /// The binds and environment of every run of a submission: the toolchain's binds and
    /// `src/` read-only at `/src` (compile runs add `/out`).
    fn box_of(&self, recipe: &Recipe) -> (Vec<Bind>, Vec<(String, String)>) {
        let mut binds = recipe.binds.clone();
        binds.push(Bind {
            host: self.src.clone(),
            inside: "/src".into(),
            writable: false,
        });
        let mut env = language::base_env();
        env.extend(recipe.env.iter().cloned());
        (binds, env)
    }
}

/// The command of a test run: the compiled program, or the interpreter on `/src/file`.
fn run_argv(recipe: &Recipe, lang: Language, file: &str) -> Vec<String> {
    let mut argv = recipe.run_prefix.clone();
    if !language::is_compiled(lang) {
        argv.push(format!("/src/{file}"));
    }
    argv
}

impl Drop for Workdir {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks a compiler may have left in `out`.
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// One prepared test run.
struct Prepared {
    stdin: Vec<u8>,
    check: Check,
}

/// How a test is run and judged.
enum Check {
    /// The program on the test's stdin; its stdout compared with `expected`.
    Io { expected: String },
    /// The checker runs the asserts (its stdin carries them).
    Assert,
    /// The checker calls the function; its JSON result compared with `expected`.
    Call { expected: serde_json::Value },
}

/// Keeps large run buffers (8 MiB output caps, the copies of floods, wasm host buffers) out of
/// malloc's arenas: glibc's dynamic mmap threshold otherwise rises to the largest buffer freed
/// and later buffers of that size stay resident after use, one set per arena. Measured with
/// the hostile soak (wasm in the process): resident memory rose from 170 to 306 MiB over 11
/// rounds with the dynamic threshold and stayed at 70–71 MiB over 7 rounds with a fixed 1 MiB
/// one. Process-wide and set once; glibc only.
fn bound_allocator_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            #[allow(
                unsafe_code,
                reason = "mallopt only sets an allocator parameter; it takes no pointers"
            )]
            // SAFETY: `mallopt` with an integer parameter touches no memory of ours.
            let _ = unsafe { nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 1 << 20) };
        });
    }
}

impl Judge {
    /// A judge over the namespace backend `ns` (or none: every item is then a
    /// `sandbox_error` naming `ns_error`). The first judge of a process fixes glibc's mmap
    /// threshold at 1 MiB (see `bound_allocator_retention`).
    pub fn new(ns: Result<NsSandbox, crate::sandbox::SandboxError>) -> Judge {
        bound_allocator_retention();
        let (ns, ns_error) = match ns {
            Ok(s) => (Some(Arc::new(s)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let work_dir = ns.as_ref().map_or_else(
            || std::env::temp_dir().join("rlvr-verifier"),
            |s| s.config().work_dir.clone(),
        );
        Judge {
            ns,
            ns_error,
            wasm: None,
            #[cfg(feature = "wasm")]
            wasm_spares: None,
            wasm_error: Some("the wasm backend was not loaded".into()),
            tools: Toolchains::detect(),
            work_dir,
        }
    }

    /// The same judge with the wasm backend (or the reason it is missing), used for Python
    /// items with `backend: wasm` or `auto`.
    #[cfg(feature = "wasm")]
    #[must_use]
    pub fn with_wasm(
        mut self,
        wasm: Result<crate::sandbox::wasm::WasmSandbox, crate::sandbox::SandboxError>,
    ) -> Judge {
        match wasm {
            Ok(w) => {
                let w = Arc::new(w);
                self.wasm = Some(Arc::clone(&w) as Arc<dyn Sandbox>);
                self.wasm_spares = Some(w);
                self.wasm_error = None;
            }
            Err(e) => {
                self.wasm = None;
                self.wasm_spares = None;
                self.wasm_error = Some(e.to_string());
            }
        }
        self
    }

    /// Runs the wasm backend served from spare (pre-started) interpreters.
    pub fn wasm_spare_runs(&self) -> u64 {
        #[cfg(feature = "wasm")]
        if let Some(w) = &self.wasm_spares {
            return w.spare_runs();
        }
        0
    }

    /// Why the wasm backend is not loaded, if it is not.
    pub fn wasm_unavailable_reason(&self) -> Option<&str> {
        self.wasm_error.as_deref()
    }

    /// Whether a sandbox is ready.
    pub fn is_ready(&self) -> bool {
        self.ns.is_some() || self.wasm.is_some()
    }

    /// Why no sandbox is ready, if none is.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.ns_error.as_deref()
    }

    /// The namespace backend, if loaded.
    pub fn ns(&self) -> Option<&NsSandbox> {
        self.ns.as_deref()
    }

    /// Judges one validated item (see [`CodeItem::validate`]). Never fails: problems become
    /// verdicts (`sandbox_error` for the verifier's own).
    ///
    /// With `backend: auto`, Python runs on wasm unless its source uses what WASI lacks; a wasm
    /// result that WASI may have caused is judged again on `ns` (see [`backend`]). Either way
    /// `fallback` says why and `backend` says which one decided.
    pub fn judge(&self, item: &CodeItem) -> CodeResult {
        let start = Instant::now();
        let auto = item.backend == BackendChoice::Auto
            && item.language == Language::Python
            && self.wasm.is_some()
            && self.ns.is_some();
        let mut result = if auto {
            let program = item
                .source_code
                .clone()
                .or_else(|| item.response.as_deref().and_then(harness::last_code_block));
            match program.as_deref().and_then(backend::static_need) {
                Some(why) => {
                    let mut r = self.judge_inner(item, BackendChoice::Ns);
                    r.fallback = Some(why);
                    r
                }
                None => {
                    let r = self.judge_inner(item, BackendChoice::Wasm);
                    match backend::wasm_doubt(&r) {
                        Some(why) => {
                            let mut r = self.judge_inner(item, BackendChoice::Ns);
                            r.fallback = Some(why);
                            r
                        }
                        None => r,
                    }
                }
            }
        } else {
            self.judge_inner(item, item.backend)
        };
        result.id.clone_from(&item.id);
        result.elapsed_us = start.elapsed().as_micros() as u64;
        result
    }

    fn failed(total: usize, backend: Backend, verdict: CodeVerdict, msg: String) -> CodeResult {
        CodeResult {
            id: None,
            verdict,
            reward: 0.0,
            passed: 0,
            total,
            compile: None,
            tests: vec![],
            backend,
            message: Some(msg),
            fallback: None,
            elapsed_us: 0,
        }
    }

    fn judge_inner(&self, item: &CodeItem, choice: BackendChoice) -> CodeResult {
        let total = item.tests.len();
        let sandbox_error =
            |msg: String| Self::failed(total, Backend::Ns, CodeVerdict::SandboxError, msg);
        if let Err(msg) = item.validate() {
            return sandbox_error(format!("invalid item: {msg}"));
        }
        let use_wasm = match choice {
            BackendChoice::Wasm => true,
            BackendChoice::Ns => false,
            BackendChoice::Auto => item.language == Language::Python && self.wasm.is_some(),
        };
        let backend = if use_wasm { Backend::Wasm } else { Backend::Ns };
        let sandbox_error =
            |msg: String| Self::failed(total, backend, CodeVerdict::SandboxError, msg);
        if use_wasm && item.language != Language::Python {
            return sandbox_error(format!(
                "the wasm backend runs python only, not {}",
                item.language.as_str()
            ));
        }
        let sandbox: &dyn Sandbox = if use_wasm {
            match self.wasm.as_deref() {
                Some(w) => w,
                None => {
                    return sandbox_error(format!(
                        "the wasm backend is not available: {}",
                        self.wasm_error.as_deref().unwrap_or("unknown")
                    ));
                }
            }
        } else {
            match self.ns.as_deref() {
                Some(n) => n,
                None => {
                    return sandbox_error(format!(
                        "no sandbox available: {}",
                        self.ns_error.as_deref().unwrap_or("unknown")
                    ));
                }
            }
        };
        let source = match (&item.source_code, &item.response) {
            (Some(s), _) => s.clone(),
            (None, Some(r)) => match harness::last_code_block(r) {
                Some(code) => code,
                None => {
                    return Self::failed(
                        total,
                        backend,
                        CodeVerdict::CompileError,
                        "the response has no fenced code block".into(),
                    );
                }
            },
            (None, None) => return sandbox_error("no program".into()),
        };
        let recipe = match language::recipe(item.language, &self.tools) {
            Ok(r) => r,
            Err(msg) => return sandbox_error(msg),
        };
        let mut work = match self.workdir(self.ns.as_deref()) {
            Ok(w) => w,
            Err(e) => return sandbox_error(format!("preparing the work directory: {e}")),
        };
        let opts = item.options.clone().unwrap_or_default();
        let prepared = match Self::prepare(item, &source, &recipe, &mut work) {
            Ok(p) => p,
            Err(e) => return sandbox_error(format!("writing the sources: {e}")),
        };
        let (mut binds, env) = work.box_of(&recipe);
        if let Some(judge) = &work.judge {
            binds.push(Bind {
                host: judge.clone(),
                inside: harness::JUDGE_DIR_INSIDE.into(),
                writable: false,
            });
        }
        let mut compile_report = None;
        if let (Some(ns), true) = (self.ns.as_deref(), recipe.compile.is_some()) {
            match Self::compile(ns, &recipe, &work, &binds, &env, RunLimits::for_compile()) {
                Err(e) => return sandbox_error(format!("compile step: {e}")),
                Ok(out) => {
                    let report = verdict::report(&out);
                    if let Some(why) = Self::compile_failure(&out, &work) {
                        let mut r =
                            Self::failed(total, Backend::Ns, CodeVerdict::CompileError, why);
                        r.compile = Some(report);
                        return r;
                    }
                    compile_report = Some(report);
                }
            }
            binds.push(Self::out_bind(&work, false));
        }
        let limits = RunLimits::for_run(
            Duration::from_secs_f64(item.time_limit_s),
            item.memory_limit_mb << 20,
        );
        let mut tests = Vec::with_capacity(total);
        for p in &prepared {
            let checked = !matches!(p.check, Check::Io { .. });
            let argv = if checked {
                harness::check_argv(&recipe.run_prefix[0])
            } else {
                run_argv(&recipe, item.language, recipe.source_file)
            };
            let spec = RunSpec {
                argv,
                env: env.clone(),
                binds: binds.clone(),
                stdin: p.stdin.clone(),
                limits,
            };
            let ran = if checked {
                sandbox.run_checked(&spec)
            } else {
                sandbox.run(&spec)
            };
            let t = match ran {
                Ok(out) => TestResult {
                    verdict: Self::check(&out, &p.check, &opts),
                    run: verdict::report(&out),
                },
                Err(e) => TestResult {
                    verdict: CodeVerdict::SandboxError,
                    run: RunReport {
                        stderr_head: e.to_string(),
                        ..RunReport::default()
                    },
                },
            };
            let stop = t.verdict != CodeVerdict::Accepted && opts.stop_on_first_failure;
            tests.push(t);
            if stop {
                break;
            }
        }
        let passed = tests
            .iter()
            .filter(|t| t.verdict == CodeVerdict::Accepted)
            .count();
        let verdict = if tests.iter().any(|t| t.verdict == CodeVerdict::SandboxError) {
            CodeVerdict::SandboxError
        } else {
            tests
                .iter()
                .map(|t| t.verdict)
                .find(|v| *v != CodeVerdict::Accepted)
                .unwrap_or(CodeVerdict::Accepted)
        };
        let reward = match opts.reward {
            _ if verdict == CodeVerdict::SandboxError => 0.0,
            RewardMode::Binary => f64::from(u8::from(passed == total)),
            RewardMode::PassRate => passed as f64 / total as f64,
        };
        let message = (verdict == CodeVerdict::SandboxError).then(|| {
            tests
                .iter()
                .find(|t| t.verdict == CodeVerdict::SandboxError)
                .map(|t| t.run.stderr_head.clone())
                .unwrap_or_default()
        });
        CodeResult {
            id: None,
            verdict,
            reward,
            passed,
            total,
            compile: compile_report,
            tests,
            backend,
            message,
            fallback: None,
            elapsed_us: 0,
        }
    }

    fn out_bind(work: &Workdir, writable: bool) -> Bind {
        Bind {
            host: work.out.clone(),
            inside: "/out".into(),
            writable,
        }
    }

    /// Runs the recipe's compiler with `/out` writable.
    fn compile(
        ns: &NsSandbox,
        recipe: &Recipe,
        work: &Workdir,
        binds: &[Bind],
        env: &[(String, String)],
        limits: RunLimits,
    ) -> Result<RunOutcome, crate::sandbox::SandboxError> {
        let mut cbinds = binds.to_vec();
        cbinds.push(Self::out_bind(work, true));
        let spec = RunSpec {
            argv: recipe.compile.clone().unwrap_or_default(),
            env: env.to_vec(),
            binds: cbinds,
            stdin: Vec::new(),
            limits,
        };
        ns.run(&spec)
    }

    /// Why a compile run failed, or `None` if it produced the program.
    fn compile_failure(out: &RunOutcome, work: &Workdir) -> Option<String> {
        if out.timed_out {
            Some("compile time limit exceeded".into())
        } else if out.oom_killed {
            Some("the compiler ran out of memory".into())
        } else if out.stdout_truncated || out.stderr_truncated {
            Some("the compiler's output went past its cap".into())
        } else if out.exit != crate::sandbox::Exit::Code(0) || !work.out.join("prog").is_file() {
            Some("the compiler failed".into())
        } else {
            None
        }
    }

    /// Compiles (where needed) and runs one program once, SandboxFusion style: no tests, no
    /// comparison. `files` are placed under `/src` next to the program.
    pub fn run_once(&self, req: &RunOnce) -> Result<RunOnceResult, String> {
        let ns = self.ns.as_deref().ok_or_else(|| {
            format!(
                "no sandbox available: {}",
                self.ns_error.as_deref().unwrap_or("unknown")
            )
        })?;
        let recipe = language::recipe(req.language, &self.tools)?;
        let work = self
            .workdir(Some(ns))
            .map_err(|e| format!("preparing the work directory: {e}"))?;
        let write = |rel: &str, bytes: &[u8]| -> Result<(), String> {
            let ok = !rel.is_empty()
                && !rel.starts_with('/')
                && rel
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..");
            if !ok {
                return Err(format!("files: bad relative path {rel:?}"));
            }
            work.write_src(rel, bytes)
                .map_err(|e| format!("files: {e}"))
        };
        for (rel, bytes) in &req.files {
            write(rel, bytes)?;
        }
        write(recipe.source_file, req.code.as_bytes())?;
        let (mut binds, env) = work.box_of(&recipe);
        let mut compile = None;
        if recipe.compile.is_some() {
            let mut limits = RunLimits::for_compile();
            limits.wall = req.compile_timeout;
            limits.cpu = req.compile_timeout;
            let out = Self::compile(ns, &recipe, &work, &binds, &env, limits)
                .map_err(|e| format!("compile step: {e}"))?;
            let failed = Self::compile_failure(&out, &work).is_some();
            compile = Some(out);
            if failed {
                return Ok(RunOnceResult { compile, run: None });
            }
            binds.push(Self::out_bind(&work, false));
        }
        let spec = RunSpec {
            argv: run_argv(&recipe, req.language, recipe.source_file),
            env,
            binds,
            stdin: req.stdin.clone(),
            limits: RunLimits::for_run(req.run_timeout, req.memory_bytes),
        };
        let run = ns.run(&spec).map_err(|e| e.to_string())?;
        Ok(RunOnceResult {
            compile,
            run: Some(run),
        })
    }

    fn check(out: &RunOutcome, check: &Check, opts: &CodeOptions) -> CodeVerdict {
        if let Some(v) = verdict::limits_verdict(out, false) {
            return v;
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        match check {
            Check::Io { expected } => {
                if compare::outputs_match(&stdout, expected, opts.float_rel_tol) {
                    CodeVerdict::Accepted
                } else {
                    CodeVerdict::WrongAnswer
                }
            }
            Check::Assert => verdict::checked(&harness::report(&stdout), None, opts),
            Check::Call { expected } => {
                verdict::checked(&harness::report(&stdout), Some(expected), opts)
            }
        }
    }

    /// A fresh submission directory; `out` belongs to the namespace backend's sandbox user.
    fn workdir(&self, ns: Option<&NsSandbox>) -> std::io::Result<Workdir> {
        let n = SUBMISSIONS.fetch_add(1, Ordering::Relaxed);
        let root = self
            .work_dir
            .join(format!("sub-{}-{n}", std::process::id()));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)?;
        let work = Workdir {
            src: root.join("src"),
            out: root.join("out"),
            judge: None,
            root,
        };
        fs::DirBuilder::new().mode(0o755).create(&work.src)?;
        fs::DirBuilder::new().mode(0o700).create(&work.out)?;
        if let Some(ns) = ns {
            let cfg = ns.config();
            nix::unistd::chown(
                &work.out,
                Some(nix::unistd::Uid::from_raw(cfg.uid)),
                Some(nix::unistd::Gid::from_raw(cfg.gid)),
            )
            .map_err(std::io::Error::from)?;
        }
        Ok(work)
    }

    /// Writes the program file(s) and turns each test into a run and a check.
    fn prepare(
        item: &CodeItem,
        source: &str,
        recipe: &Recipe,
        work: &mut Workdir,
    ) -> std::io::Result<Vec<Prepared>> {
        work.write_src(recipe.source_file, source.as_bytes())?;
        if item.tests.iter().any(|t| !matches!(t, CodeTest::Io(_))) {
            debug_assert_eq!(item.language, Language::Python);
            work.write_judge()?;
        }
        let mut out = Vec::with_capacity(item.tests.len());
        for t in &item.tests {
            out.push(match t {
                CodeTest::Io(io) => Prepared {
                    stdin: io.stdin.as_bytes().to_vec(),
                    check: Check::Io {
                        expected: io.expected_stdout.clone(),
                    },
                },
                CodeTest::Assert(a) => Prepared {
                    stdin: harness::assert_spec(&a.assert_code),
                    check: Check::Assert,
                },
                CodeTest::Call(c) => Prepared {
                    stdin: harness::call_spec(&c.fn_name, &c.args_json),
                    check: Check::Call {
                        expected: serde_json::from_str(&c.expected_json)
                            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
                    },
                },
            });
        }
        Ok(out)
    }
}
