//! The GDB stub driven by Debian's `gdb-multiarch` in batch mode, on every engine: break at a
//! symbol of a small ROM, step, read a CSR and FP registers, write a register, stop on a
//! hardware watchpoint, continue to the program's exit.
//!
//! Needs `gdb-multiarch` and `riscv64-unknown-elf-gcc` (Debian packages gdb-multiarch and
//! gcc-riscv64-unknown-elf). Without them the test is skipped with a message, except in CI
//! (`CI` set), where it fails.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ROM: sets up FP state, passes `checkpoint`, then exits through HTIF (tohost = 1).
const ROM: &str = r#"
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        li t0, 0x6000              # mstatus.FS = Dirty
        csrs mstatus, t0
        li t1, 0x4004000000000000  # 2.5
        fmv.d.x fa0, t1
        csrwi frm, 2               # round down
        li a1, 7
        .globl checkpoint
checkpoint:
        addi a1, a1, 1
        addi a1, a1, 1
        la t4, counter
        sd a1, 0(t4)
        ld t5, 0(t4)
        li t2, 1
        la t3, tohost
        sd t2, 0(t3)
1:      j 1b

        .section .tohost, "aw", @progbits
        .align 6
        .globl tohost
tohost: .dword 0
        .align 6
        .globl fromhost
fromhost: .dword 0

        .data
        .align 3
        .globl counter
counter: .dword 0
"#;

const SCRIPT: &str = r#"set pagination off
set confirm off
target remote 127.0.0.1:PORT
break *checkpoint
continue
info registers pc
stepi
info registers pc
p $a1
set $a1 = 0x1234
p/x $a1
p $fa0.double
p/x $frm
p/x $mstatus
watch *(long *)&counter
continue
delete
rwatch *(long *)&counter
continue
continue
"#;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Skip (or fail in CI) when a tool is missing.
fn require(tool: &str, package: &str) -> bool {
    if have(tool) {
        return true;
    }
    let msg = format!("{tool} is not installed (apt-get install {package})");
    assert!(std::env::var_os("CI").is_none(), "{msg}");
    eprintln!("skipped: {msg}");
    false
}

fn build_rom(dir: &Path) -> PathBuf {
    assemble(dir, "gdb_rom", ROM)
}

/// Assemble and link `source` with the test ROMs' linker script into `dir/<stem>.elf`.
fn assemble(dir: &Path, stem: &str, source: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let src = dir.join(format!("{stem}.S"));
    let elf = dir.join(format!("{stem}.elf"));
    std::fs::write(&src, source).unwrap();
    let o = Command::new("riscv64-unknown-elf-gcc")
        .args([
            "-march=rv64gc",
            "-mabi=lp64d",
            "-nostdlib",
            "-nostartfiles",
            "-static",
            "-T",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64/link.ld"))
        .arg("-o")
        .arg(&elf)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    elf
}

/// emu running `elf` on a two-hart `virt` board, stopped at reset (`-S`) with its GDB stub on
/// the returned port, once the stub listens.
fn start_two_harts_stopped(elf: &Path) -> (Reaped, u16) {
    let port = free_port();
    let mut emu = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "-M", "virt", "-bios", "none", "-smp", "2", "-serial", "null", "-S", "-gdb",
        ])
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Reaped)
        .unwrap();
    let start = Instant::now();
    while !listening(port) {
        if let Ok(Some(s)) = emu.0.try_wait() {
            panic!("emu exited with {s} before listening");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "emu never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    (emu, port)
}

/// Whether a socket listens on 127.0.0.1:`port` (Linux: /proc/net/tcp, state 0A = LISTEN).
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let local = format!("0100007F:{port:04X}");
    table.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A")
    })
}

/// A free TCP port on the loopback interface.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn session(elf: &Path, engine: &str) -> (String, String, Option<i32>) {
    let port = free_port();
    let mut emu = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(["--engine", engine, "-S", "-gdb"])
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let script = elf.with_extension(format!("{engine}.gdb"));
    std::fs::write(&script, SCRIPT.replace("PORT", &port.to_string())).unwrap();
    // emu listens before it runs; wait for the socket (a probe connection would be taken
    // for GDB itself).
    let start = Instant::now();
    while !listening(port) {
        if let Ok(Some(s)) = emu.try_wait() {
            panic!("emu exited with {s} before listening");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "emu never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = run_gdb(&script, elf);
    let status = wait_exit(&mut emu);
    let mut err = String::new();
    if let Some(mut e) = emu.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (out, err, status)
}

/// `gdb-multiarch -batch -nx -x SCRIPT ELF`: its standard output, then its standard error.
fn run_gdb(script: &Path, elf: &Path) -> String {
    let gdb = Command::new("gdb-multiarch")
        .args(["-batch", "-nx", "-x"])
        .arg(script)
        .arg(elf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&gdb.stdout).into_owned() + &String::from_utf8_lossy(&gdb.stderr)
}

/// Wait up to 30 s for `emu` to exit (then kill it): its exit code, `None` if killed.
fn wait_exit(emu: &mut Child) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(s) = emu.try_wait().unwrap() {
            return s.code();
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = emu.kill();
            let _ = emu.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn gdb_multiarch_session_on_every_engine() {
    if !require("gdb-multiarch", "gdb-multiarch")
        || !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb");
    let elf = build_rom(&dir);
    for engine in ["interp", "jit", "tiered"] {
        let (out, err, status) = session(&elf, engine);
        let ctx = format!("engine {engine}\n--- gdb ---\n{out}\n--- emu ---\n{err}");
        assert!(
            !out.contains("rejected target-supplied description"),
            "{ctx}"
        );
        assert!(out.contains("Breakpoint 1, 0x"), "{ctx}");
        assert!(out.contains("in checkpoint ()"), "{ctx}");
        // The breakpoint, then one step (a 4-byte addi).
        let pcs: Vec<&str> = out.lines().filter(|l| l.starts_with("pc ")).collect();
        assert_eq!(pcs.len(), 2, "{ctx}");
        assert!(pcs[0].contains("<checkpoint>"), "{ctx}");
        assert!(pcs[1].contains("<checkpoint+2>"), "one c.addi: {ctx}");
        assert!(out.contains("$1 = 8"), "one addi retired: {ctx}");
        // a1 = 0x1234 + 1 is stored to counter.
        assert!(out.contains("$2 = 0x1234"), "{ctx}");
        assert!(out.contains("$3 = 2.5"), "{ctx}");
        assert!(out.contains("$4 = 0x2"), "{ctx}");
        // mstatus.FS = Dirty (bits 14:13) and SD.
        let mstatus = out
            .lines()
            .find_map(|l| l.strip_prefix("$5 = 0x"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
        assert!(
            mstatus.is_some_and(|m| m & 0x6000 == 0x6000 && m >> 63 == 1),
            "{ctx}"
        );
        assert!(
            out.contains("Hardware watchpoint 2: *(long *)&counter"),
            "{ctx}"
        );
        assert!(out.contains("Old value = 0"), "{ctx}");
        assert!(out.contains("New value = 4661"), "{ctx}");
        assert!(
            out.contains("Hardware read watchpoint 3: *(long *)&counter"),
            "{ctx}"
        );
        assert!(out.contains("Value = 4661"), "{ctx}");
        assert!(out.contains("exited normally"), "{ctx}");
        assert_eq!(status, Some(0), "{ctx}");
    }
}

#[test]
fn bad_gdb_options_are_errors() {
    if !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf") {
        return;
    }
    let elf = build_rom(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb-bad"));
    let emu = env!("CARGO_BIN_EXE_emu");
    let run = |args: &[&str]| {
        let o = Command::new(emu).args(args).arg(&elf).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["-gdb", "tcp::notaport"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("invalid '-gdb' device 'tcp::notaport'"),
        "{err}"
    );
    let (code, err) = run(&["-S"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("-S waits for a debugger"), "{err}");
    // A port in use.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, err) = run(&["-gdb", &format!("tcp:127.0.0.1:{port}")]);
    assert_eq!(code, Some(1));
    assert!(err.contains("could not open gdbserver"), "{err}");
    // Without a GDB attached, -gdb alone does not hold the program up.
    let (code, err) = run(&["-gdb", "tcp:127.0.0.1:0"]);
    assert_eq!(code, Some(0), "{err}");
}

/// A guest that never ends.
const SPIN_ROM: &str = r#"
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        addi a0, a0, 1
        j _start
        .section .tohost, "aw", @progbits
        .align 6
        .globl tohost
tohost: .dword 0
        .align 6
        .globl fromhost
fromhost: .dword 0
"#;

/// One raw remote-protocol connection.
struct Raw(std::net::TcpStream);

impl Raw {
    fn connect(port: u16) -> Raw {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Raw(s)
    }

    fn send(&mut self, p: &str) {
        use std::io::Write;
        let sum = p.bytes().fold(0u8, |a, b| a.wrapping_add(b));
        let _ = self.0.write_all(format!("${p}#{sum:02x}").as_bytes());
    }

    fn raw(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let _ = self.0.write_all(bytes);
    }

    /// The body of the next `$...#xx` reply (acknowledged), or None if the stub closed the
    /// connection.
    fn reply(&mut self) -> Option<String> {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        loop {
            if self.0.read(&mut b).ok()? != 1 {
                return None;
            }
            got.push(b[0]);
            let n = got.len();
            if n >= 3 && got[n - 3] == b'#' {
                if let Some(i) = got.iter().position(|&c| c == b'$') {
                    self.raw(b"+");
                    return Some(run_length_decode(&got[i + 1..n - 3]));
                }
            }
        }
    }
}

/// Undo the protocol's run-length encoding (`X*n`: n - 29 more copies of X).
fn run_length_decode(body: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut it = body.iter();
    while let Some(&c) = it.next() {
        if c == b'*' {
            let (Some(&n), Some(&last)) = (it.next(), out.last()) else {
                break;
            };
            out.extend(std::iter::repeat_n(last, usize::from(n.saturating_sub(29))));
        } else {
            out.push(c);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The remote protocol by hand: malformed and hostile packets get an error reply or end the
/// session (gdbstub's choice), never emu, which takes the next connection; Ctrl-C stops a
/// running guest with SIGINT; `k` ends emu.
#[test]
fn raw_protocol_interrupt_and_malformed_packets() {
    if !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb-raw");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("spin.S");
    std::fs::write(&src, SPIN_ROM).unwrap();
    let elf = dir.join("spin.elf");
    let o = Command::new("riscv64-unknown-elf-gcc")
        .args([
            "-march=rv64gc",
            "-mabi=lp64d",
            "-nostdlib",
            "-nostartfiles",
            "-T",
        ])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64/link.ld"))
        .arg("-o")
        .arg(&elf)
        .arg(&src)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let port = free_port();
    let mut emu = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(["--engine", "jit", "-S", "-gdb"])
        .arg(format!("tcp:127.0.0.1:{port}"))
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !listening(port) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "emu never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for bad in [
        "m0,ffffffffffffffff",
        "mffffffffffffffff,10",
        "m80000000",
        "pffffffff",
        "p99999999999999999999",
        "P20=zz",
        "G0123",
        "Z9,0,0",
        "Z2,80001000,ffffffffffffffff",
        "M80000000,2:zz",
        "qXfer:features:read:nope.xml:0,100",
        "qXfer:features:read:target.xml:ffffffff,10",
        "Hg99",
        "vCont;s:99",
    ] {
        let mut c = Raw::connect(port);
        c.send("?");
        let stop = c.reply();
        assert!(
            stop.as_deref().is_some_and(|r| r.starts_with('T')),
            "{bad}: {stop:?}"
        );
        c.send(bad);
        if let Some(r) = c.reply() {
            assert!(
                r.is_empty()
                    || r.starts_with('E')
                    || r == "OK"
                    || r.starts_with('l')
                    || r.starts_with('T'),
                "{bad}: {r}"
            );
        }
        // A corrupt checksum is refused ('-'); the stub goes on or closes.
        c.raw(b"$g#00");
    }
    let mut c = Raw::connect(port);
    c.send("?");
    assert!(c.reply().is_some_and(|r| r.starts_with('T')));
    // Run, then Ctrl-C: a SIGINT stop somewhere in the loop.
    c.send("vCont;c");
    std::thread::sleep(Duration::from_millis(200));
    c.raw(&[0x03]);
    let r = c.reply().unwrap_or_default();
    assert!(r.starts_with("T02"), "{r}");
    c.send("p20");
    let pc = c.reply().unwrap_or_default();
    assert!(
        pc == "0000008000000000" || pc == "0400008000000000",
        "pc in the loop, little-endian: {pc}"
    );
    c.send("k");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = emu.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = emu.kill();
            panic!("emu did not end after k");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = emu.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert_eq!(status, Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Two harts on the virt board: each is a GDB thread; registers are read per thread; the
/// guest's poweroff (sifive_test) ends the session.
const VIRT_ROM: &str = r#"
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrr a0, mhartid
        bnez a0, park
        .globl checkpoint
checkpoint:
        li t0, 0x100000
        li t1, 0x5555
        sw t1, 0(t0)
1:      j 1b
park:
        addi a2, a2, 1
        j park
"#;

const VIRT_SCRIPT: &str = r#"set pagination off
set confirm off
target remote 127.0.0.1:PORT
info threads
break *checkpoint
continue
thread 2
p $mhartid
thread 1
p $mhartid
continue
"#;

#[test]
fn virt_harts_are_gdb_threads() {
    if !require("gdb-multiarch", "gdb-multiarch")
        || !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb-virt");
    let elf = assemble(&dir, "virt", VIRT_ROM);
    let (mut emu, port) = start_two_harts_stopped(&elf);
    let script = dir.join("virt.gdb");
    std::fs::write(&script, VIRT_SCRIPT.replace("PORT", &port.to_string())).unwrap();
    let out = run_gdb(&script, &elf);
    let status = wait_exit(&mut emu.0);
    assert!(out.contains("Thread 1.1"), "{out}");
    assert!(out.contains("Thread 1.2"), "{out}");
    assert!(out.contains("hit Breakpoint 1, 0x"), "{out}");
    assert!(out.contains("$1 = 1"), "thread 2 is hart 1: {out}");
    assert!(out.contains("$2 = 0"), "thread 1 is hart 0: {out}");
    assert!(out.contains("exited normally"), "{out}");
    assert_eq!(status, Some(0), "{out}");
}

/// Two harts that count in registers: hart 0 in `s0` up to a limit (then parks at
/// `hart0_done`), hart 1 in `s1` four times, then in `s2` forever.
const STEP_ROM: &str = r#"
        .section .text.init, "ax", @progbits
        .globl _start
_start:
        csrr a0, mhartid
        bnez a0, hart1_code
        li t0, 200000
        .globl hart0_loop
hart0_loop:
        addi s0, s0, 1
        bltu s0, t0, hart0_loop
        .globl hart0_done
hart0_done:
        j hart0_done
        .globl hart1_code
hart1_code:
        addi s1, s1, 1
        addi s1, s1, 1
        addi s1, s1, 1
        addi s1, s1, 1
        .globl loop1
loop1:
        addi s2, s2, 1
        j loop1
"#;

/// GDB steps RISC-V in software (a temporary breakpoint at the next PC, then a continue), so
/// `set scheduler-locking step` is what makes its `stepi` resume one thread (`vCont;c:p1.2`);
/// then a continue with `scheduler-locking on`, then a plain continue (`vCont;c:p1.-1`).
const STEP_SCRIPT: &str = r#"set pagination off
set confirm off
target remote 127.0.0.1:PORT
break *hart1_code
continue
delete
thread 1
printf "A1 pc=%#lx s0=%lu\n", $pc, $s0
set scheduler-locking step
thread 2
stepi
stepi
printf "B2 pc=%#lx s1=%lu\n", $pc, $s1
thread 1
printf "B1 pc=%#lx s0=%lu\n", $pc, $s0
stepi
stepi
printf "S1 pc=%#lx s0=%lu\n", $pc, $s0
thread 2
printf "S2 pc=%#lx s1=%lu\n", $pc, $s1
stepi
printf "C2 s1=%lu\n", $s1
thread 1
printf "C1 pc=%#lx s0=%lu\n", $pc, $s0
set scheduler-locking on
thread 2
break *loop1
continue
printf "D2 s1=%lu s2=%lu\n", $s1, $s2
thread 1
printf "D1 pc=%#lx s0=%lu\n", $pc, $s0
delete
set scheduler-locking off
thread 2
break *hart0_done
continue
thread 1
printf "E1 pc=%#lx s0=%lu done=%#lx\n", $pc, $s0, &hart0_done
thread 2
printf "E2 s2=%lu\n", $s2
kill
"#;

/// The value of `key=` on the script's line starting with `tag `.
fn field(out: &str, tag: &str, key: &str) -> Option<String> {
    let line = out.lines().find(|l| l.starts_with(&format!("{tag} ")))?;
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// Kills emu when a test ends early (a failed assertion), so no stub is left listening.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// With GDB's scheduler locking, a step of one hart retires one instruction there and none on
/// the other hart, whichever hart's turn it was; `scheduler-locking on` continues only the
/// current thread; a plain continue resumes both.
#[test]
fn stepping_one_hart_holds_the_other() {
    if !require("gdb-multiarch", "gdb-multiarch")
        || !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf")
    {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb-step-smp");
    let elf = assemble(&dir, "step", STEP_ROM);
    let (mut emu, port) = start_two_harts_stopped(&elf);
    let script = dir.join("step.gdb");
    std::fs::write(&script, STEP_SCRIPT.replace("PORT", &port.to_string())).unwrap();
    let out = run_gdb(&script, &elf);
    wait_exit(&mut emu.0);
    let f = |tag: &str, key: &str| {
        field(&out, tag, key).unwrap_or_else(|| panic!("no {tag} {key}= in:\n{out}"))
    };
    let num = |tag: &str, key: &str| -> u64 {
        let v = f(tag, key);
        v.parse()
            .unwrap_or_else(|_| panic!("{tag} {key}={v}:\n{out}"))
    };
    // Hart 0 ran while hart 1 went to its breakpoint, but not to its end.
    let s0 = num("A1", "s0");
    assert!(s0 > 0 && s0 < 200_000, "{out}");
    // Two steps of thread 2: two instructions there, none on thread 1.
    assert_eq!(num("B2", "s1"), 2, "{out}");
    assert_eq!(f("B1", "pc"), f("A1", "pc"), "thread 1 moved: {out}");
    assert_eq!(num("B1", "s0"), s0, "{out}");
    // Two steps of thread 1 (the hart whose turn it is not): one pass of its two-instruction
    // loop there, nothing on thread 2.
    assert_eq!(num("S1", "s0"), s0 + 1, "{out}");
    assert_eq!(f("S1", "pc"), f("A1", "pc"), "{out}");
    assert_eq!(f("S2", "pc"), f("B2", "pc"), "thread 2 moved: {out}");
    assert_eq!(num("S2", "s1"), 2, "{out}");
    // One more step of thread 2.
    assert_eq!(num("C2", "s1"), 3, "{out}");
    assert_eq!(f("C1", "pc"), f("S1", "pc"), "thread 1 moved: {out}");
    assert_eq!(num("C1", "s0"), s0 + 1, "{out}");
    // scheduler-locking on: continue runs thread 2 alone, to loop1.
    assert_eq!(num("D2", "s1"), 4, "{out}");
    assert_eq!(num("D2", "s2"), 0, "{out}");
    assert_eq!(f("D1", "pc"), f("S1", "pc"), "thread 1 moved: {out}");
    assert_eq!(num("D1", "s0"), s0 + 1, "{out}");
    // A plain continue resumes both: hart 0 counts to its end, hart 1 loops meanwhile.
    assert_eq!(num("E1", "s0"), 200_000, "{out}");
    assert_eq!(f("E1", "pc"), f("E1", "done"), "{out}");
    assert!(num("E2", "s2") > 0, "{out}");
}

/// hart `h`'s pc through the remote protocol (`Hg`, then `p20`), little-endian hex.
fn raw_pc(c: &mut Raw, h: usize) -> String {
    c.send(&format!("Hg{h:x}"));
    assert_eq!(c.reply().as_deref(), Some("OK"));
    c.send("p20");
    c.reply().unwrap_or_default()
}

/// A stop reply (`S05` for a finished step, `T..` with the thread otherwise).
fn assert_stopped(c: &mut Raw) {
    let r = c.reply();
    assert!(
        r.as_deref()
            .is_some_and(|r| r.starts_with('T') || r == "S05"),
        "{r:?}"
    );
}

/// The remote protocol's own step actions, as QEMU's gdbstub takes them: `vCont;s:2` and
/// `vCont;s:2;c` both retire one instruction on hart 1 and none on hart 0 (all-stop: the
/// others' continue ends with the step's stop, and emu runs them for none of it).
#[test]
fn raw_vcont_step_runs_only_the_stepped_hart() {
    if !require("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("gdb-raw-step");
    let elf = assemble(&dir, "step", STEP_ROM);
    let (mut emu, port) = start_two_harts_stopped(&elf);
    let mut c = Raw::connect(port);
    c.send("?");
    assert!(c.reply().is_some_and(|r| r.starts_with('T')));
    // -S: both harts at _start (0x80000000), before `csrr a0, mhartid`.
    let start_pc = "0000008000000000";
    assert_eq!(raw_pc(&mut c, 1), start_pc);
    assert_eq!(raw_pc(&mut c, 2), start_pc);
    // Step hart 1 (thread 2): its csrr retires; hart 0 stays.
    c.send("vCont;s:2");
    assert_stopped(&mut c);
    assert_eq!(raw_pc(&mut c, 2), "0400008000000000");
    assert_eq!(raw_pc(&mut c, 1), start_pc, "hart 0 ran during the step");
    // With a default continue for the others: hart 1's bnez jumps to hart1_code, hart 0 stays.
    c.send("vCont;s:2;c");
    assert_stopped(&mut c);
    let hart1_code = raw_pc(&mut c, 2);
    assert_ne!(hart1_code, "0400008000000000");
    assert_eq!(raw_pc(&mut c, 1), start_pc, "hart 0 ran during the step");
    // And the other way round.
    c.send("vCont;s:1;c");
    assert_stopped(&mut c);
    assert_eq!(raw_pc(&mut c, 1), "0400008000000000");
    assert_eq!(raw_pc(&mut c, 2), hart1_code, "hart 1 ran during the step");
    c.send("k");
    let start = Instant::now();
    while emu.0.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = emu.0.kill();
            panic!("emu did not end after k");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
