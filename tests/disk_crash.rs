//! Disk data safety on the `virt` board, end to end: a bare-metal guest
//! (test-roms/riscv64-virt/blkcrash.c) writes checksummed 4 KiB blocks to a virtio-blk disk,
//! issues FLUSH after each and prints `FLUSHED i` only once the FLUSH completed; the test kills
//! emu with SIGKILL at a random (seeded) moment and checks that every block whose `FLUSHED` line
//! it saw is intact in the image. Under `strace` (needs the strace package), every `FLUSHED i`
//! emu writes comes after a successful `fsync` that followed block i's `pwrite64`. Also: a
//! read-only image is opened `O_RDONLY` and the guest's writes to it fail, and the checkers
//! themselves detect corrupted and stale blocks and a FLUSHED line without an fsync. (A failed
//! fsync answered VIRTIO_BLK_S_IOERR, then and on every later FLUSH, is
//! devices/tests/virtio.rs's `blk_failed_flush_is_ioerr_and_stays_failed`.)
//!
//! `EMU_CRASH_RUNS` (default 50) and `EMU_CRASH_SEED` (default fixed) tune the campaign;
//! scripts/disk-crash.sh runs a longer one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Block size of the guest's records (its FLUSH unit).
const BLOCK: usize = 4096;
/// Record header: magic, index, generation, checksum (four little-endian u64).
const HEADER: usize = 32;
/// "EMUCRASH" and "EMUBLOCK" as little-endian u64 (the guest's constants).
const MAGIC_PARAMS: u64 = 0x4853_4152_4355_4d45;
const MAGIC_BLOCK: u64 = 0x4b43_4f4c_4255_4d45;
/// Blocks written per run.
const BLOCKS: u64 = 32;
/// Longest one guest run may take (32 fsyncs on a slow CI disk).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// Build test-roms/riscv64-virt once per test binary; the directory holding `<name>.elf`.
fn roms() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64-virt");
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("virt-roms-disk-crash");
        let o = Command::new("make")
            .arg("-C")
            .arg(&src)
            .arg(format!("OUT={}", out.display()))
            .output()
            .expect("could not run make (test-roms/riscv64-virt needs make and riscv64-unknown-elf-gcc)");
        assert!(
            o.status.success(),
            "building test-roms/riscv64-virt failed (install gcc-riscv64-unknown-elf):\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("disk_crash")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// splitmix64: the test's seeded random numbers (no dependence on `rand`'s stream stability).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn le64(b: &[u8], word: usize) -> u64 {
    u64::from_le_bytes(b[word * 8..word * 8 + 8].try_into().unwrap())
}

/// A fresh image: block 0 holds the run parameters, blocks 1..=BLOCKS are zero.
fn make_image(path: &Path) {
    std::fs::write(path, vec![0u8; BLOCK * (BLOCKS as usize + 1)]).unwrap();
}

/// Write the run's generation into block 0 (the guest reads it at start).
fn set_generation(path: &Path, generation: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut params = [0u8; 24];
    params[..8].copy_from_slice(&MAGIC_PARAMS.to_le_bytes());
    params[8..16].copy_from_slice(&generation.to_le_bytes());
    params[16..].copy_from_slice(&BLOCKS.to_le_bytes());
    f.write_all_at(&params, 0).unwrap();
}

/// Check that block `i` of `image` is the guest's record `i` of `generation` with a correct
/// checksum; the error says what is wrong.
fn check_block(image: &[u8], i: u64, generation: u64) -> Result<(), String> {
    let b = image
        .get(i as usize * BLOCK..(i as usize + 1) * BLOCK)
        .ok_or_else(|| format!("block {i}: beyond the end of the image"))?;
    if le64(b, 0) != MAGIC_BLOCK {
        return Err(format!("block {i}: no record (magic {:#x})", le64(b, 0)));
    }
    if le64(b, 1) != i {
        return Err(format!("block {i}: holds record {}", le64(b, 1)));
    }
    if le64(b, 2) != generation {
        return Err(format!(
            "block {i}: stale, generation {} instead of {generation}",
            le64(b, 2)
        ));
    }
    let sum = fnv1a(&b[HEADER..]);
    if le64(b, 3) != sum {
        return Err(format!(
            "block {i}: checksum {:#x} but the payload sums to {sum:#x}",
            le64(b, 3)
        ));
    }
    Ok(())
}

fn spawn_emu(elf: &Path, drive: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "--arch", "riscv64", "-M", "virt", "-bios", "none", "-kernel",
        ])
        .arg(elf)
        .args(["-drive", drive, "-serial", "stdio", "--log", "error"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start emu")
}

/// The console lines of `child`, as they arrive.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// What one run saw: the FLUSHED block numbers and whether the guest finished.
struct RunLog {
    flushed: Vec<u64>,
    done: bool,
    console: Vec<String>,
}

/// One run of generation `generation`: kill emu with SIGKILL after `kill_after` FLUSHED lines
/// plus `delay`, or let it finish if it finishes first.
fn crash_run(elf: &Path, img: &Path, kill_after: u64, delay: Duration) -> RunLog {
    let drive = format!("file={},format=raw,if=virtio", img.display());
    let mut child = spawn_emu(elf, &drive);
    let rx = lines(&mut child);
    let mut log = RunLog {
        flushed: Vec::new(),
        done: false,
        console: Vec::new(),
    };
    let start = Instant::now();
    let note = |line: String, log: &mut RunLog| {
        if let Some(n) = line.strip_prefix("FLUSHED ") {
            log.flushed.push(n.trim().parse().expect("FLUSHED line"));
        }
        if line == "DONE" {
            log.done = true;
        }
        log.console.push(line);
    };
    while (log.flushed.len() as u64) < kill_after && !log.done {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => note(line, &mut log),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(
                    start.elapsed() < RUN_TIMEOUT,
                    "emu did not progress: {:?}",
                    log.console
                );
            }
        }
    }
    std::thread::sleep(delay);
    // Child::kill sends SIGKILL on Unix: no chance for emu to clean up.
    let _ = child.kill();
    let status = child.wait().unwrap();
    // Lines printed before the kill are still in the pipe: they count too.
    for line in rx.iter() {
        note(line, &mut log);
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(
        log.done || status.code().is_none() || status.code() == Some(0),
        "emu failed on its own ({status}): {err}\nconsole: {:?}",
        log.console
    );
    assert!(
        !log.console
            .iter()
            .any(|l| l.starts_with("IOERR") || l.starts_with("NO ")),
        "the guest saw an error: {:?}\n{err}",
        log.console
    );
    log
}

/// The crash campaign: `runs` runs with seeded kill points; every block whose FLUSHED line was
/// seen must be intact. Returns (runs killed before DONE, FLUSHED blocks checked).
fn campaign(test: &str, runs: u64, seed: u64) -> (u64, u64) {
    let dir = temp_dir(test);
    let img = dir.join("disk.img");
    make_image(&img);
    let elf = roms().join("blkcrash.elf");
    let mut rng = Rng(seed);
    let (mut killed, mut checked) = (0, 0);
    for run in 0..runs {
        let generation = run + 1;
        set_generation(&img, generation);
        let kill_after = rng.below(BLOCKS + 1);
        let delay = Duration::from_micros(rng.below(20_000));
        let log = crash_run(&elf, &img, kill_after, delay);
        if !log.done {
            killed += 1;
        }
        let image = std::fs::read(&img).unwrap();
        for &i in &log.flushed {
            if let Err(e) = check_block(&image, i, generation) {
                panic!(
                    "seed {seed:#x} run {run} (kill after {kill_after} + {delay:?}): {e}; the \
                     guest saw FLUSHED {i}; console: {:?}",
                    log.console
                );
            }
            checked += 1;
        }
    }
    (killed, checked)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| {
            let v = v.trim();
            match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            }
        })
        .unwrap_or(default)
}

#[test]
fn every_flushed_block_survives_sigkill() {
    let runs = env_u64("EMU_CRASH_RUNS", 50);
    let seed = env_u64("EMU_CRASH_SEED", 0x5eed_c0de);
    eprintln!("disk crash campaign: {runs} runs, EMU_CRASH_SEED={seed:#x}");
    let (killed, checked) = campaign("campaign", runs, seed);
    eprintln!("{killed} of {runs} runs killed before DONE; {checked} flushed blocks intact");
    // The kill points must really interrupt the guest, and there must be blocks to check.
    assert!(
        killed * 2 >= runs,
        "only {killed} of {runs} runs were killed mid-way"
    );
    assert!(
        checked >= runs * BLOCKS / 4,
        "only {checked} blocks checked"
    );
}

#[test]
fn a_completed_run_writes_every_block_and_the_checker_finds_damage() {
    let dir = temp_dir("checker");
    let img = dir.join("disk.img");
    make_image(&img);
    set_generation(&img, 7);
    let elf = roms().join("blkcrash.elf");
    let log = crash_run(&elf, &img, u64::MAX, Duration::ZERO);
    assert!(log.done, "{:?}", log.console);
    assert_eq!(log.flushed, (1..=BLOCKS).collect::<Vec<_>>());
    let mut image = std::fs::read(&img).unwrap();
    for i in 1..=BLOCKS {
        check_block(&image, i, 7).unwrap();
    }
    // A block of an older generation (written, but not by this run) is caught...
    let stale = check_block(&image, 3, 8).unwrap_err();
    assert!(stale.contains("stale"), "{stale}");
    // ...and so is one flipped payload bit, a torn header and a never-written block.
    image[5 * BLOCK + 1000] ^= 0x10;
    let bad = check_block(&image, 5, 7).unwrap_err();
    assert!(bad.contains("checksum"), "{bad}");
    image[6 * BLOCK..6 * BLOCK + 8].fill(0);
    assert!(check_block(&image, 6, 7).unwrap_err().contains("no record"));
    let zero = vec![0u8; BLOCK * 3];
    assert!(check_block(&zero, 2, 7).unwrap_err().contains("no record"));
    assert!(check_block(&zero, 9, 7).unwrap_err().contains("beyond"));
}

#[test]
fn a_read_only_image_refuses_guest_writes_and_stays_unchanged() {
    let dir = temp_dir("readonly");
    let img = dir.join("disk.img");
    make_image(&img);
    set_generation(&img, 3);
    let before = std::fs::read(&img).unwrap();
    let elf = roms().join("blkcrash.elf");
    let drive = format!("file={},format=raw,if=virtio,readonly=on", img.display());
    let o = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "--arch", "riscv64", "-M", "virt", "-bios", "none", "-kernel",
        ])
        .arg(&elf)
        .args(["-drive", &drive, "-serial", "stdio", "--log", "error"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    // The guest's first OUT is answered VIRTIO_BLK_S_IOERR: it prints IOERR 1 and exits 2.
    assert!(out.contains("IOERR 1"), "{out}");
    assert!(!out.contains("FLUSHED"), "{out}");
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "a read-only image changed"
    );
}

/// The open file description of `path` in process `pid`: its `flags` from /proc (octal).
fn open_flags(pid: u32, path: &Path) -> Option<u32> {
    let want = std::fs::canonicalize(path).ok()?;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.flatten() {
        if std::fs::read_link(fd.path()).ok()? != want {
            continue;
        }
        let info =
            std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str()?))
                .ok()?;
        let flags = info.lines().find_map(|l| l.strip_prefix("flags:"))?;
        return u32::from_str_radix(flags.trim(), 8).ok();
    }
    None
}

#[test]
fn images_are_opened_read_only_or_read_write_as_asked() {
    let dir = temp_dir("oflags");
    let elf = roms().join("hammer.elf");
    for (readonly, want) in [(true, libc::O_RDONLY), (false, libc::O_RDWR)] {
        let img = dir.join(format!("disk-{readonly}.img"));
        make_image(&img);
        let ro = if readonly { ",readonly=on" } else { "" };
        let drive = format!("file={},format=raw,if=virtio{ro}", img.display());
        let mut child = spawn_emu(&elf, &drive);
        let start = Instant::now();
        let flags = loop {
            if let Some(f) = open_flags(child.id(), &img) {
                break Some(f);
            }
            if start.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = child.kill();
        let _ = child.wait();
        let flags = flags.expect("emu never had the image open");
        assert_eq!(
            flags & libc::O_ACCMODE as u32,
            want as u32,
            "readonly={readonly}: open flags {flags:o}"
        );
    }
}

/// Undo strace's quoting of a string argument (the text between the quotes).
fn unquote(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        match b[i] {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let hex = s.get(i + 1..i + 3).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            c if c.is_ascii_digit() => {
                let n = b[i..]
                    .iter()
                    .take(3)
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                out.push(u8::from_str_radix(&s[i..i + n], 8).unwrap_or(0));
                i += n - 1;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Check an `strace -f` log of emu: every `FLUSHED i` emu wrote to its stdout (fd 1) comes
/// after a successful fsync/fdatasync of the image fd that followed the last pwrite of block i.
/// Returns how many FLUSHED lines were checked.
fn check_fsync_order(trace: &str, image: &str) -> Result<usize, String> {
    use std::collections::BTreeMap;
    let mut image_fd: Option<String> = None;
    // Block -> durable (fsynced since its last write)?
    let mut blocks: BTreeMap<u64, bool> = BTreeMap::new();
    let mut console = Vec::new();
    let mut checked = 0;
    for line in trace.lines() {
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        if call.starts_with("openat(") && call.contains(&format!("\"{image}\"")) {
            image_fd = call.rsplit("= ").next().map(|fd| fd.trim().to_string());
            continue;
        }
        let Some(fd) = image_fd.as_deref() else {
            continue;
        };
        if let Some(args) = call.strip_prefix(&format!("pwrite64({fd}, ")) {
            // pwrite64(fd, "..."..., len, offset) = n
            let mut nums = args.rsplit(", ");
            let offset: u64 = nums
                .next()
                .and_then(|t| t.split(')').next())
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| format!("unparsed: {line}"))?;
            let len: u64 = nums
                .next()
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| format!("unparsed: {line}"))?;
            for b in offset / BLOCK as u64..(offset + len).div_ceil(BLOCK as u64) {
                blocks.insert(b, false);
            }
        } else if (call.starts_with(&format!("fsync({fd})"))
            || call.starts_with(&format!("fdatasync({fd})")))
            && call.trim_end().ends_with("= 0")
        {
            blocks.values_mut().for_each(|d| *d = true);
        } else if let Some(args) = call.strip_prefix("write(1, \"") {
            let text = args.rsplit_once("\", ").map_or(args, |(t, _)| t);
            let before = console.len();
            console.extend(unquote(text));
            // Lines completed by this write.
            let start = console[..before]
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |p| p + 1);
            let new = String::from_utf8_lossy(&console[start..]).into_owned();
            let complete = new.rsplit_once('\n').map_or("", |(done, _)| done);
            for l in complete.lines() {
                if let Some(i) = l.strip_prefix("FLUSHED ") {
                    let i: u64 = i.trim().parse().map_err(|_| format!("bad line {l:?}"))?;
                    if blocks.get(&i) != Some(&true) {
                        return Err(format!(
                            "emu printed {l:?} before block {i} was written and fsynced: {line}"
                        ));
                    }
                    checked += 1;
                }
            }
        }
    }
    if image_fd.is_none() {
        return Err(format!("the trace never opens {image}"));
    }
    Ok(checked)
}

#[test]
fn flushed_lines_follow_the_host_fsync() {
    // The checker rejects a FLUSHED line that is not backed by an fsync.
    let bad = "1 openat(AT_FDCWD, \"d.img\", O_RDWR|O_CLOEXEC) = 3\n\
               1 pwrite64(3, \"EMUBLOCK\"..., 4096, 4096) = 4096\n\
               1 write(1, \"FLUSHED 1\\n\", 10) = 10\n\
               1 fsync(3) = 0\n";
    assert!(check_fsync_order(bad, "d.img")
        .unwrap_err()
        .contains("FLUSHED 1"));
    let failed = "1 openat(AT_FDCWD, \"d.img\", O_RDWR|O_CLOEXEC) = 3\n\
                  1 pwrite64(3, \"EMUBLOCK\"..., 4096, 8192) = 4096\n\
                  1 fsync(3) = -1 EIO (Input/output error)\n\
                  1 write(1, \"FLUS\", 4) = 4\n\
                  1 write(1, \"HED 2\\n\", 6) = 6\n";
    assert!(check_fsync_order(failed, "d.img").is_err());
    let good = bad.replace("1 fsync(3) = 0\n", "").replace(
        "1 write(1,",
        "1 fsync(3)                          = 0\n1 write(1,",
    );
    assert_eq!(check_fsync_order(&good, "d.img"), Ok(1));

    if Command::new("strace").arg("-V").output().is_err() {
        panic!(
            "strace is not installed (apt-get install strace): it is needed to check fsync order"
        );
    }
    let dir = temp_dir("strace");
    let img = dir.join("disk.img");
    make_image(&img);
    set_generation(&img, 1);
    let trace = dir.join("trace.txt");
    let drive = format!("file={},format=raw,if=virtio", img.display());
    let o = Command::new("strace")
        .args(["-f", "-s", "256", "-o"])
        .arg(&trace)
        .args(["-e", "trace=openat,pwrite64,pwritev,write,fsync,fdatasync"])
        .arg(env!("CARGO_BIN_EXE_emu"))
        .args([
            "--arch", "riscv64", "-M", "virt", "-bios", "none", "-kernel",
        ])
        .arg(roms().join("blkcrash.elf"))
        .args(["-drive", &drive, "-serial", "stdio", "--log", "error"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("DONE"), "{out}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let checked =
        check_fsync_order(&text, img.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(checked, BLOCKS as usize, "FLUSHED lines seen in the trace");
}
