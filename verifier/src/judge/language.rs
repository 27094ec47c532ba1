//! Per-language commands: file names, the compile step and the run command, all as paths
//! inside the box (`/src` holds the sources read-only, `/out` the compiled program).

use std::path::PathBuf;
use std::process::Command;

use protocol::Language;

use crate::sandbox::Bind;

/// Where the Rust toolchain is bound inside the box.
const RUST_INSIDE: &str = "/opt/rust";

/// Toolchains found on this host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Toolchains {
    /// The Rust sysroot (holding `bin/rustc`), if one was found.
    pub rust_sysroot: Option<PathBuf>,
}

impl Toolchains {
    /// Looks for `rustc` (through `rustc --print sysroot`, so rustup proxies work).
    pub fn detect() -> Toolchains {
        let rust_sysroot = Command::new("rustc")
            .args(["--print", "sysroot"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|p| p.join("bin/rustc").is_file());
        Toolchains { rust_sysroot }
    }
}

/// How to build and run one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// Source file name in `/src`.
    pub source_file: &'static str,
    /// Compiler command, for compiled languages.
    pub compile: Option<Vec<String>>,
    /// Command that runs the program `file` (a name in `/src`) for interpreted languages,
    /// or the compiled binary.
    pub run_prefix: Vec<String>,
    /// Extra read-only binds (toolchains).
    pub binds: Vec<Bind>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// The recipe for `lang`, or why it cannot run here.
pub fn recipe(lang: Language, tools: &Toolchains) -> Result<Recipe, String> {
    let base_env = |extra: &[(&str, &str)]| {
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    Ok(match lang {
        Language::Python => Recipe {
            source_file: "main.py",
            compile: None,
            run_prefix: strings(&["/usr/bin/python3", "-B"]),
            binds: vec![],
            env: base_env(&[("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONHASHSEED", "0")]),
        },
        Language::C => Recipe {
            source_file: "main.c",
            compile: Some(strings(&[
                "/usr/bin/gcc",
                "-O2",
                "-std=gnu17",
                "-o",
                "/out/prog",
                "/src/main.c",
                "-lm",
            ])),
            run_prefix: strings(&["/out/prog"]),
            binds: vec![],
            env: vec![],
        },
        Language::Cpp => Recipe {
            source_file: "main.cpp",
            compile: Some(strings(&[
                "/usr/bin/g++",
                "-O2",
                "-std=gnu++17",
                "-o",
                "/out/prog",
                "/src/main.cpp",
            ])),
            run_prefix: strings(&["/out/prog"]),
            binds: vec![],
            env: vec![],
        },
        Language::Rust => {
            let Some(sysroot) = &tools.rust_sysroot else {
                return Err(
                    "no Rust toolchain is readable on this verifier (rustc not found); \
                            rust submissions cannot be compiled here"
                        .into(),
                );
            };
            Recipe {
                source_file: "main.rs",
                compile: Some(vec![
                    format!("{RUST_INSIDE}/bin/rustc"),
                    "-O".into(),
                    "--edition".into(),
                    "2021".into(),
                    "-o".into(),
                    "/out/prog".into(),
                    "/src/main.rs".into(),
                ]),
                run_prefix: strings(&["/out/prog"]),
                binds: vec![Bind {
                    host: sysroot.clone(),
                    inside: RUST_INSIDE.into(),
                    writable: false,
                }],
                env: vec![],
            }
        }
    })
}

/// Whether `lang` is compiled.
pub fn is_compiled(lang: Language) -> bool {
    lang != Language::Python
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
