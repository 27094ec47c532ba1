//! The doc-command check: every shell command shown in the repository's Markdown (README.md,
//! docs/, any other `*.md`) is run by something, so the text cannot drift from the programs.
//!
//! How to keep it green (also in docs/README.md):
//!
//! - Show commands in ```` ```sh ```` blocks, one command per line (a line ending in `\`
//!   continues). Output goes in ```` ```text ````; every fenced block names its language.
//! - Each command has an entry in `docs/commands.toml` saying what runs it: `run = true` (this
//!   test runs it: cheap and self-contained), `test = "FILE.rs::FN"` (a test that runs it),
//!   `ci = "TEXT"` (a line of `.ci/run` containing TEXT runs it), `script = "PATH"` (a script
//!   that runs it where CI cannot, e.g. a long study), or `manual = "WHY"` (only by hand, on
//!   hardware CI lacks; every run of the check prints these). The entry's `doc` is the command
//!   as shown, continuation lines joined and a trailing `# comment` dropped.
//! - Every `trainer` command line shown (`cargo run -p trainer -- …`, `trainer …`,
//!   `./trainer-cuda …`) is also parsed by the real binary (`ARGS --help` must succeed), so a
//!   renamed flag or subcommand fails here even where the command itself runs elsewhere.
//!
//! A command without an entry, an entry whose command no longer appears, a test or CI line that
//! does not exist, or a `run` command that fails each fail the test with the fix spelled out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "support/docs.rs"]
mod docs;
use docs::{Shown, commands_in, normalise, words};

/// The manifest, relative to the repository root.
const MANIFEST: &str = "docs/commands.toml";
/// Directories never searched for Markdown.
const SKIP_DIRS: [&str; 5] = ["target", "runs", "dist", "node_modules", "corpus"];
/// How long one `run = true` command may take (generous: the code-conformance run is ~40 s of
/// CPU, and CI may share its cores).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// One entry of `docs/commands.toml`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    /// The command as shown in the docs.
    doc: String,
    /// This test runs it.
    #[serde(default)]
    run: bool,
    /// `FILE.rs::FN`: a test that runs it.
    test: Option<String>,
    /// Text of the `.ci/run` line that runs it.
    ci: Option<String>,
    /// A script that runs it where CI cannot.
    script: Option<String>,
    /// Why only a person can run it (hardware CI lacks); printed on every run of the check.
    manual: Option<String>,
    /// What a `run` command needs: `root`, `shared` (`../shared`); a SKIP line without it.
    #[serde(default)]
    needs: Vec<String>,
    /// Free text for readers of the manifest.
    #[serde(default)]
    #[allow(dead_code, reason = "read by people, not by the check")]
    note: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    command: Vec<Entry>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("trainer/ has a parent")
        .to_path_buf()
}

/// Every `*.md` under `root`, skipping build outputs and hidden directories.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                    stack.push(path);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The arguments of a `trainer` invocation in `cmd`, if it has one: after `cargo run … -p
/// trainer --`, or after a leading `trainer`, `./trainer-cuda` or `dist/trainer-cuda`, up to
/// the first pipe, redirection or command separator.
fn trainer_args(cmd: &str) -> Option<Vec<String>> {
    let w = words(cmd);
    let start = if w.first().is_some_and(|p| p == "cargo") && w.get(1).is_some_and(|s| s == "run") {
        let p = w.iter().position(|x| x == "-p" || x == "--package")?;
        if w.get(p + 1).is_none_or(|x| x != "trainer") {
            return None;
        }
        w.iter().position(|x| x == "--")? + 1
    } else {
        // Leading `VAR=value` assignments do not change the program.
        let first = w.iter().position(|x| !x.contains('='))?;
        let prog = w[first].rsplit('/').next().unwrap_or_default();
        if prog != "trainer" && prog != "trainer-cuda" {
            return None;
        }
        first + 1
    };
    Some(
        w[start..]
            .iter()
            .take_while(|x| !matches!(x.as_str(), "|" | "||" | "&&" | ";" | ">" | ">>" | "<"))
            .cloned()
            .collect(),
    )
}

/// `ARGS --help` must parse: every subcommand, flag and enum value shown exists.
fn trainer_parses(args: &[String]) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .arg("--help")
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// A scratch directory whose entries link to the repository's top level (and `../shared`
/// beside it), so commands see the repository's files but write their outputs elsewhere.
fn scratch_checkout(root: &Path) -> PathBuf {
    let base = std::env::temp_dir().join(format!("doc-commands-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == "target" || n == "runs" || n == ".git" {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), repo.join(&name)).unwrap();
    }
    let shared = root.join("../shared");
    if shared.exists() {
        std::os::unix::fs::symlink(shared, base.join("shared")).unwrap();
    }
    repo
}

/// Runs `run = true` commands: bash in a scratch checkout, the trainer's and the verifier's
/// `cargo run` replaced by the binaries of this test build, port 8470 by a `verifier serve
/// --no-code` started on a free port when a command first needs one.
struct Runner {
    cwd: PathBuf,
    trainer: PathBuf,
    verifier: PathBuf,
    server: Option<(std::process::Child, u16)>,
}

impl Runner {
    fn new(root: &Path) -> Self {
        let trainer = PathBuf::from(env!("CARGO_BIN_EXE_trainer"));
        Runner {
            cwd: scratch_checkout(root),
            verifier: trainer.with_file_name("verifier"),
            trainer,
            server: None,
        }
    }

    /// `None` where every need is met, else the missing one.
    fn unmet(&self, needs: &[String]) -> Option<&'static str> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if needs.iter().any(|n| n == "root") && !root {
            return Some("root");
        }
        if needs.iter().any(|n| n == "shared") && !self.cwd.join("../shared").exists() {
            return Some("../shared");
        }
        None
    }

    fn verifier_bin(&self) -> Result<String, String> {
        if self.verifier.is_file() {
            Ok(self.verifier.display().to_string())
        } else {
            Err(format!(
                "{} is not built: `cargo test --workspace` builds it (or `cargo build --workspace \
                 --bins`)",
                self.verifier.display()
            ))
        }
    }

    /// The port of the check's own verifier, started on first use.
    fn server_port(&mut self) -> Result<u16, String> {
        if let Some((_, port)) = &self.server {
            return Ok(*port);
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(self.verifier_bin()?)
            .args([
                "serve",
                "--no-code",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        self.server = Some((child, port));
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                return Err("the check's verifier did not listen within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(port)
    }

    fn run(&mut self, cmd: &str) -> Result<(), String> {
        let trainer = self.trainer.display().to_string();
        let mut script = cmd
            .replace("cargo run -p trainer --", &trainer)
            .replace("cargo run --release -p trainer --", &trainer);
        if script.contains("cargo run -p verifier --") {
            script = script.replace("cargo run -p verifier --", &self.verifier_bin()?);
        }
        for host in ["localhost:8470", "127.0.0.1:8470"] {
            if script.contains(host) {
                let port = self.server_port()?;
                script = script.replace(host, &format!("127.0.0.1:{port}"));
            }
        }
        let t = Instant::now();
        let out = Command::new("timeout")
            .arg(RUN_LIMIT.as_secs().to_string())
            .args(["bash", "-o", "pipefail", "-c", &script])
            .current_dir(&self.cwd)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            println!("ran in {:.1} s: {cmd}", t.elapsed().as_secs_f64());
            Ok(())
        } else {
            Err(format!(
                "exit {:?} after {:.1} s\nstdout:\n{}\nstderr:\n{}",
                out.status.code(),
                t.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some((child, _)) = &mut self.server {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(base) = self.cwd.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}

/// Checks one entry's `test`, `ci` or `script` reference; `None` when it resolves.
fn dangling_reference(e: &Entry, root: &Path, ci_lines: &[String]) -> Option<String> {
    let kinds = [
        e.run,
        e.test.is_some(),
        e.ci.is_some(),
        e.script.is_some(),
        e.manual.is_some(),
    ];
    if kinds.iter().filter(|&&k| k).count() != 1 {
        return Some("needs exactly one of `run`, `test`, `ci`, `script`, `manual`".into());
    }
    if let Some(n) = e
        .needs
        .iter()
        .find(|n| !["root", "shared"].contains(&n.as_str()))
    {
        return Some(format!(
            "needs {n:?}: only \"root\" and \"shared\" are known"
        ));
    }
    if let Some(t) = &e.test {
        let Some((file, func)) = t.split_once("::") else {
            return Some(format!("test = {t:?} is not FILE.rs::FN"));
        };
        let Ok(src) = std::fs::read_to_string(root.join(file)) else {
            return Some(format!("test = {t:?}: no file {file}"));
        };
        if !src.contains(&format!("fn {func}(")) {
            return Some(format!("test = {t:?}: {file} has no fn {func}"));
        }
    }
    if let Some(c) = &e.ci
        && !ci_lines.iter().any(|l| l.contains(c.as_str()))
    {
        return Some(format!(
            "ci = {c:?}: no command line of .ci/run contains it"
        ));
    }
    if let Some(s) = &e.script
        && !root.join(s).is_file()
    {
        return Some(format!("script = {s:?}: no such file"));
    }
    None
}

#[test]
fn every_command_in_the_docs_is_run_by_a_test_or_ci() {
    let root = repo_root();
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(root.join(MANIFEST)).expect("reading docs/commands.toml"),
    )
    .unwrap_or_else(|e| panic!("{MANIFEST}: {e}"));
    let ci_lines: Vec<String> = std::fs::read_to_string(root.join(".ci/run"))
        .expect("reading .ci/run")
        .lines()
        .map(normalise)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();

    let mut untagged = Vec::new();
    let mut shown: Vec<Shown> = Vec::new();
    for path in markdown_files(&root) {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        shown.extend(commands_in(&rel, &text, &mut untagged));
    }
    let entries: BTreeMap<String, &Entry> = manifest
        .command
        .iter()
        .map(|e| (normalise(&e.doc), e))
        .collect();

    let mut problems = Vec::new();
    for at in &untagged {
        problems.push(format!(
            "{at}: a fenced block without a language: write ```sh for commands (then list them \
             in {MANIFEST}), ```text for output, or the block's language"
        ));
    }
    for s in &shown {
        if !entries.contains_key(&s.text) {
            problems.push(format!(
                "{}: `{}` has no entry in {MANIFEST}. Add one saying what runs it:\n\
                 [[command]]\n\
                 doc = {:?}\n\
                 test = \"FILE.rs::FN\"   # a test that runs it; or instead:\n\
                 # ci = \"TEXT\"          # the line of .ci/run containing TEXT runs it\n\
                 # run = true             # cheap and self-contained: this check runs it\n\
                 # script = \"PATH\"      # a script that runs it where CI cannot (a long study)\n\
                 # manual = \"WHY\"       # only by hand, on hardware CI lacks (a GPU); printed",
                s.at, s.text, s.text
            ));
        }
        if let Some(args) = trainer_args(&s.text)
            && let Err(e) = trainer_parses(&args)
        {
            problems.push(format!(
                "{}: `{}`: the trainer refuses these arguments (fix the doc or the CLI):\n{e}",
                s.at, s.text
            ));
        }
    }
    for (text, e) in &entries {
        if !shown.iter().any(|s| &s.text == text) {
            problems.push(format!(
                "{MANIFEST}: `{text}` is shown in no Markdown file any more: remove its entry"
            ));
        }
        if let Some(why) = dangling_reference(e, &root, &ci_lines) {
            problems.push(format!("{MANIFEST}: `{text}`: {why}"));
        }
    }
    let mut runner = None;
    let mut done: Vec<&str> = Vec::new();
    for s in &shown {
        let Some(e) = entries.get(&s.text) else {
            continue;
        };
        if let Some(why) = &e.manual {
            println!("NOT RUN by tests or CI ({why}): {}", s.text);
        }
        if !e.run || done.contains(&s.text.as_str()) {
            continue;
        }
        done.push(&s.text);
        let runner = runner.get_or_insert_with(|| Runner::new(&root));
        if let Some(missing) = runner.unmet(&e.needs) {
            println!("SKIP: needs {missing}: {}", s.text);
            continue;
        }
        if let Err(err) = runner.run(&s.text) {
            problems.push(format!("{}: `{}` failed: {err}", s.at, s.text));
        }
    }
    drop(runner);
    println!(
        "{} commands shown in the docs, {} manifest entries",
        shown.len(),
        entries.len()
    );
    assert!(
        problems.is_empty(),
        "doc-command check ({} problems; the convention is at the top of \
         trainer/tests/doc_commands.rs and in docs/README.md):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn commands_are_read_as_shown() {
    let md = "x\n```sh\ncargo run -p trainer -- audit runs   # list\ncurl -s a \\\n  -d '{\"k\": \"# not a comment\"}'\n\n# only a comment\n```\n```\nuntagged\n```\n```text\nstep 1\n```\n";
    let mut untagged = Vec::new();
    let got: Vec<(String, String)> = commands_in("f.md", md, &mut untagged)
        .into_iter()
        .map(|s| (s.at, s.text))
        .collect();
    assert_eq!(
        got,
        [
            ("f.md:3".into(), "cargo run -p trainer -- audit runs".into()),
            (
                "f.md:4".into(),
                "curl -s a -d '{\"k\": \"# not a comment\"}'".into()
            ),
        ]
    );
    assert_eq!(untagged, ["f.md:9"]);
    assert_eq!(
        trainer_args("cargo run --release -p trainer -- demo --seed 2 | tail -3"),
        Some(vec!["demo".into(), "--seed".into(), "2".into()])
    );
    assert_eq!(
        trainer_args("RUST_LOG=info ./trainer-cuda train --config 'a b.toml'"),
        Some(vec!["train".into(), "--config".into(), "a b.toml".into()])
    );
    assert_eq!(trainer_args("cargo run -p verifier -- serve"), None);
    assert_eq!(trainer_args("bash scripts/x.sh"), None);
    // The parse check catches a flag the CLI does not have.
    assert!(trainer_parses(&["demo".into(), "--steps".into(), "2".into()]).is_ok());
    assert!(trainer_parses(&["demo".into(), "--no-such-flag".into()]).is_err());
}
