//! The GPU check as far as a CPU takes it (docs/gpu.md, "Checking on a GPU"): `trainer gpu-check`
//! correctness, speed and export on the CPU with their reports, the report the device script assembles,
//! and `scripts/gpu-check.sh` packing this test build into a bundle whose binary unpacks and
//! runs, with a device script that parses and a Python script that compiles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpu-check-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn trainer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
        .args(args)
        .output()
        .unwrap()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

/// `trainer gpu-check correctness --device cpu` passes and writes its report; `speed` on the tiny
/// shape writes its figures; the device script's report step reads both (and says the 30-step
/// CUDA run is missing) without PyTorch.
#[test]
fn correctness_and_speed_on_the_cpu_and_the_report_over_them() {
    let dir = scratch("cli");
    let d = dir.to_str().unwrap();
    let stdout = ok(
        trainer(&["gpu-check", "correctness", "--device", "cpu", "--out", d]),
        "gpu-check correctness",
    );
    assert!(stdout.contains("all passed"), "{stdout}");
    let report = json(&dir.join("correctness.json"));
    assert_eq!(report["passed"], true);
    assert_eq!(report["device"], "cpu");
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 28);
    for name in [
        "KV-cache decoding vs full forward (device)",
        "logits, bf16 vs f32 (device)",
        "parameters without a finite non-zero gradient (device)",
    ] {
        assert!(checks.iter().any(|c| c["name"] == name), "no check {name}");
    }
    assert!(dir.join("correctness.md").is_file());

    let stdout = ok(
        trainer(&[
            "gpu-check",
            "speed",
            "--shape",
            "tiny",
            "--device",
            "cpu",
            "--rows",
            "4",
            "--prompt",
            "8",
            "--new",
            "8",
            "--repeat",
            "1",
            "--out",
            d,
        ]),
        "gpu-check speed",
    );
    assert!(stdout.contains("rollout generation, tokens/s"), "{stdout}");
    let speed = json(&dir.join("speed-tiny-bf16.json"));
    assert_eq!(speed["options"]["shape"], "tiny");
    assert_eq!(speed["prompt_ids"].as_array().unwrap().len(), 8);
    assert!(speed["train_tokens_per_s"].as_f64().unwrap() > 0.0);

    let hf = dir.join("tiny-hf");
    let stdout = ok(
        trainer(&[
            "gpu-check",
            "export",
            "--shape",
            "tiny",
            "--out",
            hf.to_str().unwrap(),
        ]),
        "gpu-check export",
    );
    assert!(stdout.contains("Qwen2ForCausalLM"), "{stdout}");
    assert!(hf.join("config.json").is_file() && hf.join("model.safetensors").is_file());

    // No CUDA in this build: the device is refused with the way to get one.
    let out = trainer(&["gpu-check", "correctness", "--device", "cuda", "--out", d]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scripts/build-cuda.sh"));

    let out_dir = dir.join("out");
    let stdout = ok(
        Command::new("python3")
            .arg(root().join("scripts/gpu_torch_bench.py"))
            .args(["report", "--details", d, "--out", out_dir.to_str().unwrap()])
            .output()
            .unwrap(),
        "gpu_torch_bench.py report",
    );
    assert!(stdout.contains("## Targets"), "{stdout}");
    let r = json(&out_dir.join("gpu-report.json"));
    let targets = r["targets"].as_array().unwrap();
    let find = |prefix: &str| {
        targets
            .iter()
            .find(|t| t["target"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no target {prefix}: {targets:?}"))
    };
    assert_eq!(find("every correctness check passes")["pass"], true);
    assert_eq!(find("f32 CUDA logits")["pass"], true);
    assert_eq!(find("30-step tiny run")["pass"], false, "no run was made");
    assert!(find("STEER step <= 3 %")["value"].is_number());
    let md = std::fs::read_to_string(out_dir.join("gpu-report.md")).unwrap();
    assert!(md.contains("| tiny | generation tokens/s |"), "{md}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `scripts/gpu-check.sh --binary <this test build> --no-cuda-build` packs a bundle under the
/// size limit whose binary unpacks (with xz and with Python's lzma, as the device script does)
/// and runs; the device script parses, the Python compiles, and the whole device script runs on
/// the CPU (`GPU_CHECK_DEVICE=cpu`, the tiny shape, 2 steps) into its report; an over-limit
/// bundle is refused.
#[test]
fn the_bundle_packs_unpacks_and_runs() {
    let dir = scratch("bundle");
    let bundle = dir.join("bundle");
    let pack = |max_mib: &str| {
        Command::new("bash")
            .arg(root().join("scripts/gpu-check.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_trainer"), "--no-cuda-build"])
            .args(["--out", bundle.to_str().unwrap()])
            .env("GPU_CHECK_XZ_LEVEL", "0")
            .env("GPU_CHECK_MAX_MIB", max_mib)
            .output()
            .unwrap()
    };
    let stdout = ok(pack("60"), "gpu-check.sh");
    assert!(
        stdout.contains(&format!("carry=[\"{}\"]", bundle.display()))
            && stdout.contains(&format!("command=\"bash {}/device.sh\"", bundle.display())),
        "{stdout}"
    );
    for f in ["trainer.xz", "device.sh", "gpu_torch_bench.py", "MANIFEST"] {
        assert!(bundle.join(f).is_file(), "{f} missing: {stdout}");
    }
    let manifest = std::fs::read_to_string(bundle.join("MANIFEST")).unwrap();
    assert!(manifest.contains("cuda: no"), "{manifest}");

    let by_xz = dir.join("trainer-xz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "xz -dc '{}' > '{}' && chmod +x '{}'",
            bundle.join("trainer.xz").display(),
            by_xz.display(),
            by_xz.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let by_lzma = dir.join("trainer-lzma");
    ok(
        Command::new("python3")
            .args([
                "-c",
                "import lzma, shutil, sys, os; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb')); os.chmod(sys.argv[2], 0o755)",
            ])
            .arg(bundle.join("trainer.xz"))
            .arg(&by_lzma)
            .output()
            .unwrap(),
        "python lzma",
    );
    for bin in [&by_xz, &by_lzma] {
        let help = ok(Command::new(bin).arg("--help").output().unwrap(), "--help");
        assert!(help.contains("gpu-check"), "{help}");
        let help = ok(
            Command::new(bin)
                .args(["gpu-check", "speed", "--help"])
                .output()
                .unwrap(),
            "gpu-check speed --help",
        );
        assert!(help.contains("qwen2-0.5b"), "{help}");
    }

    ok(
        Command::new("bash")
            .arg("-n")
            .arg(bundle.join("device.sh"))
            .output()
            .unwrap(),
        "bash -n device.sh",
    );
    ok(
        Command::new("python3")
            .args(["-m", "py_compile"])
            .arg(bundle.join("gpu_torch_bench.py"))
            .env("PYTHONPYCACHEPREFIX", dir.join("pycache"))
            .output()
            .unwrap(),
        "py_compile gpu_torch_bench.py",
    );

    // The device script end to end, on the CPU: every phase but PyTorch's (not installed
    // here, or on the CPU when it is) must succeed, and the report must say so.
    let out_dir = dir.join("out");
    let stdout = ok(
        Command::new("bash")
            .arg(bundle.join("device.sh"))
            .current_dir(root())
            .env("OUT", &out_dir)
            .env("GPU_CHECK_WORK", dir.join("work"))
            .env("GPU_CHECK_DEVICE", "cpu")
            .env("GPU_CHECK_STEPS", "2")
            .env("GPU_CHECK_SHAPES", "tiny")
            .env("GPU_CHECK_ROWS", "2")
            .env("GPU_CHECK_PROMPT", "4")
            .env("GPU_CHECK_NEW", "4")
            .env("GPU_CHECK_REPEAT", "1")
            .env("GPU_CHECK_BUDGET", "300")
            .output()
            .unwrap(),
        "device.sh on the CPU",
    );
    for f in [
        "gpu-report.json",
        "gpu-report.md",
        "device.log",
        "details.tar.gz",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing:\n{stdout}");
    }
    let r = json(&out_dir.join("gpu-report.json"));
    let phases = r["phases"].as_array().unwrap();
    for name in ["correctness", "tiny-run", "speed-tiny", "export-tiny"] {
        let p = phases
            .iter()
            .find(|p| p["phase"] == name)
            .unwrap_or_else(|| panic!("no phase {name}: {phases:?}\n{stdout}"));
        assert_eq!(p["exit"], "0", "{name}: {p:?}\n{stdout}");
    }
    assert!(
        phases.iter().any(|p| p["phase"] == "torch-tiny"),
        "{phases:?}"
    );
    let targets = r["targets"].as_array().unwrap();
    for t in targets {
        let name = t["target"].as_str().unwrap();
        if name.starts_with("every correctness") || name.starts_with("2-step tiny run") {
            assert_eq!(t["pass"], true, "{t:?}\n{stdout}");
        }
    }
    assert_eq!(r["tiny_run"]["steps_rows"], 2, "{stdout}");
    assert!(r["tiny_run"]["rollout_rows"].as_u64().unwrap() > 0);
    assert_eq!(r["speed"][0]["shape"], "tiny");
    let md = std::fs::read_to_string(out_dir.join("gpu-report.md")).unwrap();
    assert!(
        md.contains("cuda: no"),
        "the report names the binary:\n{md}"
    );

    let out = pack("1");
    assert!(!out.status.success(), "a bundle over 1 MiB was accepted");
    assert!(String::from_utf8_lossy(&out.stderr).contains("over the 1 MiB limit"));
    std::fs::remove_dir_all(&dir).ok();
}
