//! Every language of the language table, over HTTP, against SandboxFusion's documented
//! behaviour:
//!
//! * `sandbox_fusion_runner_tests`: every `/run_code` request of SandboxFusion's own runner
//!   tests (`tests/fixtures/sandbox_fusion_runners.json`, translated from its
//!   `sandbox/tests/runners/test_*.py`) with its assertions;
//! * `five_outcomes_in_every_language`: a success, a wrong answer, a compile error, a runtime
//!   error and a timeout per language, through `/run_code` (SandboxFusion's statuses, which
//!   step reports what) and `/v1/code/judge` (the verdicts), the test-framework modes with
//!   their own test suites;
//! * `run_code_working_directory_files_and_loopback`: relative `files`, `fetch_files`
//!   (relative, `/mnt`, missing, a symlink out of the box), a server on the box's own
//!   loopback.
//!
//! Languages run concurrently, a few at a time. A language whose toolchain is not installed
//! (`sandbox-images/install-toolchains.sh` installs them all) is skipped with a `SKIP:` line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use protocol::route;
use serde_json::{Value, json};
use tower::ServiceExt;
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};
use verifier::{AppState, app};

/// Languages checked at once (each run also holds a CPU permit of the app).
const PARALLEL: usize = 2;

/// The heavy tests of this file run one at a time: JVM compilers starved of CPU by a
/// neighbouring test would only measure this small host's contention.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `LANGUAGES_ONLY=go,java` narrows a run while working on a language.
fn selected(lang: &str) -> bool {
    std::env::var("LANGUAGES_ONLY")
        .map(|o| o.split(',').any(|l| l == lang))
        .unwrap_or(true)
}

fn state() -> Option<AppState> {
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    });
    match ns {
        // Whole batches of slow compilers queue for CPU permits on this small host: no
        // request deadline short of the test's own.
        Ok(ns) => {
            let limits = verifier::Limits {
                request_timeout: std::time::Duration::from_secs(900),
                ..verifier::Limits::default()
            };
            Some(AppState::new(limits, None).with_judge(Judge::new(Ok(ns))))
        }
        Err(e) => {
            eprintln!("SKIP: namespace backend unavailable here: {e}");
            None
        }
    }
}

/// Whether `lang` can run here (else a `SKIP:` line).
fn ready(state: &AppState, lang: &str) -> bool {
    let judge = state.judge.as_ref().expect("judge");
    match judge.languages().ready(lang) {
        Ok(_) => true,
        Err(why) => {
            eprintln!("SKIP: {lang}: {why}");
            false
        }
    }
}

async fn call(state: AppState, path: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, body)
}

/// Runs `jobs` at most [`PARALLEL`] at a time; returns the failures.
async fn run_all<F>(jobs: Vec<F>) -> Vec<String>
where
    F: std::future::Future<Output = Vec<String>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut handles = Vec::new();
    for job in jobs {
        let permits = Arc::clone(&permits);
        handles.push(tokio::spawn(async move {
            let _p = permits.acquire_owned().await.unwrap();
            job.await
        }));
    }
    let mut failures = Vec::new();
    for h in handles {
        failures.extend(h.await.unwrap());
    }
    failures
}

/// A field of a `/run_code` answer by dotted path (`run_result.stdout`, …).
fn field<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| &v[k])
}

/// One SandboxFusion assertion, translated: `[op, field, value]`.
fn check(v: &Value, op: &str, f: &str, want: &Value) -> Result<(), String> {
    let text = |p: &str| field(v, p).as_str().unwrap_or("").to_owned();
    let ok = match op {
        "eq" => field(v, f) == want,
        "eq_strip" => text(f).trim() == want.as_str().unwrap_or(""),
        "contains" if f == "run_result.output" => {
            let all = text("run_result.stderr") + &text("run_result.stdout");
            all.contains(want.as_str().unwrap_or(""))
        }
        "contains" => text(f).contains(want.as_str().unwrap_or("")),
        "nonzero" => field(v, f).as_i64().is_some_and(|c| c != 0),
        "null" => field(v, f).is_null(),
        "file_eq" => v["files"][f]
            .as_str()
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|b| b == want.as_str().unwrap_or("").as_bytes()),
        _ => return Err(format!("unknown check {op}")),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{op} {f} {want}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sandbox_fusion_runner_tests() {
    let Some(state) = state() else { return };
    let _heavy = HEAVY.lock().await;
    let doc: Value = serde_json::from_str(include_str!("fixtures/sandbox_fusion_runners.json"))
        .expect("fixture");
    let cases = doc["cases"].as_array().expect("cases").clone();
    let mut jobs = Vec::new();
    let mut ran = 0usize;
    for case in cases {
        let name = case["name"].as_str().unwrap().to_owned();
        let lang = case["request"]["language"].as_str().unwrap().to_owned();
        let unavailable = case["difference"]
            .as_str()
            .is_some_and(|d| d.contains("no Debian package"));
        if !selected(&lang) || (!unavailable && !ready(&state, &lang)) {
            continue;
        }
        ran += 1;
        let state = state.clone();
        jobs.push(async move {
            let port = 30000 + (std::process::id() as usize * 7 + name.len() * 131) % 30000;
            let mut req = case["request"].clone();
            if let Some(code) = req["code"].as_str() {
                req["code"] = json!(code.replace("__PORT__", &port.to_string()));
            }
            // This host is small and shared: compile limits, and the run limits of cases that
            // do not test a timeout, are raised to 60 s (JVM compilers take several seconds
            // under load; SandboxFusion's own limits there only keep the case from failing).
            let tests_timeout = case["expect"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e[2] == "TimeLimitExceeded");
            req["compile_timeout"] = json!(60);
            if !tests_timeout {
                req["run_timeout"] = json!(60);
            }
            let copies = case["concurrent"].as_u64().unwrap_or(1) as usize;
            let answers = futures_join(
                (0..copies)
                    .map(|_| {
                        let (state, req) = (state.clone(), req.clone());
                        async move { call(state, route::RUN_CODE, &req).await }
                    })
                    .collect(),
            )
            .await;
            let mut failures = Vec::new();
            for (status, v) in answers {
                if status != StatusCode::OK {
                    failures.push(format!("{name}: HTTP {status}: {v}"));
                    continue;
                }
                let difference = case["difference"].as_str();
                if unavailable {
                    // julia, swift, lean: a clear SandboxError naming the language.
                    if v["status"] != "SandboxError"
                        || !v["message"].as_str().unwrap_or("").contains(&lang)
                    {
                        failures.push(format!("{name}: expected a SandboxError: {v}"));
                    }
                    continue;
                }
                if difference.is_some() {
                    // The one documented difference: no internet from the box.
                    if v["status"] != "Failed" {
                        failures.push(format!("{name}: the internet was reachable: {v}"));
                    }
                    continue;
                }
                for e in case["expect"].as_array().unwrap() {
                    let (op, f) = (e[0].as_str().unwrap(), e[1].as_str().unwrap());
                    if let Err(why) = check(&v, op, f, &e[2]) {
                        failures.push(format!("{name}: {why}: {v}"));
                    }
                }
            }
            failures
        });
    }
    let failures = run_all(jobs).await;
    println!("SandboxFusion runner tests: {ran} cases run");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Awaits futures concurrently, keeping their order.
async fn futures_join<F, T>(futs: Vec<F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// The five programs of a language: reads n, prints 2n; prints 3n; does not compile (or
/// parse); fails at run time; never ends. Test-framework modes: the program is a function
/// and `suite` its tests (`suite_fail` a failing suite instead of the wrong program).
struct Five {
    lang: &'static str,
    ok: &'static str,
    wrong: &'static str,
    broken: &'static str,
    crash: &'static str,
    hang: &'static str,
    /// Test-framework mode: the passing and the failing suite.
    suite: Option<(&'static str, &'static str)>,
    /// Judge verdicts of the five, where they differ from the usual mapping (test suites:
    /// how the framework reports a broken or crashing program).
    verdicts: Option<[&'static str; 5]>,
}

const FIVE: &[Five] = &[
    Five {
        lang: "python",
        ok: "print(int(input()) * 2)",
        wrong: "print(int(input()) * 3)",
        broken: "def f(:\n    pass\n",
        crash: "raise ValueError('boom')",
        hang: "while True:\n    pass\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "c",
        ok: "#include <stdio.h>\nint main(void){int n;scanf(\"%d\",&n);printf(\"%d\\n\",2*n);return 0;}\n",
        wrong: "#include <stdio.h>\nint main(void){int n;scanf(\"%d\",&n);printf(\"%d\\n\",3*n);return 0;}\n",
        broken: "int main(void){ return x; }\n",
        crash: "#include <stdlib.h>\nint main(void){ abort(); }\n",
        hang: "int main(void){ volatile unsigned x = 0; for (;;) x++; }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "cpp",
        ok: "#include <iostream>\nint main(){int n;std::cin>>n;std::cout<<2*n<<std::endl;}\n",
        wrong: "#include <iostream>\nint main(){int n;std::cin>>n;std::cout<<3*n<<std::endl;}\n",
        broken: "int main() { object i = ?; }\n",
        crash: "#include <stdexcept>\nint main(){ throw std::runtime_error(\"boom\"); }\n",
        hang: "int main(){ volatile unsigned x = 0; for (;;) x++; }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "rust",
        ok: "fn main(){let mut s=String::new();std::io::stdin().read_line(&mut s).unwrap();let n:i64=s.trim().parse().unwrap();println!(\"{}\",2*n);}\n",
        wrong: "fn main(){let mut s=String::new();std::io::stdin().read_line(&mut s).unwrap();let n:i64=s.trim().parse().unwrap();println!(\"{}\",3*n);}\n",
        broken: "fn main() { let x: u32 = \"a\"; }\n",
        crash: "fn main() { panic!(\"boom\"); }\n",
        hang: "fn main() { let mut x = 0u64; loop { x = std::hint::black_box(x + 1); } }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "go",
        ok: "package main\nimport \"fmt\"\nfunc main(){var n int; fmt.Scan(&n); fmt.Println(2*n)}\n",
        wrong: "package main\nimport \"fmt\"\nfunc main(){var n int; fmt.Scan(&n); fmt.Println(3*n)}\n",
        broken: "package main\nfunc main(){ x := 1 }\n",
        crash: "package main\nfunc main(){ panic(\"boom\") }\n",
        hang: "package main\nfunc main(){ for {} }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "java",
        ok: "import java.util.Scanner;\npublic class Main { public static void main(String[] a) { System.out.println(2 * new Scanner(System.in).nextInt()); } }\n",
        wrong: "import java.util.Scanner;\npublic class Main { public static void main(String[] a) { System.out.println(3 * new Scanner(System.in).nextInt()); } }\n",
        broken: "public class Main { public static void main(String[] a) { System.uto.println(1); } }\n",
        crash: "public class Main { public static void main(String[] a) { throw new RuntimeException(\"boom\"); } }\n",
        hang: "public class Main { public static void main(String[] a) { while (true) {} } }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "nodejs",
        ok: "const n = parseInt(require('fs').readFileSync(0, 'utf8')); console.log(2 * n);\n",
        wrong: "const n = parseInt(require('fs').readFileSync(0, 'utf8')); console.log(3 * n);\n",
        broken: "function (\n",
        crash: "throw new Error('boom');\n",
        hang: "while (true) {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "typescript",
        ok: "import * as fs from 'fs';\nconst n: number = parseInt(fs.readFileSync(0, 'utf8'));\nconsole.log(2 * n);\n",
        wrong: "import * as fs from 'fs';\nconst n: number = parseInt(fs.readFileSync(0, 'utf8'));\nconsole.log(3 * n);\n",
        broken: "let x: number = ;\n",
        crash: "throw new Error('boom');\n",
        hang: "while (true) {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "bash",
        ok: "read n\necho $((2 * n))\n",
        wrong: "read n\necho $((3 * n))\n",
        broken: "if [\n",
        crash: "exit 3\n",
        hang: "while :; do :; done\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "perl",
        ok: "my $n = <STDIN>; print 2 * $n, \"\\n\";\n",
        wrong: "my $n = <STDIN>; print 3 * $n, \"\\n\";\n",
        broken: "my $x = ;\n",
        crash: "die \"boom\";\n",
        hang: "while (1) {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "ruby",
        ok: "n = gets.to_i\nputs 2 * n\n",
        wrong: "n = gets.to_i\nputs 3 * n\n",
        broken: "def f(\n",
        crash: "raise 'boom'\n",
        hang: "loop {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "php",
        ok: "<?php $n = intval(trim(fgets(STDIN))); echo 2 * $n, \"\\n\";\n",
        wrong: "<?php $n = intval(trim(fgets(STDIN))); echo 3 * $n, \"\\n\";\n",
        broken: "<?php $x = ;\n",
        crash: "<?php throw new Exception('boom');\n",
        hang: "<?php while (true) {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "lua",
        ok: "local n = io.read('n')\nprint(2 * n)\n",
        wrong: "local n = io.read('n')\nprint(3 * n)\n",
        broken: "local x = = 1\n",
        crash: "error('boom')\n",
        hang: "while true do end\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "R",
        ok: "n <- as.integer(readLines(file('stdin'), n = 1))\ncat(2 * n, '\\n', sep = '')\n",
        wrong: "n <- as.integer(readLines(file('stdin'), n = 1))\ncat(3 * n, '\\n', sep = '')\n",
        broken: "x <- (\n",
        crash: "stop('boom')\n",
        hang: "repeat {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "csharp",
        ok: "public class P { public static void Main() { int n = int.Parse(Console.ReadLine()); Console.WriteLine(2 * n); } }\n",
        wrong: "public class P { public static void Main() { int n = int.Parse(Console.ReadLine()); Console.WriteLine(3 * n); } }\n",
        broken: "public class P { public static void Main() { int x = \"s\"; } }\n",
        crash: "public class P { public static void Main() { throw new Exception(\"boom\"); } }\n",
        hang: "public class P { public static void Main() { while (true) {} } }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "D_ut",
        ok: "import std.stdio, std.conv, std.string;\nvoid main() { int n = readln().strip().to!int; writeln(2 * n); }\n",
        wrong: "import std.stdio, std.conv, std.string;\nvoid main() { int n = readln().strip().to!int; writeln(3 * n); }\n",
        broken: "void main() { int x = \"s\"; }\n",
        crash: "void main() { throw new Exception(\"boom\"); }\n",
        hang: "void main() { while (true) {} }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "scala",
        ok: "object Main { def main(a: Array[String]): Unit = { val n = scala.io.StdIn.readLine().trim.toInt; println(2 * n) } }\n",
        wrong: "object Main { def main(a: Array[String]): Unit = { val n = scala.io.StdIn.readLine().trim.toInt; println(3 * n) } }\n",
        broken: "object Main { def main(a: Array[String]): Unit = { val x: Int = \"s\" } }\n",
        crash: "object Main { def main(a: Array[String]): Unit = { throw new RuntimeException(\"boom\") } }\n",
        hang: "object Main { def main(a: Array[String]): Unit = { while (true) {} } }\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "kotlin_script",
        ok: "val n = readLine()!!.trim().toInt()\nprintln(2 * n)\n",
        wrong: "val n = readLine()!!.trim().toInt()\nprintln(3 * n)\n",
        broken: "val x: Int = \"s\"\n",
        crash: "throw Exception(\"boom\")\n",
        hang: "while (true) {}\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "racket",
        ok: "#lang racket\n(displayln (* 2 (read)))\n",
        wrong: "#lang racket\n(displayln (* 3 (read)))\n",
        broken: "#lang racket\n(define (f x)\n",
        crash: "#lang racket\n(error \"boom\")\n",
        hang: "#lang racket\n(let loop () (loop))\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "verilog",
        ok: "module tb; integer n, r; initial begin r = $fscanf(32'h8000_0000, \"%d\", n); $display(\"%0d\", 2 * n); $finish; end endmodule\n",
        wrong: "module tb; integer n, r; initial begin r = $fscanf(32'h8000_0000, \"%d\", n); $display(\"%0d\", 3 * n); $finish; end endmodule\n",
        broken: "module tb; initial begin $display(\"10\") end endmodule\n",
        crash: "module tb; initial begin $fatal(1, \"boom\"); end endmodule\n",
        hang: "module tb; reg c = 0; always #1 c = ~c; endmodule\n",
        suite: None,
        verdicts: None,
    },
    Five {
        lang: "pytest",
        ok: "def double(n):\n    return 2 * n\n",
        wrong: "def double(n):\n    return 3 * n\n",
        broken: "def double(n:\n    return 2 * n\n",
        crash: "raise ImportError('boom')\n",
        hang: "import time\ndef double(n):\n    time.sleep(100)\n",
        suite: Some((
            "def test_double():\n    assert double(5) == 10\n",
            "def test_double():\n    assert double(5) == 11\n",
        )),
        // pytest: 1 tests failed, 2 collection error.
        verdicts: Some([
            "accepted",
            "wrong_answer",
            "runtime_error",
            "runtime_error",
            "time_limit",
        ]),
    },
    Five {
        lang: "junit",
        ok: "public class Calc { public static int twice(int n) { return 2 * n; } }\n",
        wrong: "public class Calc { public static int twice(int n) { return 3 * n; } }\n",
        broken: "public class Calc { public static int twice(int n) { return \"s\"; } }\n",
        crash: "public class Calc { static { if (true) throw new RuntimeException(\"boom\"); } public static int twice(int n) { return 2 * n; } }\n",
        hang: "public class Calc { public static int twice(int n) { while (true) {} } }\n",
        suite: Some((
            "class CalcTest { @org.junit.jupiter.api.Test void t() { org.junit.jupiter.api.Assertions.assertEquals(10, Calc.twice(5)); } }\n",
            "class CalcTest { @org.junit.jupiter.api.Test void t() { org.junit.jupiter.api.Assertions.assertEquals(11, Calc.twice(5)); } }\n",
        )),
        // The class initializer's exception fails the test.
        verdicts: Some([
            "accepted",
            "wrong_answer",
            "compile_error",
            "wrong_answer",
            "time_limit",
        ]),
    },
    Five {
        lang: "jest",
        ok: "function twice(n: number): number { return 2 * n; }\n",
        wrong: "function twice(n: number): number { return 3 * n; }\n",
        broken: "function twice(n: number): number { return 2 * ; }\n",
        crash: "throw new Error('boom');\nfunction twice(n: number): number { return 2 * n; }\n",
        hang: "function twice(n: number): number { while (true) {} }\n",
        suite: Some((
            "import { expect, test } from '@jest/globals';\ntest('twice', () => { expect(twice(5)).toBe(10); });\n",
            "import { expect, test } from '@jest/globals';\ntest('twice', () => { expect(twice(5)).toBe(11); });\n",
        )),
        // jest exits 1 for a suite that fails to load as for a failed test.
        verdicts: Some([
            "accepted",
            "wrong_answer",
            "wrong_answer",
            "wrong_answer",
            "time_limit",
        ]),
    },
    Five {
        lang: "go_test",
        ok: "package main\nimport (\n\"testing\"\n\"github.com/stretchr/testify/assert\"\n)\nfunc Twice(n int) int { return 2 * n }\n",
        wrong: "package main\nimport (\n\"testing\"\n\"github.com/stretchr/testify/assert\"\n)\nfunc Twice(n int) int { return 3 * n }\n",
        broken: "package main\nimport (\n\"testing\"\n\"github.com/stretchr/testify/assert\"\n)\nfunc Twice(n int) int { return \"s\" }\n",
        crash: "package main\nimport (\n\"testing\"\n\"github.com/stretchr/testify/assert\"\n)\nfunc Twice(n int) int { var m map[int]int; m[1] = 1; return 2 * n }\n",
        hang: "package main\nimport (\n\"testing\"\n\"github.com/stretchr/testify/assert\"\n)\nfunc Twice(n int) int { for {} }\n",
        suite: Some((
            "func TestTwice(t *testing.T) { assert.Equal(t, 10, Twice(5)) }\n",
            "func TestTwice(t *testing.T) { assert.Equal(t, 11, Twice(5)) }\n",
        )),
        // go test: 1 tests failed (a panic in a test too), 2 build failed.
        verdicts: Some([
            "accepted",
            "wrong_answer",
            "compile_error",
            "wrong_answer",
            "time_limit",
        ]),
    },
];

/// What SandboxFusion answers for one of the five programs of a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Wrong,
    Broken,
    Crash,
    Hang,
}

/// Checks a `/run_code` answer: statuses, which step reports what, the output.
fn check_run_code(
    v: &Value,
    outcome: Outcome,
    compiled: bool,
    compile_in_run: bool,
    framework: bool,
) -> Result<(), String> {
    let run = &v["run_result"];
    let compile = &v["compile_result"];
    let want_status = match outcome {
        Outcome::Ok => "Success",
        Outcome::Wrong if !framework => "Success",
        _ => "Failed",
    };
    if v["status"] != want_status {
        return Err(format!("status: want {want_status}"));
    }
    let compile_step = compiled && !compile_in_run;
    if compile_step != compile.is_object() {
        return Err(format!("compile_result present: want {compile_step}"));
    }
    match outcome {
        Outcome::Broken if compile_step => {
            if compile["status"] != "Finished" || compile["return_code"] == json!(0) {
                return Err("a failed compile step".into());
            }
            if !run.is_null() {
                return Err("no run after a failed compile".into());
            }
        }
        Outcome::Broken | Outcome::Crash => {
            if run["status"] != "Finished" || run["return_code"] == json!(0) {
                return Err("a run that finished with a non-zero return code".into());
            }
        }
        Outcome::Hang => {
            if run["status"] != "TimeLimitExceeded" || !run["return_code"].is_null() {
                return Err("a run past its time limit".into());
            }
        }
        Outcome::Ok | Outcome::Wrong => {
            if run["status"] != "Finished" {
                return Err("a finished run".into());
            }
            let out = run["stdout"].as_str().unwrap_or("").trim().to_owned();
            let want = if outcome == Outcome::Ok { "10" } else { "15" };
            if !framework && out != want {
                return Err(format!("stdout {out:?}, want {want:?}"));
            }
        }
    }
    Ok(())
}

/// The judge verdict for one of the five programs (test-framework modes list theirs).
fn verdict_of(f: &Five, outcome: Outcome, compiled: bool) -> &'static str {
    if let Some(v) = f.verdicts {
        return v[outcome as usize];
    }
    match outcome {
        Outcome::Ok => "accepted",
        Outcome::Wrong => "wrong_answer",
        Outcome::Broken if compiled => "compile_error",
        Outcome::Broken | Outcome::Crash => "runtime_error",
        Outcome::Hang => "time_limit",
    }
}

async fn five(state: AppState, f: &'static Five) -> Vec<String> {
    let judge = state.judge.as_ref().unwrap();
    let spec = judge.languages().get(f.lang).unwrap();
    let (compiled, compile_in_run, framework) =
        (spec.is_compiled(), spec.compile_in_run, spec.framework);
    let cases = [
        (Outcome::Ok, f.ok),
        (Outcome::Wrong, f.wrong),
        (Outcome::Broken, f.broken),
        (Outcome::Crash, f.crash),
        (Outcome::Hang, f.hang),
    ];
    let mut failures = Vec::new();
    // /run_code: the whole program (framework modes: the program with its suite).
    for (outcome, code) in cases {
        let code = match f.suite {
            Some((pass, fail)) => {
                let suite = if outcome == Outcome::Wrong {
                    fail
                } else {
                    pass
                };
                let base = if outcome == Outcome::Wrong {
                    f.ok
                } else {
                    code
                };
                format!("{base}\n{suite}")
            }
            None => code.to_owned(),
        };
        let hang = outcome == Outcome::Hang;
        let body = json!({"code": code, "language": f.lang, "stdin": "5\n",
            "compile_timeout": 60, "run_timeout": if hang { 2 } else { 60 }});
        let (status, v) = call(state.clone(), route::RUN_CODE, &body).await;
        if status != StatusCode::OK {
            failures.push(format!(
                "{} {outcome:?} /run_code: HTTP {status}: {v}",
                f.lang
            ));
            continue;
        }
        if let Err(why) = check_run_code(&v, outcome, compiled, compile_in_run, framework) {
            failures.push(format!("{} {outcome:?} /run_code: {why}: {v}", f.lang));
        }
    }
    // /v1/code/judge: one batch; I/O tests, or the suite as the item's assert test.
    let items: Vec<Value> = cases
        .iter()
        .map(|(outcome, code)| {
            let hang = *outcome == Outcome::Hang;
            let tests = match f.suite {
                Some((pass, fail)) => {
                    let suite = if *outcome == Outcome::Wrong {
                        fail
                    } else {
                        pass
                    };
                    json!([{"assert_code": suite}])
                }
                None => json!([{"stdin": "5\n", "expected_stdout": "10\n"},
                               {"stdin": "7\n", "expected_stdout": "14\n"}]),
            };
            let code = if f.suite.is_some() && *outcome == Outcome::Wrong {
                f.ok
            } else {
                code
            };
            json!({"id": format!("{outcome:?}"), "language": f.lang, "source_code": code,
                   "tests": tests, "time_limit_s": if hang { 2 } else { 60 }, "backend": "ns"})
        })
        .collect();
    let (status, v) = call(state.clone(), route::CODE_JUDGE, &json!({"items": items})).await;
    if status != StatusCode::OK {
        failures.push(format!("{} judge: HTTP {status}: {v}", f.lang));
        return failures;
    }
    for ((outcome, _), r) in cases.iter().zip(v["results"].as_array().unwrap()) {
        let want = verdict_of(f, *outcome, compiled);
        if r["verdict"] != want {
            failures.push(format!(
                "{} {outcome:?} judge: verdict {}, want {want}: {r}",
                f.lang, r["verdict"]
            ));
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_outcomes_in_every_language() {
    let Some(state) = state() else { return };
    let _heavy = HEAVY.lock().await;
    let judge = state.judge.as_ref().unwrap();
    // Every offered language of the table has its five programs here.
    let covered: Vec<&str> = FIVE.iter().map(|f| f.lang).collect();
    for spec in judge.languages().all() {
        let offered = !matches!(
            spec.availability,
            verifier::judge::language::Availability::Unavailable(_)
        );
        assert!(
            !offered || covered.contains(&spec.name.as_str()),
            "{} has no five-outcome programs",
            spec.name
        );
    }
    // `LANGUAGES_ONLY=go,java` narrows the run while working on a language.
    let only = std::env::var("LANGUAGES_ONLY").ok();
    let mut jobs = Vec::new();
    for f in FIVE {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|l| l == f.lang))
        {
            continue;
        }
        if !ready(&state, f.lang) {
            continue;
        }
        jobs.push(five(state.clone(), f));
    }
    let failures = run_all(jobs).await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_code_working_directory_files_and_loopback() {
    let Some(state) = state() else { return };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // Files next to the program (relative paths), written and fetched back, from /box and
    // /mnt; a missing file and a symlink out of the box are not returned.
    let code = "import os\n\
        print(open('data/in.txt').read().strip(), os.getcwd())\n\
        open('out.txt', 'w').write('made here')\n\
        open('/mnt/b', 'w').write('sauce')\n\
        os.symlink('/etc/hostname', 'link')\n";
    let body = json!({"code": code, "language": "python",
        "files": {"data/in.txt": b64("hello"), "skipped.bin": null},
        "fetch_files": ["out.txt", "/mnt/b", "data/in.txt", "missing.txt", "link", "../x"]});
    let (status, v) = call(state.clone(), route::RUN_CODE, &body).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "Success", "{v}");
    assert_eq!(v["run_result"]["stdout"], "hello /box\n", "{v}");
    let files: BTreeMap<String, String> = serde_json::from_value(v["files"].clone()).unwrap();
    let text = |k: &str| {
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&files[k])
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(text("out.txt"), "made here");
    assert_eq!(text("/mnt/b"), "sauce");
    assert_eq!(text("data/in.txt"), "hello");
    assert_eq!(files.len(), 3, "{v}");
    // The symlink resolves inside the box (its /etc/hostname does not exist there).
    for k in ["missing.txt", "link", "../x"] {
        assert!(v["files_skipped"][k].is_string(), "{k}: {v}");
    }
    // Paths that leave the working directory are refused.
    let body = json!({"code": "print(1)", "language": "python", "files": {"../x": b64("x")}});
    let (status, v) = call(state.clone(), route::RUN_CODE, &body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["status"], "SandboxError", "{v}");
    // A server on the box's own loopback, reached from the same program; two boxes bind the
    // same port at once; the host's listener on that port is not reached.
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let server = format!(
        "import socket, threading\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port})); s.listen()\n\
         def serve():\n    c, _ = s.accept(); c.sendall(b'from the box'); c.close()\n\
         threading.Thread(target=serve, daemon=True).start()\n\
         import time; time.sleep(0.5)\n\
         print(socket.create_connection(('localhost', {port})).recv(100).decode())\n"
    );
    let body = json!({"code": server, "language": "python", "run_timeout": 20});
    let answers = futures_join(
        (0..2)
            .map(|_| {
                let (state, body) = (state.clone(), body.clone());
                async move { call(state, route::RUN_CODE, &body).await }
            })
            .collect(),
    )
    .await;
    for (status, v) in answers {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["status"], "Success", "{v}");
        assert_eq!(v["run_result"]["stdout"], "from the box\n", "{v}");
    }
    drop(host);
}
