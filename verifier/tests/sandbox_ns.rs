//! The namespace backend against real programs: containment, limits and cleanup.

use std::path::PathBuf;
use std::time::Duration;

use verifier::sandbox::{Exit, NsConfig, NsSandbox, RunLimits, RunSpec, Sandbox};

fn sandbox() -> Option<NsSandbox> {
    let cfg = NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier")),
        ..NsConfig::default()
    };
    match NsSandbox::new(cfg) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("SKIP: namespace backend unavailable here: {e}");
            None
        }
    }
}

fn py(code: &str, stdin: &str, wall_s: f64, mem_mb: u64) -> RunSpec {
    RunSpec {
        argv: vec!["/usr/bin/python3".into(), "-c".into(), code.into()],
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        binds: vec![],
        stdin: stdin.as_bytes().to_vec(),
        limits: RunLimits::for_run(Duration::from_secs_f64(wall_s), mem_mb << 20),
    }
}

#[test]
fn echo_and_exit_code() {
    let Some(sb) = sandbox() else { return };
    let out = sb
        .run(&py(
            "import sys; d=sys.stdin.read(); print(d.upper()); sys.exit(3)",
            "hi",
            5.0,
            256,
        ))
        .unwrap();
    eprintln!("{out:?}");
    assert_eq!(out.exit, Exit::Code(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "HI\n");
}
