//! QEMU's command-line grammar from the outside: `help`/`?` listings, options accepted as QEMU
//! spells them (with what they do), one-line errors naming the option for the rest, and the
//! riscv-tests contract (`RISCV_SIM="emu --arch riscv64"`, `+signature-granularity=N`).

mod common;

use emu_firmware::testing::{build_elf, htif_exit_program, rv, Segment, EM_RISCV};
use std::path::PathBuf;
use std::process::Output;

use common::emu;

fn temp_dir(test: &str) -> PathBuf {
    common::temp_dir("qemu_cli", test)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_error(args: &[&str], needles: &[&str]) {
    let o = emu(args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line: {err:?}");
    assert!(err.starts_with("emu: "), "{args:?}: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err:?} does not mention {n:?}");
    }
}

/// An S-mode raw binary that writes `text` through SBI DBCN (EID 0x4442434E, FID 0; SBI spec
/// v2.0 §12) and shuts down through SBI SRST (EID 0x53525354; §10).
fn sbi_print_program(text: &str) -> Vec<u8> {
    let lui = |rd: u32, imm20: u32| ((imm20 & 0xf_ffff) << 12) | (rd << 7) | 0x37;
    let (a0, a1, a2, a6, a7) = (10, 11, 12, 16, 17);
    let mut code = vec![
        rv::auipc(a1, 0),
        0, // addi a1, a1, <offset of the text>
        rv::addi(a0, 0, text.len() as i32),
        rv::addi(a2, 0, 0),
        lui(a7, 0x44424),
        rv::addi(a7, a7, 0x34e),
        rv::addi(a6, 0, 0),
        0x73,
        lui(a7, 0x53525),
        rv::addi(a7, a7, 0x354),
        rv::addi(a0, 0, 0),
        rv::addi(a1, 0, 0),
        0x73,
        rv::SPIN,
    ];
    code[1] = rv::addi(a1, a1, (code.len() * 4) as i32);
    let mut bytes = rv::assemble(&code);
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

#[test]
fn help_listings() {
    for arg in ["help", "?"] {
        for opt in ["-M", "-machine"] {
            let o = emu(&[opt, arg]);
            assert_eq!(o.status.code(), Some(0));
            let out = stdout(&o);
            assert!(out.starts_with("Supported machines are:\n"), "{out}");
            assert!(
                out.lines()
                    .any(|l| l.starts_with("virt ") && l.ends_with("RISC-V VirtIO board")),
                "{out}"
            );
            assert!(out.lines().any(|l| l.starts_with("spike ")), "{out}");
        }
        let o = emu(&["-cpu", arg]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("max") && stdout(&o).contains("rv64"));
        let o = emu(&["-device", arg]);
        assert_eq!(o.status.code(), Some(0));
        for d in [
            "virtio-blk-device",
            "virtio-net-device",
            "virtio-rng-device",
        ] {
            assert!(stdout(&o).contains(d), "{}", stdout(&o));
        }
    }
    let o = emu(&["--help"]);
    assert!(stdout(&o).contains("QEMU-compatible options"));
    let o = emu(&["--version"]);
    assert!(stdout(&o).starts_with("emu "));
}

#[test]
fn qemu_options_are_accepted_and_do_what_they_say() {
    let dir = temp_dir("accepted");
    let prog = dir.join("exit0.elf");
    std::fs::write(&prog, htif_exit_program(0)).unwrap();
    let prog = prog.to_str().unwrap();
    // Options that change nothing emu does still run the program to its HTIF exit code.
    for extra in [
        &["-accel", "tcg"][..],
        &["-accel", "tcg,thread=single"],
        &["-machine", "spike,accel=tcg"],
        &["-cpu", "rv64"],
        &["-cpu", "max,zicsr=on,c=on,v=off,h=off"],
        &["-icount", "shift=0"],
        &["-icount", "auto"],
        &["-global", "kvm-pit.lost_tick_policy=discard"],
        &["-nodefaults"],
        &["-no-shutdown"],
        &["-display", "none"],
        &["-smp", "1"],
        &["-smp", "cpus=1,sockets=1,cores=1,threads=1,maxcpus=1"],
        &["-m", "64M"],
        &["-m", "1G"],
        &["-m", "65536K"],
        &["-bios", "none"],
    ] {
        let args = [extra, &["-kernel", prog]].concat();
        let o = emu(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

#[test]
fn chardev_and_serial_backends() {
    let dir = temp_dir("chardev");
    let prog = dir.join("hello.flat");
    std::fs::write(&prog, sbi_print_program("hello, console\n")).unwrap();
    let prog = prog.to_str().unwrap();
    let out = dir.join("console.txt");
    let chardev = format!("file,id=c0,path={}", out.display());
    let o = emu(&[
        "-M",
        "virt",
        "-chardev",
        &chardev,
        "-serial",
        "chardev:c0",
        "-kernel",
        prog,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello, console\n");

    for serial in ["stdio", "mon:stdio"] {
        let o = emu(&["-M", "virt", "-serial", serial, "-kernel", prog]);
        assert_eq!(stdout(&o), "hello, console\n", "-serial {serial}");
    }
    let o = emu(&[
        "-M",
        "virt",
        "-chardev",
        "stdio,id=s,mux=on",
        "-serial",
        "chardev:s",
        "-kernel",
        prog,
    ]);
    assert_eq!(stdout(&o), "hello, console\n");
    let o = emu(&["-M", "virt", "-serial", "null", "-kernel", prog]);
    assert_eq!((o.status.code(), stdout(&o)), (Some(0), String::new()));
    let o = emu(&["-M", "virt", "-nographic", "-kernel", prog]);
    assert_eq!(stdout(&o), "hello, console\n");
}

#[test]
fn unknown_or_unavailable_options_are_one_line_errors() {
    let k = ["-kernel", "x.elf"];
    let cases: &[(&[&str], &[&str])] = &[
        (&["-frobnicate"], &["'-frobnicate'"]),
        (&["-usb"], &["'-usb'"]),
        (&["--arch", "aarch64"], &["'--arch'", "not built yet"]),
        (&["--arch", "x86_64"], &["'--arch'", "not built yet"]),
        (&["--arch", "mips"], &["'--arch'", "riscv64"]),
        (&["-accel", "kvm"], &["'-accel'", "kvm", "not available"]),
        (&["-accel", "hvf"], &["'-accel'", "hvf", "not available"]),
        (&["-enable-kvm"], &["'-enable-kvm'", "not available"]),
        (
            &["-machine", "virt,accel=kvm"],
            &["'-machine'", "not available"],
        ),
        (&["-M", "pc"], &["'-M'", "'pc'"]),
        (&["-cpu", "cortex-a57"], &["'-cpu'", "rv64"]),
        (&["-cpu", "max,h=on"], &["'-cpu'", "'h'"]),
        (&["-cpu", "max,f=off"], &["'-cpu'", "'f'"]),
        (&["-cpu", "max,c=maybe"], &["'-cpu'", "on or off"]),
        (&["-m", "12X"], &["'-m'"]),
        (&["-smp", "2,maxcpus=4"], &["'-smp'", "maxcpus"]),
        (&["-smp", "4,sockets=3"], &["'-smp'"]),
        (&["-smp", "9"], &["'-smp'"]),
        (&["-smp", "2,nodes=2"], &["'-smp'", "nodes"]),
        (
            &["-global", "nodot=1"],
            &["'-global'", "DRIVER.PROPERTY=VALUE"],
        ),
        (&["-icount", "shift=x"], &["'-icount'"]),
        (&["-icount", "rr=record"], &["'-icount'"]),
        (&["-chardev", "socket,id=a"], &["'-chardev'"]),
        (&["-chardev", "stdio"], &["'-chardev'", "id="]),
        (&["-serial", "chardev:nope"], &["'-serial'", "nope"]),
        (&["-serial", "vc"], &["'-serial'"]),
        (&["-display", "gtk"], &["'-display'"]),
        (&["-device", "e1000"], &["'-device'", "e1000"]),
        (
            &["-device", "virtio-rng-device,speed=3"],
            &["'-device'", "speed"],
        ),
        (&["-drive", "file=a,format=qcow2"], &["'-drive'", "raw"]),
        (&["-netdev", "user,id=n"], &["'-netdev'"]),
        (&["-nodefaults=1"], &["'-nodefaults=1'"]),
    ];
    for (opts, needles) in cases {
        let args = [opts, &k[..]].concat();
        assert_one_line_error(&args, needles);
    }
    // Errors name the option before any file is opened.
    assert_one_line_error(&["-kernel"], &["'-kernel'"]);
    assert_one_line_error(&["-kernel", "x.elf", "-d"], &["'-d'", "needs a value"]);
}

#[test]
fn signature_granularity_variants() {
    // riscv-arch-test's format: one hex word per line, N bytes each, most-significant byte
    // (digit) first, the region begin_signature..end_signature in address order.
    let dir = temp_dir("signature");
    let code = rv::assemble(&[
        rv::auipc(5, 1),
        rv::addi(6, 0, 1),
        rv::sd(6, 5, 0),
        rv::SPIN,
    ]);
    let data: Vec<u8> = (0x11..=0x20).collect(); // 16 bytes
    let seg = |addr, bytes| Segment {
        addr,
        bytes,
        memsz: 0x1000,
    };
    let elf = build_elf(
        EM_RISCV,
        0x8000_0000,
        &[
            seg(0x8000_0000, &code),
            seg(0x8000_1000, &[0; 16]),
            seg(0x8000_2000, &data),
        ],
        &[
            ("tohost", 0x8000_1000),
            ("begin_signature", 0x8000_2000),
            ("end_signature", 0x8000_2010),
        ],
    );
    let p = dir.join("sig.elf");
    std::fs::write(&p, elf).unwrap();
    let p = p.to_str().unwrap();
    let expect = |g: usize| -> String {
        data.chunks(g)
            .map(|c| {
                c.iter()
                    .rev()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    };
    assert_eq!(expect(4).lines().next(), Some("14131211"));
    for g in [1usize, 2, 4, 8, 16] {
        let sig = dir.join(format!("sig{g}.txt"));
        // RISCV_SIM="emu --arch riscv64", with Spike's spellings.
        let sig_arg = format!("+signature={}", sig.display());
        let gran_arg = format!("+signature-granularity={g}");
        let o = emu(&[
            "--arch",
            "riscv64",
            "--isa=rv64gc",
            &sig_arg,
            &gran_arg,
            "--max-insns",
            "1000",
            p,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let text = std::fs::read_to_string(&sig).unwrap();
        assert_eq!(text, expect(g), "granularity {g}");
        assert!(text.lines().all(|l| l.len() == 2 * g));
    }
    assert_one_line_error(
        &["+signature-granularity=3", p],
        &["'--signature-granularity'", "power of two"],
    );
}
