//! The hostile suite per language family (compiled native, Node, JVM, Go, Mono, Ruby, Bash;
//! Python has its own suite in `sandbox_hostile.rs`): a fork bomb, a memory bomb, a network
//! attempt at a host listener, a read of a host canary file and an output flood, each in the
//! family's own idiom. Each gets its expected verdict; afterwards no process of the sandbox
//! uid, no cgroup of this process and no box mount is left, the canary never appears in a
//! result and the host listener was never reached.
//!
//! Probes are self-checking: a contained program prints `blocked`, which is its expected
//! output. Languages whose toolchain is not installed are skipped with a `SKIP:` line.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;

mod host_state;

use host_state::{cgroups_left, procs_of};
use protocol::{CodeItem, CodeVerdict};
use serde_json::json;
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};

/// Items judged at once.
const PARALLEL: usize = 3;

/// The five probes of a family; `{PORT}` and `{PATH}` are filled in.
struct Family {
    lang: &'static str,
    fork_bomb: &'static str,
    memory_bomb: &'static str,
    network: &'static str,
    host_file: &'static str,
    flood: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        lang: "c",
        fork_bomb: "#include <unistd.h>\nint main(void){ for (;;) fork(); }\n",
        memory_bomb: "#include <stdlib.h>\n#include <string.h>\nint main(void){ for (;;) { char *p = malloc(1 << 24); if (p) memset(p, 1, 1 << 24); } }\n",
        network: "#include <stdio.h>\n#include <string.h>\n#include <arpa/inet.h>\n#include <sys/socket.h>\nint main(void){ int s = socket(AF_INET, SOCK_STREAM, 0); struct sockaddr_in a; memset(&a, 0, sizeof a); a.sin_family = AF_INET; a.sin_port = htons({PORT}); a.sin_addr.s_addr = htonl(0x7f000001); puts(connect(s, (struct sockaddr *)&a, sizeof a) == 0 ? \"reached\" : \"blocked\"); return 0; }\n",
        host_file: "#include <stdio.h>\nint main(void){ FILE *f = fopen(\"{PATH}\", \"r\"); if (!f) { puts(\"blocked\"); return 0; } char b[64] = {0}; fread(b, 1, 63, f); puts(b); return 0; }\n",
        flood: "#include <stdio.h>\nint main(void){ for (;;) puts(\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"); }\n",
    },
    Family {
        lang: "nodejs",
        fork_bomb: "const { spawn } = require('child_process');\nfor (;;) { try { spawn('/bin/sleep', ['100']); } catch (e) {} }\n",
        memory_bomb: "const a = [];\nfor (;;) a.push(Buffer.alloc(1 << 24, 1));\n",
        network: "const s = require('net').connect({PORT}, '127.0.0.1');\ns.on('connect', () => { console.log('reached'); process.exit(0); });\ns.on('error', () => console.log('blocked'));\n",
        host_file: "try { console.log(require('fs').readFileSync('{PATH}', 'utf8')); } catch (e) { console.log('blocked'); }\n",
        flood: "const fs = require('fs');\nconst y = 'y'.repeat(65536);\nfor (;;) fs.writeSync(1, y);\n",
    },
    Family {
        lang: "java",
        fork_bomb: "public class Main { public static void main(String[] a) { while (true) { try { new ProcessBuilder(\"/bin/sleep\", \"100\").start(); } catch (Exception e) {} } } }\n",
        memory_bomb: "public class Main { public static void main(String[] a) { java.util.List<long[]> l = new java.util.ArrayList<>(); while (true) l.add(new long[1 << 22]); } }\n",
        network: "public class Main { public static void main(String[] a) { try { new java.net.Socket(\"127.0.0.1\", {PORT}); System.out.println(\"reached\"); } catch (Exception e) { System.out.println(\"blocked\"); } } }\n",
        host_file: "public class Main { public static void main(String[] a) { try { System.out.println(new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(\"{PATH}\")))); } catch (Exception e) { System.out.println(\"blocked\"); } } }\n",
        flood: "public class Main { public static void main(String[] a) { while (true) System.out.println(\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"); } }\n",
    },
    Family {
        lang: "go",
        fork_bomb: "package main\nimport \"os/exec\"\nfunc main() { for { exec.Command(\"/bin/sleep\", \"100\").Start() } }\n",
        memory_bomb: "package main\nvar keep [][]byte\nfunc main() { for { b := make([]byte, 1<<24); for i := range b { b[i] = 1 }; keep = append(keep, b) } }\n",
        network: "package main\nimport (\"fmt\"; \"net\")\nfunc main() { if _, err := net.Dial(\"tcp\", \"127.0.0.1:{PORT}\"); err != nil { fmt.Println(\"blocked\") } else { fmt.Println(\"reached\") } }\n",
        host_file: "package main\nimport (\"fmt\"; \"os\")\nfunc main() { if b, err := os.ReadFile(\"{PATH}\"); err != nil { fmt.Println(\"blocked\") } else { fmt.Println(string(b)) } }\n",
        flood: "package main\nimport \"fmt\"\nfunc main() { for { fmt.Println(\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\") } }\n",
    },
    Family {
        lang: "csharp",
        fork_bomb: "public class P { public static void Main() { while (true) { try { System.Diagnostics.Process.Start(\"/bin/sleep\", \"100\"); } catch (Exception) {} } } }\n",
        memory_bomb: "public class P { public static void Main() { var l = new List<byte[]>(); while (true) { var b = new byte[1 << 24]; for (int i = 0; i < b.Length; i += 4096) b[i] = 1; l.Add(b); } } }\n",
        // Mono's TcpClient(host, port) may swallow a refused connection: use a socket.
        network: "using System.Net; using System.Net.Sockets;\npublic class P { public static void Main() { try { var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp); s.Connect(IPAddress.Loopback, {PORT}); Console.WriteLine(s.Connected ? \"reached\" : \"blocked\"); } catch (Exception) { Console.WriteLine(\"blocked\"); } } }\n",
        host_file: "public class P { public static void Main() { try { Console.WriteLine(File.ReadAllText(\"{PATH}\")); } catch (Exception) { Console.WriteLine(\"blocked\"); } } }\n",
        flood: "public class P { public static void Main() { while (true) Console.WriteLine(\"yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\"); } }\n",
    },
    Family {
        lang: "ruby",
        fork_bomb: "loop { fork rescue nil }\n",
        memory_bomb: "a = []\nloop { a << ('y' * (1 << 24)) }\n",
        network: "require 'socket'\nbegin\n  TCPSocket.new('127.0.0.1', {PORT})\n  puts 'reached'\nrescue StandardError\n  puts 'blocked'\nend\n",
        host_file: "begin\n  puts File.read('{PATH}')\nrescue StandardError\n  puts 'blocked'\nend\n",
        flood: "loop { puts 'y' * 100 }\n",
    },
    Family {
        lang: "bash",
        fork_bomb: "f() { f | f; }\nf\n",
        memory_bomb: "a=y\nwhile :; do a=$a$a; done\n",
        network: "if (exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null; then echo reached; else echo blocked; fi\n",
        host_file: "cat '{PATH}' 2>/dev/null || echo blocked\n",
        flood: "yes\n",
    },
];

fn judge() -> Option<Judge> {
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    });
    match ns {
        Ok(ns) => Some(Judge::new(Ok(ns))),
        Err(e) => {
            eprintln!("SKIP: namespace backend unavailable here: {e}");
            None
        }
    }
}

#[test]
fn every_language_family_is_contained() {
    let Some(judge) = judge() else { return };
    let uid = judge.ns().unwrap().config().uid;
    let work = judge.ns().unwrap().config().work_dir.clone();
    let before = procs_of(uid).len();
    let canary_dir = std::env::temp_dir().join(format!("rlvr-canary-{}", std::process::id()));
    std::fs::create_dir_all(&canary_dir).unwrap();
    let canary = canary_dir.join("secret.txt");
    std::fs::write(&canary, "TOPSECRET-family-canary").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let path = canary.display().to_string();

    type Probe = (String, CodeItem, &'static [CodeVerdict]);
    let mut probes: Vec<Probe> = Vec::new();
    for f in FAMILIES {
        if let Err(why) = judge.languages().ready(f.lang) {
            eprintln!("SKIP: {}: {why}", f.lang);
            continue;
        }
        let cases: [(&str, &str, &str, &'static [CodeVerdict]); 5] = [
            (
                "fork-bomb",
                f.fork_bomb,
                "",
                &[
                    CodeVerdict::TimeLimit,
                    CodeVerdict::RuntimeError,
                    CodeVerdict::MemoryLimit,
                    CodeVerdict::WrongAnswer,
                ],
            ),
            (
                "memory-bomb",
                f.memory_bomb,
                "",
                // A starved box (this host is shared) may reach its time limit first.
                &[
                    CodeVerdict::MemoryLimit,
                    CodeVerdict::RuntimeError,
                    CodeVerdict::TimeLimit,
                ],
            ),
            ("network", f.network, "blocked\n", &[CodeVerdict::Accepted]),
            (
                "host-file",
                f.host_file,
                "blocked\n",
                &[CodeVerdict::Accepted],
            ),
            ("output-flood", f.flood, "", &[CodeVerdict::OutputLimit]),
        ];
        for (name, code, expected, verdicts) in cases {
            let code = code.replace("{PORT}", &port).replace("{PATH}", &path);
            let item: CodeItem = serde_json::from_value(json!({
                "id": format!("{}-{name}", f.lang), "language": f.lang, "source_code": code,
                "tests": [{"stdin": "", "expected_stdout": expected}],
                "time_limit_s": 10, "memory_limit_mb": 256, "backend": "ns",
            }))
            .unwrap();
            probes.push((format!("{} {name}", f.lang), item, verdicts));
        }
    }
    let results: Vec<(String, protocol::CodeResult, &'static [CodeVerdict])> =
        std::thread::scope(|s| {
            let mut out = Vec::new();
            for chunk in probes.chunks(PARALLEL) {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(name, item, want)| {
                        let judge = &judge;
                        s.spawn(move || (name.clone(), judge.judge(item), *want))
                    })
                    .collect();
                out.extend(handles.into_iter().map(|h| h.join().unwrap()));
            }
            out
        });
    let mut failures = Vec::new();
    for (name, r, want) in &results {
        if !want.contains(&r.verdict) {
            failures.push(format!(
                "{name}: {:?}, want one of {want:?}: {r:?}",
                r.verdict
            ));
        }
        if serde_json::to_string(r).unwrap().contains("TOPSECRET") {
            failures.push(format!("{name}: the canary leaked: {r:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut buf = [0u8; 1];
    assert!(
        listener
            .accept()
            .map(|(mut c, _)| c.read(&mut buf))
            .is_err(),
        "a box reached the host listener"
    );
    drop(judge);
    let left = procs_of(uid);
    assert!(left.len() <= before, "processes survived: {left:?}");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !cgroups_left().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        cgroups_left().is_empty(),
        "cgroups left: {:?}",
        cgroups_left()
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&work.display().to_string()),
        "a box mount leaked into the host namespace"
    );
    println!(
        "{} hostile probes in {} families contained",
        results.len(),
        results.len() / 5
    );
    std::fs::remove_dir_all(&canary_dir).unwrap();
}
