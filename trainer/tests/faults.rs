//! Faults end to end, through real processes: a `trainer demo` process grades against a real
//! `verifier serve` process and stores into a private PostgreSQL cluster started for the test.
//! Mid-run the verifier is SIGKILLed and started again on the same port after a pause, then
//! PostgreSQL is stopped in immediate mode (a crash: no checkpoint, connections cut) and
//! started again after a pause. The run must finish by itself, the store must hold exactly one
//! row per rollout and one per step, the restarted verifier must have served grading, and every
//! step's metrics must equal those of an uninterrupted run with the same seed.
//!
//! Needs root (the cluster runs as the `postgres` user via `runuser`) and PostgreSQL's server
//! binaries under `/usr/lib/postgresql/*/bin`; without them the test prints a skip line.
//! Everything listens on 127.0.0.1 only. Set `FAULTS_STEPS` for a longer run (default 8).

mod support;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::comparable_metrics;

use sqlx::Connection;

const ROLLOUTS_PER_STEP: usize = 8 * 8;
/// How long each dependency stays down: longer than a demo step, so steps run into it.
const OUTAGE: Duration = Duration::from_secs(4);

fn steps() -> usize {
    std::env::var("FAULTS_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `cond` every 100 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A throwaway PostgreSQL cluster on a free loopback port, owned by the `postgres` user.
struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivatePostgres {
    /// `None` (after a skip line) where this machine cannot run one.
    fn create() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .find(|b| b.join("initdb").is_file() && b.join("pg_ctl").is_file());
        let root = is_root();
        let has_user = Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success());
        let (Some(bin), true, true) = (bin, root, has_user) else {
            eprintln!(
                "SKIP faults: needs root, a `postgres` user and /usr/lib/postgresql/*/bin/initdb"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("rlvr-faults-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert!(
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success()
        );
        let pg = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
        };
        let out = pg
            .as_postgres("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(pg.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        pg.start();
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
        cmd
    }

    fn pg_ctl(&self, args: &[&str]) {
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl {args:?}: {out:?}");
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        self.pg_ctl(&[
            "-w",
            "-t",
            "60",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &opts,
            "start",
        ]);
    }

    /// A crash as clients see it: every connection is cut and nothing is shut down cleanly.
    fn stop_immediate(&self) {
        self.pg_ctl(&["-w", "-m", "immediate", "stop"]);
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The `verifier` binary beside `trainer` in the same target directory, built if missing
/// (`cargo test --workspace` has already built it).
fn verifier_bin() -> PathBuf {
    let trainer = Path::new(env!("CARGO_BIN_EXE_trainer"));
    let bin = trainer.with_file_name("verifier");
    if !bin.is_file() {
        let target_dir = trainer.parent().unwrap().parent().unwrap();
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "-p",
                "verifier",
                "--bin",
                "verifier",
                "--target-dir",
            ])
            .arg(target_dir)
            .status()
            .unwrap();
        assert!(status.success(), "building the verifier");
    }
    bin
}

/// A `verifier serve --no-code` process on a fixed loopback port.
struct VerifierProcess {
    child: Child,
    addr: SocketAddr,
}

impl VerifierProcess {
    fn start(addr: SocketAddr) -> Self {
        let child = Command::new(verifier_bin())
            .args(["serve", "--no-code", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_until(Duration::from_secs(30), "the verifier to listen", || {
            get(addr, "/healthz").is_some()
        });
        VerifierProcess { child, addr }
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Math grading requests this process answered with 200, from its `/metrics`.
    fn grade_requests_served(&self) -> u64 {
        let text = get(self.addr, "/metrics").unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("verifier_requests_total{")
                    && l.contains("route=\"/v1/math/grade\"")
                    && l.contains("status=\"200\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare HTTP/1.0 GET on loopback; the body where the status is 200.
fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_string())
}

fn demo(steps: usize, run_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args(["demo", "--steps", &steps.to_string(), "--run-dir"])
        .arg(run_dir)
        .env("RUST_LOG", "warn");
    cmd
}

#[test]
fn verifier_killed_and_postgres_crashed_mid_run_lose_and_duplicate_nothing() {
    let Some(pg) = PrivatePostgres::create() else {
        return;
    };
    let steps = steps();
    assert!(
        steps >= 6,
        "FAULTS_STEPS must leave steps after both faults"
    );
    let base = std::env::temp_dir().join(format!("rlvr-faults-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);

    // The uninterrupted reference: embedded verifier, SQLite in its run directory.
    let reference = demo(steps, &base.join("reference")).output().unwrap();
    assert!(reference.status.success(), "reference run: {reference:?}");

    // The faulted run.
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut verifier = VerifierProcess::start(addr);
    let run_dir = base.join("faulted");
    let mut child = demo(steps, &run_dir)
        .args(["--verifier-url", &format!("http://{addr}")])
        .args(["--database-url", &pg.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        BufReader::new(stderr).read_to_string(&mut s).unwrap();
        s
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let run_id = first
        .strip_prefix("run ")
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_string();
    let step_done = |line: &str, k: usize| line.starts_with(&format!("step {k:>3}/{steps}"));
    let mut stdout = vec![first];
    let mut read_until = |k: usize, stdout: &mut Vec<String>| {
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = step_done(&line, k);
            stdout.push(line);
            if done {
                return;
            }
        }
        panic!("the run ended before step {k}: {stdout:#?}");
    };

    // Fault 1: the verifier dies after step 2 and is back after OUTAGE.
    read_until(2, &mut stdout);
    verifier.kill();
    std::thread::sleep(OUTAGE);
    let verifier = VerifierProcess::start(addr);

    // Fault 2: PostgreSQL crashes after step 4 and is back after OUTAGE.
    read_until(4, &mut stdout);
    pg.stop_immediate();
    std::thread::sleep(OUTAGE);
    pg.start();

    for line in lines {
        stdout.push(line.unwrap());
    }
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert!(status.success(), "faulted run: {stdout:#?}\n{stderr}");
    assert!(
        stdout.iter().any(|l| step_done(l, steps)),
        "{stdout:#?}\n{stderr}"
    );
    let retries = stderr.matches("verifier unavailable; retrying").count();
    assert!(retries > 0, "the verifier outage was never seen: {stderr}");
    let store_retries = stderr.matches("store write failed; will retry").count();
    assert!(
        store_retries > 0,
        "the database outage was never seen: {stderr}"
    );
    // Steps 3.. were graded by the restarted process (one request per step; the evaluations
    // add more).
    let served_after_restart = verifier.grade_requests_served();
    assert!(
        served_after_restart >= (steps - 3) as u64,
        "the restarted verifier served only {served_after_restart} grading requests"
    );

    // Exactly one row per (step, prompt, sample) and per step, and the run marked finished.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rows, keys, step_rows, finished): (i64, i64, i64, bool) = rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
        sqlx::query_as(
            "SELECT COUNT(*), \
                    COUNT(DISTINCT (step, prompt_id, sample_idx)), \
                    (SELECT COUNT(*) FROM steps WHERE run_id = $1), \
                    (SELECT finished_at IS NOT NULL FROM runs WHERE run_id = $1) \
             FROM rollouts WHERE run_id = $1",
        )
        .bind(&run_id)
        .fetch_one(&mut conn)
        .await
        .unwrap()
    });
    let expected = (steps * ROLLOUTS_PER_STEP) as i64;
    assert_eq!((rows, keys), (expected, expected), "rollout rows");
    assert_eq!((step_rows, finished), (steps as i64, true), "step rows");

    // The faults changed nothing the run computed.
    let (faulted, uninterrupted) = (
        comparable_metrics(&run_dir),
        comparable_metrics(&base.join("reference")),
    );
    assert_eq!(faulted.len(), steps);
    assert_eq!(faulted, uninterrupted);
    eprintln!(
        "faults: {steps} steps, verifier down {OUTAGE:?} ({retries} retries logged; \
         {served_after_restart} grading requests served after its restart), PostgreSQL down {OUTAGE:?} \
         ({store_retries} store retries logged); \
         {rows} rollout rows for {expected} rollouts, {keys} distinct; metrics equal to the \
         uninterrupted run's"
    );
    std::fs::remove_dir_all(&base).ok();
}
