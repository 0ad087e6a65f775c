//! The `virt` board from the outside, without a Linux guest: bad files are one line naming the
//! file and exit status 1, a disk image in use by another emu is refused, the sifive_test
//! finisher sets emu's exit status, and `-machine dumpdtb` writes QEMU's device-tree layout.

mod common;

use emu_firmware::testing::{build_elf, rv, Segment, EM_RISCV};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::emu;

fn temp_dir(test: &str) -> PathBuf {
    common::temp_dir("virt_cli", test)
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// `sw rs2, imm(rs1)` (Unprivileged ISA §2.6, S-type).
fn sw(rs2: u32, rs1: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (0b010 << 12) | ((imm & 0x1f) << 7) | 0x23
}

/// An M-mode program (for `-bios none`) that writes `value` to the sifive_test finisher at
/// 0x10_0000, then spins. `value` < 2^27.
fn finisher_program(value: u32) -> Vec<u8> {
    const T0: u32 = 5;
    const T1: u32 = 6;
    let code = rv::assemble(&[
        rv::addi(T0, 0, 1),
        rv::slli(T0, T0, 20),
        rv::addi(T1, 0, (value >> 16) as i32),
        rv::slli(T1, T1, 12),
        rv::ori(T1, T1, ((value >> 4) & 0xfff) as i32),
        rv::slli(T1, T1, 4),
        rv::ori(T1, T1, (value & 0xf) as i32),
        sw(T1, T0, 0),
        rv::SPIN,
    ]);
    elf(&code)
}

fn elf(code: &[u8]) -> Vec<u8> {
    build_elf(
        EM_RISCV,
        0x8000_0000,
        &[Segment {
            addr: 0x8000_0000,
            bytes: code,
            memsz: 0x1000,
        }],
        &[],
    )
}

fn assert_one_line_error(what: &str, o: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(err.starts_with("emu: "), "{what}: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{what}: {err:?} does not mention {n:?}");
    }
}

#[test]
fn finisher_sets_the_exit_status() {
    let dir = temp_dir("finisher");
    let pass = path(&dir, "pass.elf");
    std::fs::write(&pass, finisher_program(0x5555)).unwrap();
    let fail = path(&dir, "fail.elf");
    std::fs::write(&fail, finisher_program((3 << 16) | 0x3333)).unwrap();
    for (prog, status) in [(&pass, 0), (&fail, 3)] {
        for engine in ["interp", "jit"] {
            let o = emu(&[
                "-M",
                "virt",
                "-bios",
                "none",
                "-kernel",
                prog,
                "--engine",
                engine,
                "-serial",
                "null",
                "--max-insns",
                "100000",
            ]);
            assert_eq!(
                o.status.code(),
                Some(status),
                "{prog} on {engine}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn bad_files_are_one_line_naming_the_file() {
    let dir = temp_dir("bad_files");
    let good = path(&dir, "spin.elf");
    std::fs::write(&good, elf(&rv::assemble(&[rv::SPIN]))).unwrap();
    let missing = |n: &str| path(&dir, n);
    let (k, i, d, f) = (
        missing("no-kernel"),
        missing("no-initrd"),
        missing("no-disk.img"),
        missing("no-firmware.bin"),
    );
    let drive = format!("file={d},format=raw,if=virtio");
    let table: Vec<(&str, Vec<&str>, Vec<&str>)> = vec![
        (
            "missing kernel",
            vec!["-kernel", &k],
            vec!["could not load kernel", "no-kernel", "No such file"],
        ),
        (
            "missing initrd",
            vec!["-bios", "none", "-kernel", &good, "-initrd", &i],
            vec!["could not load initrd", "no-initrd", "No such file"],
        ),
        (
            "missing disk image",
            vec!["-bios", "none", "-kernel", &good, "-drive", &drive],
            vec!["no-disk.img", "No such file"],
        ),
        (
            "missing firmware",
            vec!["-bios", &f, "-kernel", &good],
            vec!["could not load firmware", "no-firmware.bin", "No such file"],
        ),
        (
            "a directory as kernel",
            vec!["-kernel", dir.to_str().unwrap()],
            vec!["could not load kernel", "virt_cli"],
        ),
        (
            "unknown -device",
            vec!["-kernel", &good, "-device", "e1000"],
            vec!["'-device'", "e1000"],
        ),
        (
            "-device without its drive",
            vec!["-kernel", &good, "-device", "virtio-blk-device,drive=d9"],
            vec!["d9"],
        ),
        (
            "bad -smp",
            vec!["-kernel", &good, "-smp", "0"],
            vec!["'-smp'"],
        ),
    ];
    for (what, args, needles) in table {
        let mut full = vec!["--arch", "riscv64", "-M", "virt", "-serial", "null"];
        full.extend(args);
        assert_one_line_error(what, &emu(&full), &needles);
    }
}

#[test]
fn a_disk_image_in_use_is_refused() {
    let dir = temp_dir("locked");
    let spin = path(&dir, "spin.elf");
    std::fs::write(&spin, elf(&rv::assemble(&[rv::SPIN]))).unwrap();
    let disk = path(&dir, "disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let drive = format!("file={disk},format=raw,if=virtio");
    let args = [
        "-M", "virt", "-bios", "none", "-kernel", &spin, "-drive", &drive, "-serial", "null",
    ];
    // Killed on every exit from this test, failing assertions included: the guest spins forever.
    let mut first = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_emu"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let first = &mut first.0;
    // The first emu holds the lock from the moment its board is built: wait for that (our own
    // try_lock fails), then start the second.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = first.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(first.stderr.as_mut().unwrap(), &mut err);
            panic!("the first emu exited ({status}): {err}");
        }
        let f = std::fs::File::open(&disk).unwrap();
        match f.try_lock_shared() {
            Ok(()) => drop(f),
            Err(_) => break,
        }
        assert!(
            Instant::now() < deadline,
            "the first emu never locked the disk"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // An instruction limit, so that the second ends even if it wrongly got the disk.
    let mut second = args.to_vec();
    second.extend(["--max-insns", "1000000"]);
    let o = emu(&second);
    assert_one_line_error("locked disk", &o, &["disk.img", "in use"]);
}

/// A child process killed and reaped when dropped, so a failing test leaves no emu behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Node names of a device tree blob, by walking its structure block (Devicetree spec §5.4).
fn node_names(blob: &[u8]) -> Vec<String> {
    let be32 = |o: usize| u32::from_be_bytes(blob[o..o + 4].try_into().unwrap()) as usize;
    assert_eq!(be32(0), 0xd00d_feed, "FDT magic");
    let (off, size) = (be32(8), be32(36));
    let mut names = Vec::new();
    let mut depth = Vec::new();
    let mut p = off;
    while p < off + size {
        let tok = be32(p);
        p += 4;
        match tok {
            1 => {
                let end = p + blob[p..].iter().position(|&b| b == 0).unwrap();
                let name = String::from_utf8_lossy(&blob[p..end]).into_owned();
                depth.push(name);
                names.push(depth.join("/"));
                p = (end + 1 + 3) & !3;
            }
            2 => {
                depth.pop();
            }
            3 => {
                let len = be32(p);
                p = (p + 8 + len + 3) & !3;
            }
            4 => {}
            9 => break,
            t => panic!("bad FDT token {t}"),
        }
    }
    names.sort();
    names
}

#[test]
fn dumpdtb_has_qemus_nodes() {
    let dir = temp_dir("dumpdtb");
    let ours = path(&dir, "emu.dtb");
    let o = emu(&[
        "-M",
        &format!("virt,dumpdtb={ours}"),
        "-smp",
        "2",
        "-m",
        "256M",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let blob = std::fs::read(&ours).unwrap();
    let names = node_names(&blob);
    // Packed as QEMU packs its tree (`fdt_pack`): the guest checksums `totalsize` bytes at boot.
    let total = |b: &[u8]| u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
    assert!(total(&blob) < 16 << 10, "totalsize {}", total(&blob));
    for n in [
        "/soc/serial@10000000",
        "/soc/plic@c000000",
        "/soc/clint@2000000",
        "/soc/rtc@101000",
        "/soc/test@100000",
        "/soc/virtio_mmio@10001000",
        "/soc/virtio_mmio@10008000",
        "/cpus/cpu@1/interrupt-controller",
        "/memory@80000000",
        "/chosen",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    // The same node names as QEMU 7.2's virt board, when QEMU is installed (.ci/run installs it).
    let theirs = path(&dir, "qemu.dtb");
    let q = Command::new("qemu-system-riscv64")
        .args([
            "-M",
            &format!("virt,dumpdtb={theirs}"),
            "-smp",
            "2",
            "-m",
            "256M",
            "-nographic",
        ])
        .output();
    if let Ok(q) = q {
        if q.status.success() {
            let theirs = std::fs::read(&theirs).unwrap();
            assert!(
                total(&theirs) < 16 << 10,
                "QEMU's totalsize {}",
                total(&theirs)
            );
            let qemu = node_names(&theirs);
            // QEMU-only nodes: its PCIe host, flash, fw-cfg, platform bus and PMU.
            let skip = ["pci@", "flash@", "fw-cfg@", "platform-bus@", "pmu"];
            for n in qemu.iter().filter(|n| !skip.iter().any(|s| n.contains(s))) {
                assert!(names.contains(n), "QEMU's node {n} missing from emu's tree");
            }
        }
    }
}

#[test]
fn no_reboot_ends_on_a_guest_reset() {
    let dir = temp_dir("no_reboot");
    let reset = path(&dir, "reset.elf");
    std::fs::write(&reset, finisher_program(0x7777)).unwrap();
    let o = emu(&[
        "-M",
        "virt",
        "-bios",
        "none",
        "-kernel",
        &reset,
        "-serial",
        "null",
        "-no-reboot",
        "--max-insns",
        "100000",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn ctrl_a_x_quits_and_ctrl_a_h_lists_the_keys() {
    use std::io::Write;
    let dir = temp_dir("ctrl_a");
    let spin = path(&dir, "spin.elf");
    std::fs::write(&spin, elf(&rv::assemble(&[rv::SPIN]))).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            &spin,
            "-serial",
            "mon:stdio",
            "--max-insns",
            "100000000000",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\x01h\x01x")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("C-a x    exit emu"), "{out:?}");
}

#[test]
fn ctrl_a_x_quits_a_guest_stuck_in_a_trap_loop() {
    use std::io::Write;
    const T0: u32 = 5;
    let dir = temp_dir("trap_loop");
    // mtvec = 0x1000 (nothing there), then jump there: every trap entry faults again.
    let prog = path(&dir, "trap-loop.elf");
    std::fs::write(
        &prog,
        elf(&rv::assemble(&[
            rv::addi(T0, 0, 1),
            rv::slli(T0, T0, 12),
            rv::csrw(rv::CSR_MTVEC, T0),
            rv::itype(0x67, 0, 0, T0, 0),
        ])),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_emu"))
        .args([
            "-M",
            "virt",
            "-bios",
            "none",
            "-kernel",
            &prog,
            "-serial",
            "mon:stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child.stdin.take().unwrap().write_all(b"\x01x").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("emu did not quit on Ctrl-A x while the guest loops on traps");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}
