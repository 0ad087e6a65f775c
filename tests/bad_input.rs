//! Bad input, end to end: one test row per row of docs/bad-input.md. Every bad option value,
//! file or size makes emu print exactly one line, `emu: ...`, naming the option or file and
//! what would be right, and exit with status 1 — never a panic or a backtrace. The rows marked
//! "accepted" in the table run to a clean exit instead.

use emu_firmware::testing::{build_elf, htif_exit_program, rv, Segment, EM_RISCV};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The fixture files the rows name with a leading `@`.
fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_input");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // virt, -bios none: write 0x5555 (pass) to the sifive_test finisher at 0x10_0000.
        std::fs::write(dir.join("virt.elf"), finisher_program(0x5555)).unwrap();
        // spike: exit 0 through HTIF.
        std::fs::write(dir.join("spike.elf"), htif_exit_program(0)).unwrap();
        // virt, -bios none: spin forever.
        std::fs::write(dir.join("spin.elf"), program(&[rv::SPIN])).unwrap();
        std::fs::write(dir.join("empty"), b"").unwrap();
        std::fs::write(dir.join("text"), b"not a kernel\n").unwrap();
        std::fs::write(dir.join("disk.img"), vec![0u8; 1 << 20]).unwrap();
        std::fs::write(dir.join("odd.img"), vec![0u8; 1000]).unwrap();
        std::fs::write(dir.join("locked.img"), vec![0u8; 1 << 20]).unwrap();
        // 9 MiB, sparse: larger than `-m 8M`.
        let big = std::fs::File::create(dir.join("big.bin")).unwrap();
        big.set_len(9 << 20).unwrap();
        std::fs::create_dir_all(dir.join("a-directory")).unwrap();
        dir
    })
}

/// `sw rs2, imm(rs1)` (Unprivileged ISA §2.6, S-type).
fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (0b010 << 12) | ((imm & 0x1f) << 7) | 0x23
}

/// An M-mode program that writes `value` (< 2^16) to the sifive_test finisher, then spins.
fn finisher_program(value: u32) -> Vec<u8> {
    const T0: u32 = 5;
    const T1: u32 = 6;
    program(&[
        rv::addi(T0, 0, 1),
        rv::slli(T0, T0, 20),
        rv::addi(T1, 0, (value >> 4) as i32),
        rv::slli(T1, T1, 4),
        rv::ori(T1, T1, (value & 0xf) as i32),
        sw(T1, T0, 0),
        rv::SPIN,
    ])
}

/// An ELF with `insns` at 0x8000_0000 (entry there).
fn program(insns: &[u32]) -> Vec<u8> {
    let code = rv::assemble(insns);
    build_elf(
        EM_RISCV,
        0x8000_0000,
        &[Segment {
            addr: 0x8000_0000,
            bytes: &code,
            memsz: 0x1000,
        }],
        &[],
    )
}

/// Every `@name` in `arg` (a name of letters, digits, `.`, `-`, `_`) becomes the fixture
/// file's path.
fn expand(arg: &str) -> String {
    let dir = fixtures();
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('@') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let n = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || ".-_".contains(c)))
            .unwrap_or(after.len());
        out.push_str(dir.join(&after[..n]).to_str().unwrap());
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

fn emu(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| expand(a)).collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(&args)
        // A panic would print its backtrace: the test would see it.
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("could not start the emu binary");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("emu {args:?} did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Exit status 1 and one line on stderr, `emu: ...`, containing every needle (after `@`
/// expansion); no panic.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let o = emu(args);
    let err = String::from_utf8_lossy(&o.stderr);
    let what = format!("emu {}", args.join(" "));
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{what}: panicked: {err}"
    );
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(err.starts_with("emu: "), "{what}: {err:?}");
    for n in needles {
        let n = expand(n);
        assert!(err.contains(&n), "{what}: {err:?} does not mention {n:?}");
    }
}

/// Exit status 0, nothing on stderr but warnings.
fn assert_accepted(args: &[&str]) {
    let o = emu(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "emu {}: {err}", args.join(" "));
    assert!(!err.contains("panicked"), "{err}");
}

/// The boards' common prefix: `virt` running the finisher program with `-bios none`.
const VIRT: &[&str] = &[
    "--arch", "riscv64", "-M", "virt", "-bios", "none", "-serial", "null",
];

fn virt(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = VIRT.to_vec();
    v.extend_from_slice(extra);
    v
}

/// Rows of docs/bad-input.md: arguments (after the `virt` prefix when `on_virt`) and what the
/// message must contain.
struct Row {
    on_virt: bool,
    args: &'static [&'static str],
    needles: &'static [&'static str],
}

const fn v(args: &'static [&'static str], needles: &'static [&'static str]) -> Row {
    Row {
        on_virt: true,
        args,
        needles,
    }
}

const fn s(args: &'static [&'static str], needles: &'static [&'static str]) -> Row {
    Row {
        on_virt: false,
        args,
        needles,
    }
}

const ROWS: &[Row] = &[
    // The command line itself.
    s(&[], &["no program given", "-kernel FILE"]),
    s(&["-bogus"], &["unknown option '-bogus'", "--help"]),
    v(
        &["-kernel", "@virt.elf", "-append"],
        &["option '-append' needs a value"],
    ),
    s(
        &["@spike.elf", "@virt.elf"],
        &["more than one program given"],
    ),
    s(
        &["--arch", "x86_64", "@spike.elf"],
        &["'x86_64'", "'--arch'", "riscv64"],
    ),
    s(
        &["--isa", "rv32gc", "@spike.elf"],
        &["'rv32gc'", "'--isa'", "RV64"],
    ),
    s(
        &["--engine", "fast", "@spike.elf"],
        &["'fast'", "'--engine'", "interp, jit or tiered"],
    ),
    s(
        &["--log", "loud", "@spike.elf"],
        &["'loud'", "'--log'", "off, error, warn"],
    ),
    s(
        &["--max-insns", "lots", "@spike.elf"],
        &["'lots'", "'--max-insns'"],
    ),
    s(
        &["--signature-granularity", "3", "@spike.elf"],
        &["'3'", "power of two"],
    ),
    s(
        &["-M", "pc", "@spike.elf"],
        &["'pc'", "'-M'", "spike or virt"],
    ),
    s(&["-M", "virt,dumpdtb"], &["'virt,dumpdtb'", "dumpdtb=FILE"]),
    s(
        &["-d", "everything", "@spike.elf"],
        &["'everything'", "'-d'", "-d help"],
    ),
    s(
        &["-gdb", "tcp::99999", "@spike.elf"],
        &["'tcp::99999'", "tcp::PORT"],
    ),
    // The spike board has no use for the virt board's files and devices.
    s(
        &["-initrd", "@text", "@spike.elf"],
        &["'@text'", "'-initrd'", "spike", "-M virt"],
    ),
    s(
        &["-append", "quiet", "@spike.elf"],
        &["'quiet'", "'-append'", "-M virt"],
    ),
    s(&["-dtb", "@text", "@spike.elf"], &["'-dtb'", "-M virt"]),
    s(
        &["-drive", "file=@disk.img", "@spike.elf"],
        &["'@disk.img'", "'-drive'", "-M virt"],
    ),
    s(
        &["-device", "virtio-rng-device", "@spike.elf"],
        &["'virtio-rng-device'", "'-device'", "-M virt"],
    ),
    s(
        &["-netdev", "socket,id=n0,listen=:5555", "@spike.elf"],
        &["'n0'", "'-netdev'", "-M virt"],
    ),
    // Sizes.
    v(
        &["-m", "0", "-kernel", "@virt.elf"],
        &["'0'", "'-m'", "non-zero multiple of 4K"],
    ),
    v(
        &["-m", "1K", "-kernel", "@virt.elf"],
        &["'1K'", "'-m'", "multiple of 4K"],
    ),
    v(
        &["-m", "lots", "-kernel", "@virt.elf"],
        &["'lots'", "'-m'", "128M, 1G"],
    ),
    v(&["-m", "1T", "-kernel", "@virt.elf"], &["'1T'", "'-m'"]),
    v(
        &["-m", "17G", "-kernel", "@virt.elf"],
        &["'17G'", "'-m'", "at most 16G"],
    ),
    v(
        &["-smp", "0", "-kernel", "@virt.elf"],
        &["'0'", "'-smp'", "1 to 8"],
    ),
    v(
        &["-smp", "9", "-kernel", "@virt.elf"],
        &["'9'", "'-smp'", "1 to 8"],
    ),
    v(
        &["-smp", "two", "-kernel", "@virt.elf"],
        &["'two'", "'-smp'"],
    ),
    v(
        &["-m", "8M", "-kernel", "@virt.elf", "-initrd", "@big.bin"],
        &["initrd '@big.bin'", "too large for RAM", "-m"],
    ),
    v(
        &["-m", "2M", "-kernel", "@virt.elf"],
        &["device tree", "too large for RAM (-m 2M)"],
    ),
    // Kernel.
    s(
        &["-kernel", "/nonexistent/kernel"],
        &[
            "could not load kernel '/nonexistent/kernel'",
            "No such file",
        ],
    ),
    v(
        &["-kernel", "/nonexistent/kernel"],
        &[
            "could not load kernel '/nonexistent/kernel'",
            "No such file",
        ],
    ),
    v(
        &["-kernel", "@a-directory"],
        &["could not load kernel '@a-directory'", "directory"],
    ),
    v(
        &["-kernel", "@empty"],
        &["could not load kernel '@empty'", "empty"],
    ),
    s(
        &["-kernel", "@text"],
        &["could not load kernel '@text'", "not an ELF"],
    ),
    v(
        &["-kernel", "@text"],
        &["kernel '@text'", "not an ELF", "-bios none"],
    ),
    // Other files.
    v(
        &["-kernel", "@virt.elf", "-initrd", "/nonexistent/initrd"],
        &["could not load initrd '/nonexistent/initrd'"],
    ),
    v(
        &["-kernel", "@virt.elf", "-initrd", "@empty"],
        &["could not load initrd '@empty'", "empty"],
    ),
    s(
        &[
            "-M",
            "virt",
            "-bios",
            "/nonexistent/fw.bin",
            "-kernel",
            "@virt.elf",
        ],
        &["could not load firmware '/nonexistent/fw.bin'"],
    ),
    s(
        &["-M", "virt", "-bios", "@empty", "-kernel", "@virt.elf"],
        &["could not load firmware '@empty'", "empty"],
    ),
    v(
        &["-kernel", "@virt.elf", "-dtb", "/nonexistent/x.dtb"],
        &["could not load device tree '/nonexistent/x.dtb'"],
    ),
    v(
        &["-kernel", "@virt.elf", "-dtb", "@text"],
        &[
            "could not load device tree '@text'",
            "flattened device tree",
        ],
    ),
    s(
        &["-M", "virt,dumpdtb=/nonexistent/dir/x.dtb"],
        &["'/nonexistent/dir/x.dtb'"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-serial",
            "file:/nonexistent/dir/out",
        ],
        &["could not open serial output '/nonexistent/dir/out'"],
    ),
    v(
        &["-kernel", "@virt.elf", "-serial", "tty9"],
        &["'tty9'", "'-serial'", "mon:stdio, stdio, null or file:PATH"],
    ),
    // Disks.
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=/nonexistent/disk.img,format=raw,if=virtio",
        ],
        &["could not open disk image '/nonexistent/disk.img'"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@a-directory,format=raw,if=virtio",
        ],
        &["could not open disk image '@a-directory'", "directory"],
    ),
    v(
        &["-kernel", "@virt.elf", "-drive", "format=raw,if=virtio"],
        &["'-drive'", "needs file=PATH"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@disk.img,format=qcow2",
        ],
        &["'-drive'", "only format=raw"],
    ),
    v(
        &["-kernel", "@virt.elf", "-drive", "file=@disk.img,if=scsi"],
        &["'-drive'", "if=virtio and if=none"],
    ),
    v(
        &["-kernel", "@virt.elf", "-drive", "file=@disk.img,bogus=1"],
        &["'-drive'", "unknown drive property 'bogus'"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@disk.img,readonly=maybe",
        ],
        &["'-drive'", "on or off"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@disk.img,format=raw,if=virtio",
            "-drive",
            "file=@disk.img,format=raw,if=virtio",
        ],
        &["disk image '@disk.img'", "already in use"],
    ),
    // Devices and network.
    v(
        &["-kernel", "@virt.elf", "-device", "e1000"],
        &["'e1000'", "'-device'", "virtio-blk-device"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-device",
            "virtio-blk-device,drive=d9",
        ],
        &["-device", "no -drive with id=d9"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-device",
            "virtio-net-device,netdev=n9",
        ],
        &["-device", "no -netdev with id=n9"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-netdev",
            "socket,id=n0,listen=:1",
            "-device",
            "virtio-net-device,netdev=n0,mac=zz",
        ],
        &["'-device'", "mac must be six hex bytes"],
    ),
    v(
        &["-kernel", "@virt.elf", "-netdev", "user,id=n0"],
        &["'-netdev'", "socket, stream or tap"],
    ),
    v(
        &["-kernel", "@virt.elf", "-netdev", "socket,id=n0"],
        &["'-netdev'", "listen=[HOST]:PORT or connect=[HOST]:PORT"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-netdev",
            "socket,id=n0,connect=127.0.0.1:1",
            "-device",
            "virtio-net-device,netdev=n0",
        ],
        &["-netdev n0", "refused"],
    ),
    v(
        &[
            "-kernel",
            "@virt.elf",
            "-netdev",
            "socket,id=n0,listen=no-such-host.invalid:5555",
            "-device",
            "virtio-net-device,netdev=n0",
        ],
        &["-netdev n0"],
    ),
];

#[test]
fn every_bad_input_row_is_one_line_and_status_1() {
    let mut failures = Vec::new();
    for row in ROWS {
        let args = if row.on_virt {
            virt(row.args)
        } else {
            row.args.to_vec()
        };
        if let Err(e) = std::panic::catch_unwind(|| assert_refused(&args, row.needles)) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        ROWS.len(),
        failures.join("\n")
    );
}

#[test]
fn ram_larger_than_the_host_is_refused() {
    // SAFETY: sysconf takes no pointers.
    let host = unsafe {
        libc::sysconf(libc::_SC_PHYS_PAGES) as u64 * libc::sysconf(libc::_SC_PAGESIZE) as u64
    };
    let gib = (host >> 30) + 1;
    if gib <= 16 {
        let m = format!("{gib}G");
        let args = virt(&["-kernel", "@virt.elf", "-m"]);
        let mut args: Vec<&str> = args.to_vec();
        args.push(&m);
        assert_refused(&args, &["'-m'", "more than this host's memory"]);
    } else {
        // This host has more than emu's largest -m: the cap answers instead.
        assert_refused(
            &virt(&["-m", "32G", "-kernel", "@virt.elf"]),
            &["at most 16G"],
        );
    }
}

#[test]
fn an_image_locked_by_another_emu_is_refused() {
    // The first emu spins, holding a read-write image.
    let spin = virt(&[
        "-kernel",
        "@spin.elf",
        "-drive",
        "file=@locked.img,format=raw,if=virtio",
    ]);
    let spin: Vec<String> = spin.iter().map(|a| expand(a)).collect();
    let mut first = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(&spin)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it holds the lock (it opens the image before running): a second emu started
    // earlier would take a shared lock first and make the first one fail instead.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        let f = std::fs::File::open(expand("@locked.img")).unwrap();
        if f.try_lock_shared().is_err() {
            break;
        }
        drop(f);
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut refused = false;
    while start.elapsed() < Duration::from_secs(20) && !refused {
        let o = emu(&virt(&[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@locked.img,format=raw,if=virtio,readonly=on",
        ]));
        refused = o.status.code() == Some(1);
        if refused {
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("already in use by another process"), "{err}");
            assert!(err.contains(&expand("@locked.img")), "{err}");
        }
    }
    let _ = first.kill();
    let _ = first.wait();
    assert!(refused, "a second emu opened an image in use");
    // Once the first emu is gone, the image is free again.
    assert_accepted(&virt(&[
        "-kernel",
        "@virt.elf",
        "-drive",
        "file=@locked.img,format=raw,if=virtio",
    ]));
}

#[test]
fn unreadable_files_name_the_file() {
    use std::os::unix::fs::PermissionsExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        eprintln!("running as root: permissions do not stop reads, nothing to check");
        return;
    }
    let p = fixtures().join("unreadable.elf");
    std::fs::write(&p, finisher_program(0x5555)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    assert_refused(
        &virt(&["-kernel", "@unreadable.elf"]),
        &[
            "could not load kernel '@unreadable.elf'",
            "Permission denied",
        ],
    );
    assert_refused(
        &virt(&[
            "-kernel",
            "@virt.elf",
            "-drive",
            "file=@unreadable.elf,format=raw",
        ]),
        &[
            "could not open disk image '@unreadable.elf'",
            "Permission denied",
        ],
    );
}

#[test]
fn accepted_edge_cases_run_cleanly() {
    // The finisher program itself.
    assert_accepted(&virt(&["-kernel", "@virt.elf"]));
    // A 0-byte image is a disk of 0 sectors; a partial last sector is not exposed (QEMU too).
    assert_accepted(&virt(&[
        "-kernel",
        "@virt.elf",
        "-drive",
        "file=@empty,format=raw",
    ]));
    assert_accepted(&virt(&[
        "-kernel",
        "@virt.elf",
        "-drive",
        "file=@odd.img,format=raw",
    ]));
    // Two read-only users of one image share it.
    assert_accepted(&virt(&[
        "-kernel",
        "@virt.elf",
        "-drive",
        "file=@disk.img,readonly=on",
        "-drive",
        "file=@disk.img,readonly=on",
    ]));
    // The smallest RAM that holds the program and the device tree.
    assert_accepted(&virt(&["-m", "4M", "-kernel", "@virt.elf"]));
    // spike: a program exits through HTIF.
    assert_accepted(&["--arch", "riscv64", "@spike.elf"]);
}
