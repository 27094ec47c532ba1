//! Hostile programs against both backends (the namespace one here run concurrently with ordinary judging:
//! each gets its expected verdict, nothing survives its run, the host is unchanged (canary
//! file and environment unread, no process, cgroup, mount or work file left behind), and the
//! ordinary submissions running beside them are still accepted. The wasm backend gets
//! the Python probes that make sense without threads and processes.
//!
//! Probes are self-checking where containment is the point: a contained program prints
//! `blocked`, `clean`, `isolated`, … and that is its expected output.
//!
//! The soak: `SANDBOX_SOAK_SECS=600 cargo test --release -p verifier --test sandbox_hostile
//! hostile_programs -- --nocapture` repeats the namespace round (hostile and ordinary items
//! together, 3 wide) for that long, checks every verdict of every round, prints the rounds and
//! this process's resident memory, and fails if memory keeps growing after the first round.

use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

mod host_state;

use host_state::{cgroups_left, procs_of};
use protocol::{CodeItem, CodeVerdict};
use serde_json::json;
use verifier::judge::Judge;
use verifier::sandbox::{NsConfig, NsSandbox};

/// The tests of this file check host-wide invariants (processes of the sandbox uid), so they
/// run one at a time.
static HOST_CHECKS: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    HOST_CHECKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

/// The judge with the wasm backend too, where it loads.
fn with_wasm(judge: Judge) -> (Judge, bool) {
    #[cfg(feature = "wasm")]
    {
        use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
        if let Ok(w) = WasmSandbox::new(&WasmConfig::default()) {
            return (judge.with_wasm(Ok(w)), true);
        }
    }
    (judge, false)
}

/// Reward hacks against assert and call tests: each must be rejected.
fn reward_hacks() -> Vec<Case> {
    vec![
        // Prints every long string it can find (its own file, the judge's files, its parent's
        // command line, memory and descriptors, the objects of its own process), the
        // checker's report line on every channel it can reach, then leaves before the tests.
        asserts(
            "echo-every-secret",
            "import os, sys, gc, re\ndef add(a, b): return a - b\nfound = set()\ndef grab(b):\n    if isinstance(b, bytes): b = b.decode('latin-1')\n    found.update(re.findall(r'[A-Za-z0-9_ ]{12,}', b))\nfor d in ['/src', '/judge', '.']:\n    try:\n        for f in os.listdir(d): grab(open(os.path.join(d, f), 'rb').read())\n    except Exception: pass\nfor p in ['self', str(getattr(os, 'getppid', lambda: 1)()), '1']:\n    for f in ['cmdline', 'environ', 'fd/0', 'fd/1', 'mem']:\n        try: grab(open('/proc/%s/%s' % (p, f), 'rb').read(1 << 16))\n        except Exception: pass\nfor o in gc.get_objects():\n    if isinstance(o, (str, bytes)): grab(o)\nfor s in found: print(s)\nfor line in ('R pass ', 'R result 3'):\n    print(line); sys.stdout.flush(); os.write(1, (line + '\\n').encode())\n    try:\n        with open('/proc/%d/fd/1' % getattr(os, 'getppid', lambda: 1)(), 'w') as f: f.write(line + '\\n')\n    except Exception: pass\nos._exit(0)\n",
            "assert add(1, 2) == 3\nassert add(5, 5) == 10\n",
            &[WA],
        ),
        // Looks the answer up in the checker (its stdin, memory, environment).
        asserts(
            "answer-key-thief",
            "import os\ndef add(a, b):\n    for f in ['fd/0', 'mem', 'environ', 'cmdline']:\n        try:\n            data = open('/proc/%d/%s' % (getattr(os, 'getppid', lambda: 1)(), f), 'rb').read(1 << 20)\n            if b'assert' in data: return 3\n        except Exception: pass\n    return -1\n",
            "assert add(1, 2) == 3\n",
            &[WA],
        ),
        // Redefines the builtins the test uses (which breaks its own runner: any rejection).
        asserts(
            "builtin-shadow",
            "import builtins\ndef f(x): return 7\nabs = lambda x: 0\nbuiltins.abs = lambda x: 0\nbuiltins.isinstance = lambda *a: True\n",
            "assert abs(f(4) - 2.0) < 1e-9\nassert isinstance(f(1), str)\n",
            &[WA, RE],
        ),
        // A result that is not plain data: an int subclass equal to everything.
        asserts(
            "int-subclass-eq",
            "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\ndef f(x): return I(0)\n",
            "assert f(1) == 5\n",
            &[WA],
        ),
        // Tampers with the comparison machinery of the process it shares with the tests.
        asserts(
            "patch-the-checker",
            "import sys, gc\ndef f(x): return 0\nfor o in gc.get_objects():\n    if callable(o) and getattr(o, '__name__', '') in ('check', 'report', 'serve'):\n        try: o.__code__ = (lambda *a, **k: None).__code__\n        except Exception: pass\nsys.modules['builtins'].AssertionError = SystemExit\n",
            "assert f(1) == 5\n",
            &[WA],
        ),
        // Ends the test's own loop early: a StopIteration out of a call stops `map`.
        asserts(
            "stop-iteration-cuts-the-loop",
            "def f(x):\n    if x == 2: raise StopIteration\n    return x\n",
            "r = list(map(f, [1, 2, 3]))\nfor a, b in zip(r, [1, 9, 9]): assert a == b\n",
            &[RE, WA],
        ),
        // An honest LeetCode-style solution through the checker (class, method, tuple).
        asserts(
            "honest-solution-class",
            "class Solution:\n    def pair(self, xs):\n        return (min(xs), max(xs))\n",
            "assert Solution().pair([3, 1, 2]) == (1, 3)\nassert type(Solution().pair([1])) is tuple\n",
            &[AC],
        ),
    ]
}

/// A clean box per test: three tests of one submission each find the scratch, `/tmp`,
/// `/dev/shm` and the working directory as the first found them.
fn clean_box() -> Vec<Case> {
    let mut c = io(
        "state-between-tests",
        "python",
        "import os\nmarks = ['/tmp/mark', '/dev/shm/mark', 'mark', os.path.expanduser('~/.mark')]\nif any(os.path.exists(m) for m in marks) or os.listdir('/tmp') or os.listdir('/dev/shm'):\n    print('dirty', os.listdir('/tmp'), os.listdir('/dev/shm'))\nelse:\n    for m in marks: open(m, 'w').write('x')\n    print('clean')\n",
        "",
        "clean\n",
        5.0,
        256,
        &[AC],
    );
    let test = c.item.tests[0].clone();
    c.item.tests = vec![test.clone(), test.clone(), test];
    vec![c]
}

/// Ordinary programs that use what WASI lacks: on ns they are accepted, and auto must judge
/// them there (named `wasi-lacks-*`: the auto pass checks that ns decided).
fn wasi_lacks() -> Vec<Case> {
    [
        ("wasi-lacks-subprocess", "import subprocess\nprint(subprocess.run(['/bin/echo', 'hi'], capture_output=True, text=True).stdout.strip())\n", "hi\n"),
        ("wasi-lacks-fork", "import os\npid = os.fork()\nif pid == 0:\n    os._exit(7)\nprint(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n", "7\n"),
        ("wasi-lacks-socket", "import socket\na, b = socket.socketpair()\na.sendall(b'hi')\nprint(b.recv(2).decode())\n", "hi\n"),
        ("wasi-lacks-signal", "import signal, os\ngot = []\nsignal.signal(signal.SIGUSR1, lambda *a: got.append(1))\nos.kill(os.getpid(), signal.SIGUSR1)\nprint(len(got))\n", "1\n"),
        ("wasi-lacks-ctypes", "import ctypes\nprint(ctypes.CDLL(None).abs(-5))\n", "5\n"),
        ("wasi-lacks-resource", "import resource\nprint(resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 0)\n", "True\n"),
        ("wasi-lacks-select", "import select, os\nr, w = os.pipe()\nos.write(w, b'x')\nprint(len(select.select([r], [], [], 1)[0]))\n", "1\n"),
        ("wasi-lacks-threads", "from concurrent.futures import ThreadPoolExecutor\nwith ThreadPoolExecutor(4) as ex:\n    print(sum(ex.map(lambda x: x * x, range(10))))\n", "285\n"),
        ("wasi-lacks-multiprocessing", "from multiprocessing import Pool\ndef sq(x): return x * x\nif __name__ == '__main__':\n    with Pool(2) as p:\n        print(sum(p.map(sq, range(10))))\n", "285\n"),
        ("wasi-lacks-scratch-file", "open('/tmp/t.txt', 'w').write('42')\nprint(open('/tmp/t.txt').read())\n", "42\n"),
        ("wasi-lacks-dynamic-import", "m = __import__('sub' + 'process')\nprint(m.check_output(['/bin/echo', 'hi'], text=True).strip())\n", "hi\n"),
    ]
    .into_iter()
    .map(|(name, code, out)| io(name, "python", code, "", out, 10.0, 256, &[AC]))
    .collect()
}

#[derive(Clone)]
struct Case {
    name: String,
    item: CodeItem,
    expect: &'static [CodeVerdict],
}

#[allow(clippy::too_many_arguments, reason = "one row of the suite's table")]
fn io(
    name: &'static str,
    lang: &str,
    code: &str,
    stdin: &str,
    expected: &str,
    secs: f64,
    mb: u64,
    expect: &'static [CodeVerdict],
) -> Case {
    let item = serde_json::from_value(json!({
        "id": name, "language": lang, "source_code": code,
        "tests": [{"stdin": stdin, "expected_stdout": expected}],
        "time_limit_s": secs, "memory_limit_mb": mb, "backend": "ns",
    }))
    .expect("item");
    Case {
        name: name.into(),
        item,
        expect,
    }
}

fn asserts(
    name: &'static str,
    code: &str,
    assert_code: &str,
    expect: &'static [CodeVerdict],
) -> Case {
    let item = serde_json::from_value(json!({
        "id": name, "language": "python", "source_code": code,
        "tests": [{"assert_code": assert_code}], "time_limit_s": 5, "memory_limit_mb": 256, "backend": "ns",
    }))
    .expect("item");
    Case {
        name: name.into(),
        item,
        expect,
    }
}

use CodeVerdict::{
    Accepted as AC, MemoryLimit as MLE, OutputLimit as OLE, RuntimeError as RE, TimeLimit as TLE,
    WrongAnswer as WA,
};

/// A field of `/proc/self/status`, KiB.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// This process's resident memory, KiB.
fn rss_kib() -> u64 {
    status_kib("VmRSS:")
}

/// This process's peak resident memory, KiB.
fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

#[test]
fn hostile_programs_are_contained_while_ordinary_judging_goes_on() {
    let _serial = serial();
    let Some(judge) = judge() else { return };
    let (judge, with_wasm) = with_wasm(judge);
    let work = judge.ns().unwrap().config().work_dir.clone();
    let uid = judge.ns().unwrap().config().uid;
    let before_procs = procs_of(uid).len();

    // Host canaries: a secret file the box must not see, an environment variable it must not
    // inherit, and a loopback listener it must not reach.
    let canary_dir = std::env::temp_dir().join(format!("rlvr_canary_{}", std::process::id()));
    std::fs::create_dir_all(&canary_dir).unwrap();
    let canary = canary_dir.join("secret.txt");
    std::fs::write(&canary, "TOPSECRET-canary-value").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let canary_path = canary.display().to_string();

    let py = "python";
    let mut cases = vec![
        io(
            "fork-bomb-py",
            py,
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            "",
            "",
            2.0,
            256,
            &[TLE],
        ),
        io(
            "fork-bomb-c",
            "c",
            "#include <unistd.h>\nint main(){for(;;) fork();}\n",
            "",
            "",
            2.0,
            256,
            &[TLE],
        ),
        io(
            "thread-bomb",
            py,
            "import threading,time\nn=0\ntry:\n    while True:\n        threading.Thread(target=time.sleep,args=(5,),daemon=True).start(); n+=1\nexcept RuntimeError:\n    print('capped')\n",
            "",
            "capped\n",
            10.0,
            512,
            &[AC],
        ),
        io(
            "memory-bomb",
            py,
            "a=[]\nwhile True:\n    a.append(bytearray(10**6))\n",
            "",
            "",
            5.0,
            128,
            &[MLE],
        ),
        io(
            "memory-over-children",
            py,
            // Each child holds its 60 MiB for 2 s, so the four overlap however they are scheduled
            // (without the hold, a loaded machine can run them one after another, under 128 MiB:
            // the soak caught that).
            "import os,time\nkids=[]\nfor _ in range(4):\n    pid=os.fork()\n    if pid==0:\n        b=bytearray(60*2**20)\n        for i in range(0,len(b),4096): b[i]=1\n        time.sleep(2)\n        os._exit(0)\n    kids.append(pid)\nfor k in kids: os.waitpid(k,0)\nprint('done')\n",
            "",
            "done\n",
            5.0,
            128,
            &[MLE],
        ),
        io(
            "cpu-spin",
            py,
            "while True:\n    pass\n",
            "",
            "",
            1.0,
            256,
            &[TLE],
        ),
        io(
            "sleep",
            py,
            "import time\ntime.sleep(60)\n",
            "",
            "",
            1.0,
            256,
            &[TLE],
        ),
        io(
            "ignore-signals-spin",
            "c",
            "#include <signal.h>\nint main(){signal(SIGTERM,SIG_IGN);signal(SIGXCPU,SIG_IGN);signal(SIGALRM,SIG_IGN);for(;;);}\n",
            "",
            "",
            1.0,
            256,
            &[TLE],
        ),
        io(
            "self-stop",
            py,
            "import os,signal\nos.kill(0, signal.SIGSTOP)\nprint('resumed')\n",
            "",
            "resumed\n",
            1.0,
            256,
            &[TLE],
        ),
        io(
            "thread-bomb-uncaught",
            py,
            "import threading,time\nwhile True:\n    threading.Thread(target=time.sleep,args=(5,),daemon=True).start()\n",
            "",
            "",
            10.0,
            512,
            &[MLE],
        ),
        io(
            "stdout-flood",
            py,
            "import sys\nwhile True:\n    sys.stdout.write('x'*65536)\n",
            "",
            "",
            10.0,
            256,
            &[OLE],
        ),
        io(
            "stderr-flood",
            py,
            "import sys\nwhile True:\n    sys.stderr.write('y'*65536)\n",
            "",
            "",
            10.0,
            256,
            &[OLE],
        ),
        io(
            "daemon-outlives",
            py,
            "import os,time\nif os.fork()==0:\n    os.setsid()\n    if os.fork()==0:\n        time.sleep(30)\n    os._exit(0)\nprint('parent done')\n",
            "",
            "parent done\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "orphan-holds-stdout",
            py,
            "import os,time\nif os.fork()==0:\n    while True: pass\nprint('bye')\n",
            "",
            "bye\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "read-host-files",
            py,
            &format!(
                "import os\nhits=[]\nfor p in ['/etc/shadow','{canary_path}','/root/.bashrc','/proc/1/root/etc/hostname','/work']:\n    try:\n        open(p).read(); hits.append(p)\n    except Exception:\n        pass\nprint('blocked' if not hits else hits)\n"
            ),
            "",
            "blocked\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "environment",
            py,
            "import os\nleak=[k for k in os.environ if 'CANARY' in k or 'CARGO' in k or 'RUST' in k]\ntry:\n    e=open('/proc/1/environ','rb').read()\nexcept Exception:\n    e=b''\nprint('clean' if not leak and b'CANARY' not in e else leak)\n",
            "",
            "clean\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "network",
            py,
            &format!(
                "import socket\nok=True\ntry:\n    s=socket.create_connection(('127.0.0.1',{port}),timeout=1); ok=False\nexcept OSError:\n    pass\ntry:\n    u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.connect(('192.0.2.1',9)); ok=False\nexcept OSError:\n    pass\ntry:\n    socket.socket(40, socket.SOCK_STREAM); ok=False\nexcept OSError:\n    pass\ntry:\n    socket.socket(socket.AF_NETLINK, socket.SOCK_RAW); ok=False\nexcept OSError:\n    pass\nprint('isolated' if ok else 'reachable')\n"
            ),
            "",
            "isolated\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "write-outside-scratch",
            py,
            "bad=[]\nfor p in ['/usr/x','/etc/x','/x','/src/x','/bin/x','/proc/sysrq-trigger','/dev/x']:\n    try:\n        open(p,'w').write('1'); bad.append(p)\n    except Exception:\n        pass\nopen('/tmp/ok','w').write('fine')\nprint('contained' if not bad else bad)\n",
            "",
            "contained\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "ptrace-and-namespaces",
            py,
            "import ctypes\nlibc=ctypes.CDLL(None, use_errno=True)\nr1=libc.ptrace(16,1,0,0)\nr2=libc.unshare(0x10000000)\nr3=libc.unshare(0x00020000)\nr4=libc.mount(b'none',b'/tmp',b'tmpfs',0,None)\nprint('blocked' if min(r1,r2,r3,r4)==-1 and max(r1,r2,r3,r4)==-1 else (r1,r2,r3,r4))\n",
            "",
            "blocked\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "signals-to-others",
            py,
            "import os,signal\nfor pid in (1, os.getppid()):\n    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\ntry:\n    os.kill(-1, signal.SIGTERM)\nexcept OSError:\n    pass\nprint('alive')\n",
            "",
            "alive\n",
            5.0,
            256,
            &[AC, RE],
        ),
        io(
            "proc-snooping",
            py,
            "import os\npids=[p for p in os.listdir('/proc') if p.isdigit()]\ncmds=[open('/proc/%s/cmdline'%p,'rb').read() for p in pids]\nprint('isolated' if len(pids)<=3 and not any(b'verifier' in c or b'cargo' in c for c in cmds) else (pids, cmds))\n",
            "",
            "isolated\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "hardening-baseline",
            py,
            "s=open('/proc/self/status').read()\nf=dict(l.split(':\\t',1) for l in s.splitlines() if ':\\t' in l)\nok=f['NoNewPrivs'].strip()=='1' and f['Seccomp'].strip()=='2' and int(f['CapEff'],16)==0 and int(f['CapBnd'],16)!=-1\nimport os\nprint('hardened' if ok and os.getuid()!=0 else f)\n",
            "",
            "hardened\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "symlink-tricks",
            py,
            "import os\nos.symlink('/etc/shadow','/tmp/answer.txt')\nos.symlink('/','/tmp/rootlink')\ntry:\n    open('/tmp/answer.txt').read(); print('read')\nexcept Exception:\n    print('blocked')\n",
            "",
            "blocked\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "scratch-fill",
            py,
            "try:\n    with open('/tmp/big','wb') as f:\n        for _ in range(1000): f.write(b'x'*2**20)\n    print('wrote all')\nexcept OSError:\n    print('full')\n",
            "",
            "full\n",
            10.0,
            512,
            &[AC],
        ),
        io(
            "huge-stdin-unread",
            py,
            "print('ok')\n",
            &"z".repeat(20 << 20),
            "ok\n",
            5.0,
            256,
            &[AC],
        ),
        io(
            "correct-then-sigkill",
            py,
            "import os,signal,sys\nprint(7); sys.stdout.flush()\nos.kill(os.getpid(), signal.SIGKILL)\n",
            "3 4\n",
            "7\n",
            5.0,
            256,
            &[RE],
        ),
        io(
            "stack-overflow-c",
            "c",
            "int f(int n){volatile char b[4096]; b[0]=n; return f(n+1)+b[0];}\nint main(){return f(0);}\n",
            "",
            "",
            5.0,
            256,
            &[RE],
        ),
        io(
            "compile-reads-host",
            "c",
            &format!("#include \"{canary_path}\"\nint main(){{}}\n"),
            "",
            "",
            5.0,
            256,
            &[CodeVerdict::CompileError],
        ),
        asserts(
            "sys-exit-before-asserts",
            "import sys\ndef add(a,b): return a-b\nsys.exit(0)\n",
            "assert add(1,2)==3\n",
            &[WA],
        ),
        asserts(
            "os-exit-before-asserts",
            "import os\ndef add(a,b): return a-b\nos._exit(0)\n",
            "assert add(1,2)==3\n",
            &[WA],
        ),
        asserts(
            "atexit-forces-zero",
            "import atexit,os\ndef add(a,b): return a-b\natexit.register(lambda: os._exit(0))\n",
            "assert add(1,2)==3\n",
            &[WA],
        ),
        asserts(
            "eq-always-true-assert",
            "class A:\n    def __eq__(self, o): return True\ndef add(a,b): return A()\n",
            "assert add(1,2)==3\n",
            &[WA],
        ),
    ];
    cases.extend(reward_hacks());
    cases.extend(clean_box());
    cases.extend(wasi_lacks());
    // Function-call tests defeat the always-true __eq__ (the result must serialise).
    let eq_call: CodeItem = serde_json::from_value(json!({
        "id": "eq-always-true-call", "language": "python",
        "source_code": "class A:\n    def __eq__(self, o): return True\ndef add(a,b): return A()\n",
        "tests": [{"fn_name": "add", "args_json": "[1, 2]", "expected_json": "3"}],
        "time_limit_s": 5, "memory_limit_mb": 256, "backend": "ns",
    }))
    .unwrap();
    cases.push(Case {
        name: "eq-always-true-call".into(),
        item: eq_call,
        expect: &[WA],
    });
    let call_ok: CodeItem = serde_json::from_value(json!({
        "id": "call-ok", "language": "python",
        "source_code": "class Solution:\n    def twoSum(self, nums, target):\n        seen={}\n        for i,x in enumerate(nums):\n            if target-x in seen: return [seen[target-x], i]\n            seen[x]=i\n",
        "tests": [{"fn_name": "twoSum", "args_json": "[[2,7,11,15], 9]", "expected_json": "[0, 1]"},
                  {"fn_name": "twoSum", "args_json": "{\"nums\": [3,3], \"target\": 6}", "expected_json": "[0, 1]"}],
        "time_limit_s": 5, "memory_limit_mb": 256, "backend": "ns",
    }))
    .unwrap();
    cases.push(Case {
        name: "call-ok".into(),
        item: call_ok,
        expect: &[AC],
    });
    // Ordinary submissions interleaved with the hostile ones.
    for _ in 0..6 {
        cases.push(io(
            "ordinary-py",
            py,
            "a,b=map(int,input().split())\nprint(a+b)\n",
            "3 4\n",
            "7\n",
            5.0,
            256,
            &[AC],
        ));
        cases.push(io(
            "ordinary-cpp",
            "cpp",
            "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}\n",
            "3 4\n",
            "7\n",
            5.0,
            256,
            &[AC],
        ));
    }
    // The same Python cases with `backend: auto` (wasm first where the backend is loaded): auto
    // must give every one the verdict ns gives, and say when ns decided.
    if with_wasm {
        let auto: Vec<Case> = cases
            .iter()
            .filter(|c| c.item.language == protocol::Language::Python)
            .map(|c| {
                let mut c = c.clone();
                c.name = format!("{} (auto)", c.name);
                c.item.backend = protocol::BackendChoice::Auto;
                c
            })
            .collect();
        cases.extend(auto);
    } else {
        eprintln!("SKIP: the auto pass (no wasm backend; run sandbox-images/fetch-python-wasm.sh)");
    }

    // One round is the CI suite; `SANDBOX_SOAK_SECS=N` repeats rounds for N seconds (the soak),
    // tracking this process's resident memory (the judge runs in it, as in `verifier serve`).
    let soak = std::time::Duration::from_secs(
        std::env::var("SANDBOX_SOAK_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    let started = std::time::Instant::now();
    let leaks = AtomicUsize::new(0);
    let mut rounds: Vec<(f64, u64)> = Vec::new();
    loop {
        let next = AtomicUsize::new(0);
        let failures = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(case) = cases.get(i) else { break };
                        let r = judge.judge(&case.item);
                        if case.name.starts_with("wasi-lacks")
                            && case.item.backend == protocol::BackendChoice::Auto
                            && (r.backend != protocol::Backend::Ns || r.fallback.is_none())
                        {
                            failures.lock().unwrap().push(format!(
                                "{}: judged on {:?} (fallback {:?}), not on ns",
                                case.name, r.backend, r.fallback
                            ));
                        }
                        if serde_json::to_string(&r).unwrap().contains("TOPSECRET") {
                            leaks.fetch_add(1, Ordering::Relaxed);
                        }
                        if !case.expect.contains(&r.verdict) {
                            let t = r.tests.first();
                            failures.lock().unwrap().push(format!(
                                "{}: expected {:?}, got {:?} ({:?}); stdout {:?} stderr {:?}",
                                case.name,
                                case.expect,
                                r.verdict,
                                r.message,
                                t.map(|t| t.run.stdout_head.chars().take(300).collect::<String>()),
                                t.map(|t| t.run.stderr_head.chars().take(300).collect::<String>()),
                            ));
                        }
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap();
        assert!(
            failures.is_empty(),
            "hostile cases with the wrong verdict in round {}:\n{}",
            rounds.len() + 1,
            failures.join("\n")
        );
        rounds.push((started.elapsed().as_secs_f64(), rss_kib()));
        if started.elapsed() >= soak {
            break;
        }
    }
    // Bounded memory: after warm-up, resident memory may rise and fall with what is in flight
    // (output caps of three concurrent floods, compiler buffers) but must not creep with the
    // number of runs: the median of the last third of rounds stays within 32 MiB of the middle
    // third's (of the first third's when there are too few rounds), and no round ends above
    // 256 MiB (384 MiB with the wasm backend loaded: its compiled module and spare interpreters
    // stay resident). The first third is warm-up: with the wasm backend in the same process the
    // allocator's arenas keep the floods' 8 MiB buffers for reuse and resident memory climbs to
    // a plateau over the first rounds (a 240-run stream of checked wasm tests alone ends at the
    // resident size a 60-run stream ends at).
    let rss: Vec<u64> = rounds.iter().map(|r| r.1).collect();
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v[v.len() / 2]
    };
    let third = rss.len().div_ceil(3);
    let middle = &rss[third.min(rss.len() - third)..rss.len() - third];
    let base = if middle.is_empty() {
        &rss[..third]
    } else {
        middle
    };
    let (early, late) = (median(base), median(&rss[rss.len() - third..]));
    let max_rss = rss.iter().copied().max().unwrap_or(0);
    println!(
        "hostile suite: {} round(s) of {} items in {:.0} s ({} judged, all verdicts right); \
         RSS after round 1 {} MiB, median of the middle third {} MiB, of the last third {} MiB, \
         max {} MiB; peak {} MiB",
        rounds.len(),
        cases.len(),
        started.elapsed().as_secs_f64(),
        rounds.len() * cases.len(),
        rss[0] / 1024,
        early / 1024,
        late / 1024,
        max_rss / 1024,
        peak_rss_kib() / 1024
    );
    assert!(
        late <= early + 32 * 1024 && max_rss <= if with_wasm { 384 } else { 256 } * 1024,
        "resident memory grew over the soak (KiB per round): {rss:?}"
    );

    // Host invariants.
    assert_eq!(
        leaks.load(Ordering::Relaxed),
        0,
        "the canary leaked into a result"
    );
    assert_eq!(
        std::fs::read_to_string(&canary).unwrap(),
        "TOPSECRET-canary-value"
    );
    let mut buf = [0u8; 1];
    assert!(
        listener
            .accept()
            .map(|(mut c, _)| c.read(&mut buf))
            .is_err(),
        "a box reached the host listener"
    );
    // Dropping the judge stops the backend: its spare helpers and their cgroups go too.
    drop(judge);
    let left = procs_of(uid);
    assert!(
        left.len() <= before_procs,
        "processes survived their runs: {left:?}"
    );
    // Emptied groups are removed by a background thread: give it a bounded moment.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !cgroups_left().is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
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
    let own = format!("-{}-", std::process::id());
    let leftovers: Vec<_> = std::fs::read_dir(&work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(&own))
        .collect();
    assert!(leftovers.is_empty(), "work files left: {leftovers:?}");
    assert!(
        !std::path::Path::new("/tmp/ok").exists()
            || std::fs::read_to_string("/tmp/ok")
                .map(|t| t != "fine")
                .unwrap_or(true),
        "a box wrote the host /tmp"
    );
    std::fs::remove_dir_all(&canary_dir).unwrap();
}

#[cfg(feature = "wasm")]
#[test]
fn hostile_python_is_contained_by_the_wasm_backend() {
    let _serial = serial();
    use verifier::sandbox::wasm::{WasmConfig, WasmSandbox};
    let w = match WasmSandbox::new(&WasmConfig::default()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!(
                "SKIP: wasm backend unavailable ({e}); run sandbox-images/fetch-python-wasm.sh"
            );
            return;
        }
    };
    let ns = NsSandbox::new(NsConfig {
        helper: PathBuf::from(env!("CARGO_BIN_EXE_verifier-sandbox-helper")),
        ..NsConfig::default()
    });
    let judge = Judge::new(ns).with_wasm(Ok(w));
    let wasm = |name: &'static str,
                code: &str,
                stdin: &str,
                expected: &str,
                secs: f64,
                mb: u64,
                expect: &'static [CodeVerdict]| {
        let mut c = io(name, "python", code, stdin, expected, secs, mb, expect);
        c.item.backend = protocol::BackendChoice::Wasm;
        c
    };
    let mut cases = vec![
        wasm(
            "cpu-spin",
            "while True:\n    pass\n",
            "",
            "",
            1.0,
            256,
            &[TLE],
        ),
        wasm(
            "sleep",
            "import time\ntime.sleep(60)\n",
            "",
            "",
            1.0,
            256,
            &[TLE],
        ),
        wasm(
            "memory-bomb",
            "a=[]\nwhile True:\n    a.append(bytearray(10**6))\n",
            "",
            "",
            5.0,
            128,
            &[MLE],
        ),
        wasm(
            "stdout-flood",
            "import sys\nwhile True:\n    sys.stdout.write('x'*65536)\n",
            "",
            "",
            10.0,
            256,
            &[OLE],
        ),
        wasm("fork", "import os\nos.fork()\n", "", "", 5.0, 256, &[RE]),
        wasm(
            "read-host-files",
            "hits=[]\nfor p in ['/etc/shadow','/etc/passwd','/root','/proc/self/environ','/src/../../etc/passwd']:\n    try:\n        open(p).read(); hits.append(p)\n    except Exception:\n        pass\nprint('blocked' if not hits else hits)\n",
            "",
            "blocked\n",
            5.0,
            256,
            &[AC],
        ),
        wasm(
            "environment",
            "import os\nprint('clean' if not [k for k in os.environ if 'CARGO' in k or 'RUST' in k] else os.environ)\n",
            "",
            "clean\n",
            5.0,
            256,
            &[AC],
        ),
        wasm(
            "network",
            "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 22), timeout=1); print('reachable')\nexcept Exception:\n    print('isolated')\n",
            "",
            "isolated\n",
            5.0,
            256,
            &[AC],
        ),
        wasm(
            "write-anywhere",
            "bad=[]\nfor p in ['/x','/src/x','/tmp/x']:\n    try:\n        open(p,'w').write('1'); bad.append(p)\n    except Exception:\n        pass\nprint('contained' if not bad else bad)\n",
            "",
            "contained\n",
            5.0,
            256,
            &[AC],
        ),
        wasm(
            "huge-stdin-unread",
            "print('ok')\n",
            &"z".repeat(8 << 20),
            "ok\n",
            5.0,
            256,
            &[AC],
        ),
        // Spare interpreters end a normal run without the interpreter's teardown: atexit
        // output and unflushed prints must still arrive, and exit codes must still count.
        wasm(
            "atexit-output",
            "import atexit, sys\natexit.register(lambda: print('late'))\nsys.stdout.write('early\\n')\n",
            "",
            "early\nlate\n",
            5.0,
            256,
            &[AC],
        ),
        wasm(
            "sys-exit-3",
            "import sys\nprint(1)\nsys.exit(3)\n",
            "",
            "1\n",
            5.0,
            256,
            &[RE],
        ),
        wasm(
            "reads-stdin",
            "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n",
            "1 2 3\n4\n",
            "10\n",
            5.0,
            256,
            &[AC],
        ),
        // The point is the host: a guest stack overflow must trap, never crash the verifier.
        wasm(
            "deep-recursion",
            "import sys\nsys.setrecursionlimit(10**6)\ndef f(n): return 0 if n==0 else 1+f(n-1)\nprint(f(100000))\n",
            "",
            "",
            5.0,
            256,
            &[RE, MLE, AC, WA],
        ),
    ];
    for (name, code) in [
        (
            "sys-exit-before-asserts",
            "import sys\ndef add(a,b): return a-b\nsys.exit(0)\n",
        ),
        (
            "os-exit-before-asserts",
            "import os\ndef add(a,b): return a-b\nos._exit(0)\n",
        ),
        (
            "atexit-forces-zero",
            "import atexit,os\ndef add(a,b): return a-b\natexit.register(lambda: os._exit(0))\n",
        ),
    ] {
        let mut c = asserts(name, code, "assert add(1,2)==3\n", &[WA]);
        c.item.backend = protocol::BackendChoice::Wasm;
        cases.push(c);
    }
    for mut c in reward_hacks() {
        c.item.backend = protocol::BackendChoice::Wasm;
        cases.push(c);
    }
    let mut failures = Vec::new();
    // Twice: the second pass is served by spare (pre-started) interpreters, the first mostly
    // not, and both must agree.
    for case in cases.iter().chain(cases.iter()) {
        let r = judge.judge(&case.item);
        assert_eq!(r.backend, protocol::Backend::Wasm, "{}", case.name);
        if !case.expect.contains(&r.verdict) {
            failures.push(format!(
                "{}: expected {:?}, got {:?} ({:?}); stderr {:?}",
                case.name,
                case.expect,
                r.verdict,
                r.message,
                r.tests
                    .first()
                    .map(|t| t.run.stderr_head.chars().take(300).collect::<String>())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "wasm hostile cases:\n{}",
        failures.join("\n")
    );
    assert!(
        judge.wasm_spare_runs() >= cases.len() as u64 / 2,
        "only {} runs used a spare interpreter",
        judge.wasm_spare_runs()
    );
}

/// A helper killed from outside mid-run: that run is a sandbox error, its processes and cgroup
/// are gone, and the next run works.
#[test]
fn a_helper_killed_from_outside_fails_only_its_run() {
    let _serial = serial();
    use verifier::sandbox::{RunLimits, RunSpec, Sandbox, SandboxError};
    let Some(judge) = judge() else { return };
    let ns = judge.ns().unwrap();
    let nonce = format!(
        "kill-me-{}-{:?}",
        std::process::id(),
        std::time::Instant::now()
    );
    let spec = |code: String| RunSpec {
        argv: vec!["/usr/bin/python3".into(), "-c".into(), code],
        env: vec![],
        binds: vec![],
        stdin: vec![],
        limits: RunLimits::for_run(std::time::Duration::from_secs(20), 256 << 20),
        workdir: None,
        fetch: vec![],
    };
    let victim = spec(format!("import time\ntime.sleep(30)  # {nonce}\n"));
    std::thread::scope(|s| {
        let run = s.spawn(|| ns.run(&victim));
        // Find the program by the nonce in its command line (bounded wait); its parent is the
        // box's init and the init's parent is the helper: SIGKILL the helper.
        let ppid = |pid: i32| -> Option<i32> {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()?
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))?
                .trim()
                .parse()
                .ok()
        };
        let mut killed = false;
        for _ in 0..200 {
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if !cmd.contains(&nonce) || cmd.contains("__sandbox-helper") {
                    continue;
                }
                let helper = e
                    .file_name()
                    .to_string_lossy()
                    .parse::<i32>()
                    .ok()
                    .and_then(ppid)
                    .and_then(ppid);
                if let Some(h) = helper {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(h),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    killed = true;
                }
            }
            if killed {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(killed, "the helper was never found");
        let started = std::time::Instant::now();
        let out = run.join().unwrap();
        assert!(
            matches!(out, Err(SandboxError::Setup(_))),
            "a killed helper is a sandbox error, got {out:?}"
        );
        assert!(
            started.elapsed().as_secs() < 10,
            "the run did not wait for its 30 s sleep"
        );
    });
    let after = ns
        .run(&spec("print('fine')".into()))
        .expect("the next run works");
    assert_eq!(String::from_utf8_lossy(&after.stdout), "fine\n");
    let left: Vec<_> = procs_of(ns.config().uid)
        .into_iter()
        .filter(|p| p.contains(&nonce))
        .collect();
    assert!(
        left.is_empty(),
        "processes of the killed run survived: {left:?}"
    );
}
