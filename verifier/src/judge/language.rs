//! The language table: how each language is compiled and run, as data
//! (`sandbox-images/languages.toml`, compiled in as the default; see that file for the keys).
//!
//! [`Languages::parse`] validates a table (unknown keys, unknown profiles, bad commands,
//! placeholders and patterns are refused); [`Languages::detect`] then checks each language's
//! toolchain on this host once, so a missing one becomes a clear message naming its packages
//! instead of a failed run. [`LanguageSpec::program`] turns a submission into the file to
//! write and the commands to run, all as paths inside the box (`/box` the working directory,
//! `/out` the compile output).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::sandbox::Bind;

/// The table shipped with the verifier.
pub const DEFAULT_TABLE: &str = include_str!("../../../sandbox-images/languages.toml");

/// Why a table was refused.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// Not TOML, or a key the schema does not know.
    #[error("language table: {0}")]
    Parse(#[from] toml::de::Error),
    /// A row that cannot work.
    #[error("language table: languages.{language}: {message}")]
    Invalid {
        /// The row.
        language: String,
        /// What is wrong with it.
        message: String,
    },
    /// The file could not be read.
    #[error("language table {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A per-language resource profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Processes and threads of a run.
    pub pids: u32,
    /// Processes and threads of a compile step.
    pub compile_pids: u32,
    /// Size of the private `/tmp` and of `/box` (each), MiB.
    pub scratch_mb: u64,
    /// Open files per process.
    pub open_files: u64,
    /// Wall-clock limit of a compile step in `/v1/code/judge`, seconds (`/run_code` takes
    /// the request's `compile_timeout`).
    pub compile_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    profiles: BTreeMap<String, Profile>,
    languages: BTreeMap<String, Row>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    packages: Vec<String>,
    #[serde(default)]
    requires: Vec<PathBuf>,
    source: Option<String>,
    source_prefix: Option<String>,
    ensure_prefix: Option<String>,
    #[serde(default)]
    ensure_prefix_unless: Vec<String>,
    name_pattern: Option<String>,
    name_default: Option<String>,
    compile: Option<Vec<String>>,
    #[serde(default)]
    compile_in_run: bool,
    run: Option<Vec<String>>,
    #[serde(default)]
    framework: bool,
    #[serde(default)]
    framework_exit: BTreeMap<String, protocol::CodeVerdict>,
    assert_failure_stderr: Option<String>,
    #[serde(default)]
    binds: Vec<PathBuf>,
    discover: Option<Vec<String>>,
    discover_at: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    profile: Option<String>,
    unavailable: Option<String>,
}

/// Whether a language can run on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Not checked yet ([`Languages::detect`] not called).
    Unchecked,
    /// Ready; these binds are added to every box of the language.
    Ready(Vec<Bind>),
    /// Its toolchain is missing here: the message names the packages.
    Missing(String),
    /// The table says it is not offered (no Debian package).
    Unavailable(String),
}

/// One language, validated.
#[derive(Debug, Clone)]
pub struct LanguageSpec {
    /// Canonical name (the table's key).
    pub name: String,
    /// Other accepted names.
    pub aliases: Vec<String>,
    /// Packages that provide it.
    pub packages: Vec<String>,
    requires: Vec<PathBuf>,
    source: String,
    source_prefix: Option<String>,
    ensure_prefix: Option<String>,
    ensure_prefix_unless: Vec<String>,
    name_pattern: Option<regex::Regex>,
    name_default: Option<String>,
    compile: Option<Vec<String>>,
    /// SandboxFusion reports this language's compile step inside `run_result`.
    pub compile_in_run: bool,
    run: Vec<String>,
    /// The program is a test suite: exit 0 means its tests passed.
    pub framework: bool,
    framework_exit: Vec<(i32, protocol::CodeVerdict)>,
    assert_failure_stderr: Option<String>,
    binds: Vec<PathBuf>,
    discover: Option<(Vec<String>, String)>,
    env: Vec<(String, String)>,
    /// Resource profile.
    pub profile: Profile,
    /// Whether it can run here.
    pub availability: Availability,
}

/// A submission made ready for a language: the file to write into `/box` and the commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// File name of the program in `/box`.
    pub source_name: String,
    /// Its text (with the language's prefix, if any).
    pub source_text: String,
    /// Compile command, for compiled languages.
    pub compile: Option<Vec<String>>,
    /// Run command.
    pub run: Vec<String>,
}

/// The validated table.
#[derive(Debug, Clone)]
pub struct Languages {
    specs: Vec<LanguageSpec>,
}

fn invalid(language: &str, message: impl Into<String>) -> TableError {
    TableError::Invalid {
        language: language.to_owned(),
        message: message.into(),
    }
}

/// The placeholders of one command argument, checked: `{src}`, `{name}`, `{cp:EXT}`, or a
/// whole-argument `{files:EXT}`.
fn check_arg(lang: &str, arg: &str, has_name: bool) -> Result<(), TableError> {
    let mut rest = arg;
    while let Some(open) = rest.find('{') {
        let Some(len) = rest[open..].find('}') else {
            return Err(invalid(lang, format!("unclosed placeholder in {arg:?}")));
        };
        let ph = &rest[open + 1..open + len];
        match ph {
            "src" => {}
            "name" if has_name => {}
            "name" => return Err(invalid(lang, "{name} needs name_pattern")),
            _ if ph.starts_with("cp:") && ph.len() > 3 => {}
            _ if ph.starts_with("files:") && ph.len() > 6 && arg == format!("{{{ph}}}") => {}
            _ => {
                return Err(invalid(
                    lang,
                    format!("unknown placeholder {{{ph}}} in {arg:?}"),
                ));
            }
        }
        rest = &rest[open + len + 1..];
    }
    Ok(())
}

fn check_command(lang: &str, key: &str, cmd: &[String], has_name: bool) -> Result<(), TableError> {
    let Some(first) = cmd.first() else {
        return Err(invalid(lang, format!("{key}: empty command")));
    };
    if !first.starts_with('/') {
        return Err(invalid(
            lang,
            format!("{key}: the program {first:?} must be an absolute path"),
        ));
    }
    cmd.iter().try_for_each(|a| check_arg(lang, a, has_name))
}

impl LanguageSpec {
    fn from_row(
        name: &str,
        row: Row,
        profiles: &BTreeMap<String, Profile>,
    ) -> Result<Self, TableError> {
        let plain = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
        if let Some(why) = row.unavailable {
            let extra = row.source.is_some() || row.run.is_some() || row.compile.is_some();
            if extra {
                return Err(invalid(name, "an unavailable language has no commands"));
            }
            return Ok(LanguageSpec {
                name: name.to_owned(),
                aliases: row.aliases,
                packages: row.packages,
                requires: vec![],
                source: String::new(),
                source_prefix: None,
                ensure_prefix: None,
                ensure_prefix_unless: vec![],
                name_pattern: None,
                name_default: None,
                compile: None,
                compile_in_run: false,
                run: vec![],
                framework: false,
                framework_exit: vec![],
                assert_failure_stderr: None,
                binds: vec![],
                discover: None,
                env: vec![],
                profile: Profile {
                    pids: 1,
                    compile_pids: 1,
                    scratch_mb: 1,
                    open_files: 1,
                    compile_seconds: 1,
                },
                availability: Availability::Unavailable(why),
            });
        }
        let source = row.source.ok_or_else(|| invalid(name, "source: missing"))?;
        let run = row.run.ok_or_else(|| invalid(name, "run: missing"))?;
        let profile_name = row
            .profile
            .ok_or_else(|| invalid(name, "profile: missing"))?;
        let profile = *profiles
            .get(&profile_name)
            .ok_or_else(|| invalid(name, format!("profile: no profile {profile_name:?}")))?;
        let name_pattern = match &row.name_pattern {
            Some(p) => {
                let re = regex::Regex::new(p)
                    .map_err(|e| invalid(name, format!("name_pattern: {e}")))?;
                if re.captures_len() < 2 {
                    return Err(invalid(name, "name_pattern: needs a capture group"));
                }
                Some(re)
            }
            None => None,
        };
        if row.name_default.is_some() && name_pattern.is_none() {
            return Err(invalid(name, "name_default needs name_pattern"));
        }
        let has_name = name_pattern.is_some();
        let src_check = source.replace("{name}", "x");
        if !plain(&src_check) || (source.contains("{name}") && !has_name) {
            return Err(invalid(
                name,
                format!("source: {source:?} is not a file name"),
            ));
        }
        check_command(name, "run", &run, has_name)?;
        if let Some(c) = &row.compile {
            check_command(name, "compile", c, has_name)?;
        } else if row.compile_in_run {
            return Err(invalid(name, "compile_in_run needs compile"));
        }
        for b in &row.binds {
            if !b.is_absolute() || b.starts_with("/usr") || b == Path::new("/") {
                return Err(invalid(
                    name,
                    format!("binds: {} must be absolute and outside /usr", b.display()),
                ));
            }
        }
        let discover = match (row.discover, row.discover_at) {
            (Some(cmd), Some(at)) if !cmd.is_empty() && at.starts_with('/') => Some((cmd, at)),
            (None, None) => None,
            _ => {
                return Err(invalid(
                    name,
                    "discover and discover_at go together (a command, an absolute path)",
                ));
            }
        };
        let mut framework_exit = Vec::new();
        for (code, v) in &row.framework_exit {
            let c = code
                .parse::<i32>()
                .ok()
                .filter(|c| *c != 0)
                .ok_or_else(|| {
                    invalid(
                        name,
                        format!("framework_exit: {code:?} is not a non-zero exit code"),
                    )
                })?;
            framework_exit.push((c, *v));
        }
        if !framework_exit.is_empty() && !row.framework {
            return Err(invalid(name, "framework_exit needs framework = true"));
        }
        for k in row.env.keys() {
            let ok = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(invalid(name, format!("env: bad variable name {k:?}")));
            }
        }
        Ok(LanguageSpec {
            name: name.to_owned(),
            aliases: row.aliases,
            packages: row.packages,
            requires: row.requires,
            source,
            source_prefix: row.source_prefix,
            ensure_prefix_unless: match (&row.ensure_prefix, row.ensure_prefix_unless) {
                (Some(p), v) if v.is_empty() => vec![p.trim_end().to_owned()],
                (_, v) => v,
            },
            ensure_prefix: row.ensure_prefix,
            name_pattern,
            name_default: row.name_default,
            compile: row.compile,
            compile_in_run: row.compile_in_run,
            run,
            framework: row.framework,
            framework_exit,
            assert_failure_stderr: row.assert_failure_stderr,
            binds: row.binds,
            discover,
            env: row.env.into_iter().collect(),
            profile,
            availability: Availability::Unchecked,
        })
    }

    /// Whether the language has a compile step.
    pub fn is_compiled(&self) -> bool {
        self.compile.is_some()
    }

    /// The verdict a test suite's exit `code` means, if the table names one.
    pub fn framework_verdict(&self, code: i32) -> Option<protocol::CodeVerdict> {
        self.framework_exit
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, v)| *v)
    }

    /// Text whose presence on stderr means a test failed even on exit 0 (rackunit).
    pub fn assert_failure_stderr(&self) -> Option<&str> {
        self.assert_failure_stderr.as_deref()
    }

    /// The run command with `file` as the program (Python's harness files); only `{src}` is
    /// substituted.
    pub fn command_for(&self, file: &str) -> Vec<String> {
        self.run.iter().map(|a| a.replace("{src}", file)).collect()
    }

    /// The environment of its runs, on top of [`base_env`].
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The binds of its boxes, or why it cannot run here.
    pub fn ready_binds(&self) -> Result<&[Bind], String> {
        match &self.availability {
            Availability::Ready(b) => Ok(b),
            Availability::Missing(m) | Availability::Unavailable(m) => Err(m.clone()),
            Availability::Unchecked => Err(format!(
                "language {}: the toolchain was not checked on this verifier",
                self.name
            )),
        }
    }

    fn check_host(&self) -> Availability {
        if let Availability::Unavailable(m) = &self.availability {
            return Availability::Unavailable(m.clone());
        }
        let hint = || {
            let pk = if self.packages.is_empty() {
                String::new()
            } else {
                format!(" (packages: {})", self.packages.join(", "))
            };
            format!("{pk}; install it with sandbox-images/install-toolchains.sh")
        };
        if let Some(missing) = self.requires.iter().find(|p| !p.exists()) {
            return Availability::Missing(format!(
                "language {} is not installed on this verifier: {} is missing{}",
                self.name,
                missing.display(),
                hint()
            ));
        }
        let mut binds: Vec<Bind> = self
            .binds
            .iter()
            .filter(|b| b.is_dir())
            .map(|b| Bind {
                host: b.clone(),
                inside: b.display().to_string(),
                writable: false,
            })
            .collect();
        if let Some((cmd, at)) = &self.discover {
            let found = Command::new(&cmd[0])
                .args(&cmd[1..])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
                .filter(|p| p.is_dir());
            match found {
                Some(host) => binds.push(Bind {
                    host,
                    inside: at.clone(),
                    writable: false,
                }),
                None => {
                    return Availability::Missing(format!(
                        "language {} is not installed on this verifier: `{}` found no toolchain{}",
                        self.name,
                        cmd.join(" "),
                        hint()
                    ));
                }
            }
        }
        Availability::Ready(binds)
    }

    /// The class or object name a command refers to as `{name}`.
    fn detect_name(&self, code: &str) -> Result<Option<String>, String> {
        let Some(re) = &self.name_pattern else {
            return Ok(None);
        };
        match re.captures(code).and_then(|c| c.get(1)) {
            Some(m) => Ok(Some(m.as_str().to_owned())),
            None => match &self.name_default {
                Some(d) => Ok(Some(d.clone())),
                // SandboxFusion's answer when a Scala program has no object.
                None => Err("Object name not found.".into()),
            },
        }
    }

    /// The program for `code` next to the request's `files` (names relative to `/box`).
    /// Errs with SandboxFusion's message when a required name is not found.
    pub fn program(&self, code: &str, files: &[&str]) -> Result<Program, String> {
        let name = self.detect_name(code)?;
        let subst_name = |s: &str| match &name {
            Some(n) => s.replace("{name}", n),
            None => s.to_owned(),
        };
        let source_name = subst_name(&self.source);
        let mut source_text = String::new();
        if let Some(p) = &self.source_prefix {
            source_text.push_str(p);
        }
        match &self.ensure_prefix {
            Some(p) => {
                let code = code.trim_start();
                if !self
                    .ensure_prefix_unless
                    .iter()
                    .any(|m| code.starts_with(m.as_str()))
                {
                    source_text.push_str(p);
                }
                source_text.push_str(code);
            }
            None => source_text.push_str(code),
        }
        let mut all: Vec<&str> = files
            .iter()
            .copied()
            .filter(|f| *f != source_name)
            .collect();
        all.push(&source_name);
        all.sort_unstable();
        let expand = |cmd: &[String]| -> Vec<String> {
            let mut out = Vec::with_capacity(cmd.len());
            for arg in cmd {
                if let Some(ext) = arg
                    .strip_prefix("{files:")
                    .and_then(|a| a.strip_suffix('}'))
                {
                    out.extend(
                        all.iter()
                            .filter(|f| f.ends_with(ext))
                            .map(|f| (*f).to_owned()),
                    );
                    continue;
                }
                let mut a = subst_name(arg).replace("{src}", &source_name);
                while let Some(open) = a.find("{cp:") {
                    let close = a[open..].find('}').map_or(a.len(), |c| open + c);
                    let ext = a[open + 4..close].to_owned();
                    let list: String = all
                        .iter()
                        .filter(|f| f.ends_with(ext.as_str()))
                        .map(|f| format!(":{f}"))
                        .collect();
                    a.replace_range(open..(close + 1).min(a.len()), &list);
                }
                out.push(a);
            }
            out
        };
        let compile = self.compile.as_deref().map(expand);
        let run = expand(&self.run);
        Ok(Program {
            source_name,
            source_text,
            compile,
            run,
        })
    }
}

impl Languages {
    /// Parses and validates a table (toolchains unchecked).
    pub fn parse(text: &str) -> Result<Languages, TableError> {
        let file: TableFile = toml::from_str(text)?;
        let mut specs = Vec::with_capacity(file.languages.len());
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, row) in file.languages {
            if protocol::Language::parse(&name).is_none() {
                return Err(invalid(&name, "not a language name"));
            }
            let spec = LanguageSpec::from_row(&name, row, &file.profiles)?;
            for n in std::iter::once(&spec.name).chain(&spec.aliases) {
                if let Some(other) = seen.insert(n.clone(), spec.name.clone()) {
                    return Err(invalid(
                        &name,
                        format!("name {n:?} is also used by {other}"),
                    ));
                }
            }
            specs.push(spec);
        }
        Ok(Languages { specs })
    }

    /// Reads and validates the table at `path`.
    pub fn load(path: &Path) -> Result<Languages, TableError> {
        let text = std::fs::read_to_string(path).map_err(|source| TableError::Read {
            path: path.to_owned(),
            source,
        })?;
        Languages::parse(&text)
    }

    /// The shipped table, toolchains checked on this host.
    pub fn builtin() -> Languages {
        // The shipped table is validated by a unit test; a broken build cannot reach here.
        Languages::parse(DEFAULT_TABLE)
            .unwrap_or(Languages { specs: vec![] })
            .detect()
    }

    /// Checks every language's toolchain on this host (paths, discovery commands).
    #[must_use]
    pub fn detect(mut self) -> Languages {
        for s in &mut self.specs {
            s.availability = s.check_host();
        }
        self
    }

    /// The language called `name` (its name or an alias; exact first, then ignoring case).
    pub fn get(&self, name: &str) -> Option<&LanguageSpec> {
        let is = |s: &LanguageSpec, f: &dyn Fn(&str) -> bool| {
            f(&s.name) || s.aliases.iter().any(|a| f(a))
        };
        self.specs
            .iter()
            .find(|s| is(s, &|n| n == name))
            .or_else(|| {
                self.specs
                    .iter()
                    .find(|s| is(s, &|n| n.eq_ignore_ascii_case(name)))
            })
    }

    /// Every language, in name order.
    pub fn all(&self) -> &[LanguageSpec] {
        &self.specs
    }

    /// The language of a request, or the error message a caller shows (unknown, not
    /// installed, not offered).
    pub fn ready(&self, name: &str) -> Result<(&LanguageSpec, &[Bind]), String> {
        let spec = self.get(name).ok_or_else(|| self.unknown(name))?;
        Ok((spec, spec.ready_binds()?))
    }

    /// The message for a language name the table does not know.
    pub fn unknown(&self, name: &str) -> String {
        let known: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
        format!(
            "language {name:?} is not supported (known: {})",
            known.join(", ")
        )
    }
}

/// The environment every program gets (nothing is inherited from the verifier).
pub fn base_env() -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Languages {
        Languages::parse(DEFAULT_TABLE).expect("the shipped table is valid")
    }

    #[test]
    fn shipped_table_covers_sandbox_fusion() {
        let t = table();
        for name in [
            "python",
            "cpp",
            "nodejs",
            "go",
            "go_test",
            "java",
            "php",
            "csharp",
            "bash",
            "typescript",
            "rust",
            "lua",
            "R",
            "perl",
            "D_ut",
            "ruby",
            "scala",
            "julia",
            "pytest",
            "junit",
            "kotlin_script",
            "jest",
            "verilog",
            "lean",
            "swift",
            "racket",
            "c",
        ] {
            assert!(t.get(name).is_some(), "{name}");
        }
        assert_eq!(t.get("python3").unwrap().name, "python");
        assert_eq!(t.get("r").unwrap().name, "R");
        assert!(t.get("cobol").is_none());
        assert!(matches!(
            t.get("julia").unwrap().availability,
            Availability::Unavailable(_)
        ));
    }

    #[test]
    fn unknown_keys_and_bad_rows_are_refused() {
        let base = "[profiles.p]\npids = 1\ncompile_pids = 1\nscratch_mb = 1\nopen_files = 1\ncompile_seconds = 1\n";
        let bad = [
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"p\"\ncolour = 1\n",
                "colour",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"a\"]\nprofile = \"p\"\n",
                "absolute",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\", \"{bogus}\"]\nprofile = \"p\"\n",
                "placeholder",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"q\"\n",
                "profile",
            ),
            (
                "[languages.x]\nsource = \"../a\"\nrun = [\"/a\"]\nprofile = \"p\"\n",
                "file name",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\", \"{name}\"]\nprofile = \"p\"\n",
                "name_pattern",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"p\"\nname_pattern = \"x\"\n",
                "capture",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"p\"\ncompile_in_run = true\n",
                "compile_in_run",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"p\"\nbinds = [\"/usr/lib\"]\n",
                "outside /usr",
            ),
            (
                "[languages.x]\nsource = \"a\"\nrun = [\"/a\"]\nprofile = \"p\"\n[languages.y]\naliases = [\"x\"]\nunavailable = \"no\"\n",
                "also used",
            ),
        ];
        for (row, needle) in bad {
            let err = Languages::parse(&format!("{base}{row}"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[test]
    fn programs_expand_placeholders() {
        let t = table();
        let junit = t.get("junit").unwrap();
        let p = junit
            .program(
                "public final class Foo {}\nclass FooTest {}",
                &["lib.jar", "Extra.java"],
            )
            .unwrap();
        assert_eq!(p.source_name, "Foo.java");
        let compile = p.compile.unwrap();
        assert!(
            compile.contains(&"Extra.java".to_owned()) && compile.contains(&"Foo.java".to_owned())
        );
        assert!(
            compile.iter().any(|a| a.ends_with(":lib.jar")),
            "{compile:?}"
        );
        assert_eq!(
            junit.program("class A {}", &[]).unwrap().source_name,
            "Main.java"
        );
        let scala = t.get("scala").unwrap();
        assert_eq!(
            scala.program("val x = 1", &[]).unwrap_err(),
            "Object name not found."
        );
        let run = scala.program("object Hi extends App {}", &[]).unwrap().run;
        assert_eq!(run.last().unwrap(), "Hi");
        let php = t.get("php").unwrap();
        assert_eq!(
            php.program("  echo 1;", &[]).unwrap().source_text,
            "<?php\necho 1;"
        );
        assert_eq!(
            php.program("\n<?php echo 1;", &[]).unwrap().source_text,
            "<?php echo 1;"
        );
        let rkt = t.get("racket").unwrap();
        assert_eq!(
            rkt.program("(display 1)", &[]).unwrap().source_text,
            "#lang racket\n(display 1)"
        );
        assert_eq!(
            rkt.program("#lang racket/base\n1", &[])
                .unwrap()
                .source_text,
            "#lang racket/base\n1"
        );
    }
}
