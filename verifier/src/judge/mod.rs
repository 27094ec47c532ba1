//! Code judging: a submission and its tests → runs in a sandbox → per-test verdicts → the
//! submission's verdict and reward.
//!
//! * [`backend`]: which backend judges a Python item under `backend: auto`.
//! * [`language`]: the language table (compile and run commands, binds, resource profiles).
//! * [`harness`]: the trusted checker of Python assert and function-call tests, code
//!   extraction.
//! * [`compare`]: output comparison outside the box.
//! * [`verdict`]: a run's outcome → a verdict.
//!
//! Compiled languages compile once per submission (per assert test when the test code is
//! part of the program), in the same sandbox kind with their own limits
//! ([`RunLimits::for_compile`]); the output is bound read-only at `/out` into each test run.
//! Every `ns` run starts in `/box`, a private writable copy of the program and its files.

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

use crate::sandbox::{Bind, Fetched, NsSandbox, RunLimits, RunOutcome, RunSpec, Sandbox};
use language::{LanguageSpec, Languages, Profile, Program};

/// One program to run once (SandboxFusion's `/run_code`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOnce {
    /// Language.
    pub language: Language,
    /// The program.
    pub code: String,
    /// Standard input.
    pub stdin: Vec<u8>,
    /// Extra files: path relative to the working directory `/box` → content.
    pub files: Vec<(String, Vec<u8>)>,
    /// Files to return after the run (relative to `/box`, or absolute inside the box).
    pub fetch_files: Vec<String>,
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
    /// `run` is a failed compile: the language has no separate compile step in
    /// SandboxFusion (`compile_in_run`), which reports it as the run.
    pub run_is_failed_compile: bool,
    /// The files `fetch_files` named.
    pub fetched: Fetched,
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
    langs: Arc<Languages>,
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

    /// Fresh sibling source and output directories (`src-N`, `out-N`) for a program of its
    /// own (an assert test whose code joins the program); `out-N` belongs to `owner`.
    fn sub(&self, n: usize, owner: Option<(u32, u32)>) -> std::io::Result<(PathBuf, PathBuf)> {
        let (src, out) = (
            self.root.join(format!("src-{n}")),
            self.root.join(format!("out-{n}")),
        );
        fs::DirBuilder::new().mode(0o755).create(&src)?;
        fs::DirBuilder::new().mode(0o700).create(&out)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&out, Some(uid), Some(gid))?;
        }
        Ok((src, out))
    }
}

/// The environment of a language's runs.
fn env_of(spec: &LanguageSpec) -> Vec<(String, String)> {
    let mut env = language::base_env();
    env.extend(spec.env().iter().cloned());
    env
}

/// Limits of a test run under a language's profile.
fn run_limits(profile: &Profile, wall: Duration, memory_bytes: u64) -> RunLimits {
    let mut l = RunLimits::for_run(wall, memory_bytes);
    l.pids = profile.pids;
    l.scratch_bytes = profile.scratch_mb << 20;
    l.open_files = profile.open_files;
    l
}

/// Limits of a compile step under a language's profile (`wall`: the request's, else the
/// profile's `compile_seconds`).
fn compile_limits(profile: &Profile, wall: Option<Duration>) -> RunLimits {
    let mut l = RunLimits::for_compile();
    let w = wall.unwrap_or(Duration::from_secs(profile.compile_seconds));
    l.wall = w;
    l.cpu = w;
    l.pids = profile.compile_pids;
    l.scratch_bytes = l.scratch_bytes.max(profile.scratch_mb << 20);
    l.open_files = l.open_files.max(profile.open_files);
    l
}

/// `/out` bound from `host`.
fn out_bind(host: &std::path::Path, writable: bool) -> Bind {
    Bind {
        host: host.to_path_buf(),
        inside: "/out".into(),
        writable,
    }
}

/// Whether a relative path (of `files`) stays inside the working directory.
fn relative_path_ok(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
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
    /// A program of its own (non-Python assert test): its source and output directories
    /// and commands.
    own: Option<(PathBuf, PathBuf, Program)>,
}

/// How a test is run and judged.
enum Check {
    /// The program on the test's stdin; its stdout compared with `expected`.
    Io { expected: String },
    /// The checker runs the asserts (its stdin carries them); Python.
    Assert,
    /// The checker calls the function; its JSON result compared with `expected`; Python.
    Call { expected: serde_json::Value },
    /// Test code appended to the program (any language but Python): passes on exit 0; a
    /// test framework's exit code means what the language table says.
    Suite { framework: bool },
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
            langs: Arc::new(Languages::builtin()),
            work_dir,
        }
    }

    /// The same judge with another language table (toolchains checked on this host).
    #[must_use]
    pub fn with_languages(mut self, langs: Languages) -> Judge {
        self.langs = Arc::new(langs.detect());
        self
    }

    /// The language table in use.
    pub fn languages(&self) -> &Languages {
        &self.langs
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
            && item.language.is_python()
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
        let (spec, lang_binds) = match self.langs.ready(item.language.as_str()) {
            Ok(r) => r,
            Err(msg) => return sandbox_error(msg),
        };
        let python = spec.name == Language::Python.as_str();
        let use_wasm = match choice {
            BackendChoice::Wasm => true,
            BackendChoice::Ns => false,
            BackendChoice::Auto => python && self.wasm.is_some(),
        };
        let backend = if use_wasm { Backend::Wasm } else { Backend::Ns };
        let sandbox_error =
            |msg: String| Self::failed(total, backend, CodeVerdict::SandboxError, msg);
        if use_wasm && !python {
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
        let program = match spec.program(&source, &[]) {
            Ok(p) => p,
            Err(msg) => return Self::failed(total, backend, CodeVerdict::CompileError, msg),
        };
        let work = match self.workdir(self.ns.as_deref()) {
            Ok(w) => w,
            Err(e) => return sandbox_error(format!("preparing the work directory: {e}")),
        };
        let opts = item.options.clone().unwrap_or_default();
        let owner = self.ns.as_deref().map(|n| (n.config().uid, n.config().gid));
        let mut work = work;
        let prepared = match Self::prepare(item, spec, &source, &program, &mut work, owner) {
            Ok(p) => p,
            Err(e) => return sandbox_error(format!("writing the sources: {e}")),
        };
        let env = env_of(spec);
        let mut binds = lang_binds.to_vec();
        let checker = work.judge.clone();
        let needs_main_build = prepared.iter().any(|p| p.own.is_none());
        let mut compile_report = None;
        if let (Some(ns), Some(cmd), true) =
            (self.ns.as_deref(), &program.compile, needs_main_build)
        {
            let limits = compile_limits(&spec.profile, None);
            match Self::compile(ns, cmd, &work.src, &work.out, &binds, &env, limits) {
                Err(e) => return sandbox_error(format!("compile step: {e}")),
                Ok(out) => {
                    let report = verdict::report(&out);
                    if let Some(why) = Self::compile_failure(&out) {
                        let mut r =
                            Self::failed(total, Backend::Ns, CodeVerdict::CompileError, why);
                        r.compile = Some(report);
                        return r;
                    }
                    compile_report = Some(report);
                }
            }
        }
        if program.compile.is_some() {
            binds.push(out_bind(&work.out, false));
        }
        let limits = run_limits(
            &spec.profile,
            Duration::from_secs_f64(item.time_limit_s),
            item.memory_limit_mb << 20,
        );
        let mut tests = Vec::with_capacity(total);
        for p in &prepared {
            let t = match self.run_prepared(
                sandbox,
                use_wasm,
                spec,
                &program,
                p,
                &work,
                checker.as_deref(),
                &binds,
                &env,
                limits,
            ) {
                Ok((out, None)) => TestResult {
                    verdict: Self::check(&out, &p.check, &opts, spec),
                    run: verdict::report(&out),
                },
                Ok((out, Some(why))) => {
                    // A per-test program that did not compile.
                    let mut run = verdict::report(&out);
                    run.stderr_head = format!("{why}\n{}", run.stderr_head);
                    TestResult {
                        verdict: CodeVerdict::CompileError,
                        run,
                    }
                }
                Err(e) => TestResult {
                    verdict: CodeVerdict::SandboxError,
                    run: RunReport {
                        stderr_head: e,
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

    /// Runs one prepared test: Python's checked tests through the trusted checker (`/src`
    /// holds the program, `/judge` the checker); on wasm the Python program from `/src`; on
    /// `ns` in a fresh `/box` (a program of its own is compiled first; a failed compile comes
    /// back with its reason).
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the pieces of one run"
    )]
    fn run_prepared(
        &self,
        sandbox: &dyn Sandbox,
        use_wasm: bool,
        spec: &LanguageSpec,
        program: &Program,
        p: &Prepared,
        work: &Workdir,
        checker: Option<&std::path::Path>,
        binds: &[Bind],
        env: &[(String, String)],
        limits: RunLimits,
    ) -> Result<(RunOutcome, Option<String>), String> {
        let src_bind = Bind {
            host: work.src.clone(),
            inside: "/src".into(),
            writable: false,
        };
        if matches!(p.check, Check::Assert | Check::Call { .. }) {
            let mut b = binds.to_vec();
            b.push(src_bind);
            if let Some(dir) = checker {
                b.push(Bind {
                    host: dir.to_path_buf(),
                    inside: harness::JUDGE_DIR_INSIDE.into(),
                    writable: false,
                });
            }
            let run = RunSpec {
                argv: harness::check_argv(&program.run[0]),
                env: env.to_vec(),
                binds: b,
                stdin: p.stdin.clone(),
                limits,
                workdir: (!use_wasm).then(|| work.src.clone()),
                fetch: vec![],
            };
            return sandbox
                .run_checked(&run)
                .map(|o| (o, None))
                .map_err(|e| e.to_string());
        }
        if use_wasm {
            let run = RunSpec {
                argv: vec![
                    program.run[0].clone(),
                    "-B".into(),
                    format!("/src/{}", program.source_name),
                ],
                env: env.to_vec(),
                binds: vec![src_bind],
                stdin: p.stdin.clone(),
                limits,
                workdir: None,
                fetch: vec![],
            };
            return sandbox
                .run(&run)
                .map(|o| (o, None))
                .map_err(|e| e.to_string());
        }
        let (dir, argv, run_binds) = match &p.own {
            None => (work.src.clone(), program.run.clone(), binds.to_vec()),
            Some((dir, out_dir, program)) => {
                if let (Some(ns), Some(cmd)) = (self.ns.as_deref(), &program.compile) {
                    // The submission's own /out is replaced by this program's.
                    let base: Vec<Bind> = binds
                        .iter()
                        .filter(|b| b.inside != "/out")
                        .cloned()
                        .collect();
                    let limits = compile_limits(&spec.profile, None);
                    let out = Self::compile(ns, cmd, dir, out_dir, &base, env, limits)
                        .map_err(|e| format!("compile step: {e}"))?;
                    if let Some(why) = Self::compile_failure(&out) {
                        return Ok((out, Some(why)));
                    }
                    let mut b = base;
                    b.push(out_bind(out_dir, false));
                    (dir.clone(), program.run.clone(), b)
                } else {
                    (dir.clone(), program.run.clone(), binds.to_vec())
                }
            }
        };
        let run = RunSpec {
            argv,
            env: env.to_vec(),
            binds: run_binds,
            stdin: p.stdin.clone(),
            limits,
            workdir: Some(dir),
            fetch: vec![],
        };
        sandbox
            .run(&run)
            .map(|o| (o, None))
            .map_err(|e| e.to_string())
    }

    /// Runs a compile command in `/box` (a copy of `src`) with `out` writable at `/out`.
    fn compile(
        ns: &NsSandbox,
        cmd: &[String],
        src: &std::path::Path,
        out: &std::path::Path,
        binds: &[Bind],
        env: &[(String, String)],
        limits: RunLimits,
    ) -> Result<RunOutcome, crate::sandbox::SandboxError> {
        let mut cbinds = binds.to_vec();
        cbinds.push(out_bind(out, true));
        let spec = RunSpec {
            argv: cmd.to_vec(),
            env: env.to_vec(),
            binds: cbinds,
            stdin: Vec::new(),
            limits,
            workdir: Some(src.to_path_buf()),
            fetch: vec![],
        };
        ns.run(&spec)
    }

    /// Why a compile run failed, or `None` if it succeeded (exit 0 within its limits).
    fn compile_failure(out: &RunOutcome) -> Option<String> {
        if out.timed_out {
            Some("compile time limit exceeded".into())
        } else if out.oom_killed {
            Some("the compiler ran out of memory".into())
        } else if out.stdout_truncated || out.stderr_truncated {
            Some("the compiler's output went past its cap".into())
        } else if out.exit != crate::sandbox::Exit::Code(0) {
            Some("the compiler failed".into())
        } else {
            None
        }
    }

    /// Compiles (where needed) and runs one program once, SandboxFusion style: no tests, no
    /// comparison. The program and `files` are copied into the working directory `/box`;
    /// `fetch_files` are read back after the run.
    pub fn run_once(&self, req: &RunOnce) -> Result<RunOnceResult, String> {
        let ns = self.ns.as_deref().ok_or_else(|| {
            format!(
                "no sandbox available: {}",
                self.ns_error.as_deref().unwrap_or("unknown")
            )
        })?;
        let (spec, lang_binds) = self.langs.ready(req.language.as_str())?;
        let names: Vec<&str> = req.files.iter().map(|(n, _)| n.as_str()).collect();
        let program = spec.program(&req.code, &names)?;
        let work = self
            .workdir(Some(ns))
            .map_err(|e| format!("preparing the work directory: {e}"))?;
        for (rel, bytes) in &req.files {
            if !relative_path_ok(rel) {
                return Err(format!(
                    "files: {rel:?} is not a path relative to the working directory"
                ));
            }
            work.write_src(rel, bytes)
                .map_err(|e| format!("files: {rel}: {e}"))?;
        }
        work.write_src(&program.source_name, program.source_text.as_bytes())
            .map_err(|e| format!("writing the program: {e}"))?;
        let env = env_of(spec);
        let mut binds = lang_binds.to_vec();
        let mut compile = None;
        if let Some(cmd) = &program.compile {
            let limits = compile_limits(&spec.profile, Some(req.compile_timeout));
            let out = Self::compile(ns, cmd, &work.src, &work.out, &binds, &env, limits)
                .map_err(|e| format!("compile step: {e}"))?;
            let failed = Self::compile_failure(&out).is_some();
            if failed {
                let (compile, run) = if spec.compile_in_run {
                    (None, Some(out))
                } else {
                    (Some(out), None)
                };
                return Ok(RunOnceResult {
                    compile,
                    run,
                    run_is_failed_compile: spec.compile_in_run,
                    fetched: Fetched::default(),
                });
            }
            if !spec.compile_in_run {
                compile = Some(out);
            }
            binds.push(out_bind(&work.out, false));
        }
        let run = RunSpec {
            argv: program.run.clone(),
            env,
            binds,
            stdin: req.stdin.clone(),
            limits: run_limits(&spec.profile, req.run_timeout, req.memory_bytes),
            workdir: Some(work.src.clone()),
            fetch: req.fetch_files.clone(),
        };
        let (run, fetched) = ns.run_fetching(&run).map_err(|e| e.to_string())?;
        Ok(RunOnceResult {
            compile,
            run: Some(run),
            run_is_failed_compile: false,
            fetched,
        })
    }

    fn check(
        out: &RunOutcome,
        check: &Check,
        opts: &CodeOptions,
        spec: &LanguageSpec,
    ) -> CodeVerdict {
        if let Check::Suite { framework } = check {
            return Self::check_suite(out, *framework, spec);
        }
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
            Check::Suite { .. } => CodeVerdict::WrongAnswer,
        }
    }

    /// The verdict of a test suite run (program + test code, any language but Python):
    /// limits first; then a framework's exit code means what the language table says
    /// (`framework_exit`), a failed assertion (its error on stderr, or the language's failure
    /// banner even on exit 0) is a wrong answer, any other non-zero exit a runtime error.
    /// Caveat: the program runs in the same process as its tests, so a program that exits 0
    /// before them passes; prefer I/O tests for untrusted programs.
    fn check_suite(out: &RunOutcome, framework: bool, spec: &LanguageSpec) -> CodeVerdict {
        if let Some(v) = verdict::limits_verdict(out, false)
            && v != CodeVerdict::RuntimeError
        {
            return v;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let failed_banner = spec
            .assert_failure_stderr()
            .is_some_and(|m| stderr.contains(m));
        match out.exit {
            crate::sandbox::Exit::Code(0) if failed_banner => CodeVerdict::WrongAnswer,
            crate::sandbox::Exit::Code(0) => CodeVerdict::Accepted,
            crate::sandbox::Exit::Code(c) if framework => spec
                .framework_verdict(c)
                .unwrap_or(CodeVerdict::RuntimeError),
            _ if ["AssertionError", "Assertion failed", "assertion failed"]
                .iter()
                .any(|m| stderr.contains(m)) =>
            {
                CodeVerdict::WrongAnswer
            }
            _ => CodeVerdict::RuntimeError,
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

    /// Writes the program file(s) (and the checker, for Python's assert and call tests) and
    /// turns each test into a run and a check.
    fn prepare(
        item: &CodeItem,
        spec: &LanguageSpec,
        source: &str,
        program: &Program,
        work: &mut Workdir,
        owner: Option<(u32, u32)>,
    ) -> std::io::Result<Vec<Prepared>> {
        work.write_src(&program.source_name, program.source_text.as_bytes())?;
        let python = spec.name == Language::Python.as_str();
        if python && item.tests.iter().any(|t| !matches!(t, CodeTest::Io(_))) {
            work.write_judge()?;
        }
        let mut out = Vec::with_capacity(item.tests.len());
        for (i, t) in item.tests.iter().enumerate() {
            out.push(match t {
                CodeTest::Io(io) => Prepared {
                    stdin: io.stdin.as_bytes().to_vec(),
                    check: Check::Io {
                        expected: io.expected_stdout.clone(),
                    },
                    own: None,
                },
                CodeTest::Assert(a) if !python => {
                    // The test code joins the program: a program (and compile) of its own.
                    let joined = format!("{source}\n{}\n", a.assert_code);
                    let own = spec.program(&joined, &[]).map_err(std::io::Error::other)?;
                    let (dir, out_dir) = work.sub(i, owner)?;
                    let p = dir.join(&own.source_name);
                    fs::write(&p, own.source_text.as_bytes())?;
                    fs::set_permissions(&p, fs::Permissions::from_mode(0o644))?;
                    Prepared {
                        stdin: Vec::new(),
                        check: Check::Suite {
                            framework: spec.framework,
                        },
                        own: Some((dir, out_dir, own)),
                    }
                }
                CodeTest::Assert(a) => Prepared {
                    stdin: harness::assert_spec(&a.assert_code),
                    check: Check::Assert,
                    own: None,
                },
                CodeTest::Call(c) => Prepared {
                    stdin: harness::call_spec(&c.fn_name, &c.args_json),
                    check: Check::Call {
                        expected: serde_json::from_str(&c.expected_json)
                            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?,
                    },
                    own: None,
                },
            });
        }
        Ok(out)
    }
}
