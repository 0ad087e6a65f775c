//! The `emu` binary from the outside: bad input is one clear line on stderr and exit status 1,
//! never a panic; programs exit with their HTIF code; `--strict` and `--max-insns` work.
//! The guest programs are built in memory (emu_firmware::testing), so these tests need no
//! cross compiler.

use emu_firmware::testing::{
    build_elf, htif_exit_program, rv, trap_exit_program, Segment, EM_RISCV,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn emu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emu"))
        .args(args)
        .output()
        .expect("could not start the emu binary")
}

/// A fresh directory for one test's files.
fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit status 1 and exactly one line on stderr, `emu: ...`, containing every `needle`.
fn assert_one_line_error(what: &str, o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: status {:?}, stderr {err:?}",
        o.status
    );
    assert!(!err.contains("panicked"), "{what}: panicked: {err}");
    assert_eq!(err.lines().count(), 1, "{what}: not one line: {err:?}");
    assert!(err.starts_with("emu: "), "{what}: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{what}: {err:?} does not mention {n:?}");
    }
}

#[test]
fn bad_input_is_one_line_and_status_1() {
    let dir = temp_dir("bad_input");
    let good = htif_exit_program(0);
    let missing = dir.join("missing.elf").to_str().unwrap().to_string();
    let unreadable = dir.join("a-directory.elf");
    std::fs::create_dir_all(&unreadable).unwrap();
    let unreadable = unreadable.to_str().unwrap().to_string();
    let truncated = write(&dir, "truncated.elf", &good[..100]);
    let good_path = write(&dir, "good.elf", &good);
    let x86 = write(
        &dir,
        "x86.elf",
        &build_elf(62, 0x8000_0000, &[], &[("tohost", 0x8000_1000)]),
    );
    let mut elf32 = good.clone();
    elf32[4] = 1;
    let elf32 = write(&dir, "elf32.elf", &elf32);
    let text = write(&dir, "script.sh", b"#!/bin/sh\necho hi\n");
    let empty = write(&dir, "empty.elf", b"");
    let low = write(
        &dir,
        "low.elf",
        &build_elf(
            EM_RISCV,
            0x1000,
            &[Segment {
                addr: 0x1000,
                bytes: &[0x6f, 0, 0, 0],
                memsz: 4,
            }],
            &[],
        ),
    );

    let table: &[(&str, Vec<&str>, Vec<&str>)] = &[
        (
            "missing file",
            vec![&missing],
            vec!["missing.elf", "No such file or directory"],
        ),
        (
            "a directory",
            vec![&unreadable],
            vec!["a-directory.elf", "Is a directory"],
        ),
        (
            "truncated ELF",
            vec![&truncated],
            vec!["truncated.elf", "truncated"],
        ),
        (
            "x86-64 ELF",
            vec![&x86],
            vec!["x86.elf", "not a RISC-V 64-bit"],
        ),
        ("ELF32", vec![&elf32], vec!["elf32.elf", "32-bit"]),
        ("not an ELF", vec![&text], vec!["script.sh", "not an ELF"]),
        ("empty file", vec![&empty], vec!["empty.elf", "not an ELF"]),
        (
            "segment below RAM",
            vec![&low],
            vec!["low.elf", "outside guest RAM"],
        ),
        (
            "unknown option",
            vec!["--frobnicate", &missing],
            vec!["'--frobnicate'"],
        ),
        (
            "unknown single-dash option",
            vec!["-smp", "2", &missing],
            vec!["'-smp'"],
        ),
        ("bad -m", vec!["-m", "lots", &missing], vec!["'-m'", "lots"]),
        ("zero -m", vec!["-m", "0", &missing], vec!["'-m'"]),
        ("huge -m", vec!["-m", "9999G", &missing], vec!["'-m'"]),
        (
            "-m too small for the program",
            vec!["-m", "4K", &good_path],
            vec!["good.elf", "outside guest RAM"],
        ),
        (
            "bad --engine",
            vec!["--engine", "fast", &missing],
            vec!["'--engine'", "fast"],
        ),
        (
            "bad --arch",
            vec!["--arch", "mips", &missing],
            vec!["'--arch'", "mips"],
        ),
        ("bad --isa", vec!["--isa=rv32gc", &missing], vec!["'--isa'"]),
        (
            "bad -bios",
            vec!["-bios", "opensbi.bin", "-kernel", &missing],
            vec!["'-bios'"],
        ),
        ("-kernel without value", vec!["-kernel"], vec!["'-kernel'"]),
        (
            "bad --max-insns",
            vec!["--max-insns", "many", &missing],
            vec!["'--max-insns'"],
        ),
        ("no program", vec!["--arch", "riscv64"], vec!["no program"]),
    ];
    for (what, args, needles) in table {
        let mut full = vec!["--arch", "riscv64"];
        full.extend(args.iter().copied());
        assert_one_line_error(what, &emu(&full), needles);
    }

    // A file without read permission (meaningless as root, who reads it anyway).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let secret = write(&dir, "secret.elf", &good);
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&secret).is_err() {
            let o = emu(&["--arch", "riscv64", &secret]);
            assert_one_line_error("unreadable", &o, &["secret.elf", "Permission denied"]);
        }
    }
}

#[test]
fn help_and_version() {
    let o = emu(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("usage: emu"));
    let o = emu(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("emu "));
}

#[test]
fn exit_status_is_the_htif_code_in_both_styles() {
    let dir = temp_dir("exit_status");
    let pass = write(&dir, "pass.elf", &htif_exit_program(0));
    let fail = write(&dir, "fail.elf", &htif_exit_program(3));
    for engine in ["interp", "jit", "tiered"] {
        let o = emu(&[
            "--arch", "riscv64", "--engine", engine, "-bios", "none", "-kernel", &pass,
        ]);
        assert_eq!(o.status.code(), Some(0), "{engine}: {}", stderr(&o));
        let o = emu(&[
            "--arch",
            "riscv64",
            "--engine",
            engine,
            "--isa=rv64gc",
            &fail,
        ]);
        assert_eq!(o.status.code(), Some(3), "{engine}: {}", stderr(&o));
        assert_eq!(stderr(&o), "*** FAILED *** (tohost = 3)\n");
    }
}

#[test]
fn max_insns_stops_a_program_that_never_exits() {
    let dir = temp_dir("max_insns");
    // Spins at its entry point forever.
    let spin = write(
        &dir,
        "spin.elf",
        &build_elf(
            EM_RISCV,
            0x8000_0000,
            &[Segment {
                addr: 0x8000_0000,
                bytes: &rv::assemble(&[rv::SPIN]),
                memsz: 0x1000,
            }],
            &[("tohost", 0x8000_0800)],
        ),
    );
    let o = emu(&["--arch", "riscv64", "--max-insns", "100000", &spin]);
    assert_one_line_error("spin", &o, &["100000", "--max-insns"]);

    // Jumps to address 0, where fetch faults forever (mtvec = 0): nothing retires, and the
    // guard must still end the run.
    let null = write(&dir, "null.elf", &htif_exit_program_jumping_to_zero());
    let o = emu(&["--arch", "riscv64", "--max-insns", "5000", &null]);
    assert_one_line_error("trap loop", &o, &["5000", "--max-insns"]);
}

/// `jalr x0, 0(x0)`, with HTIF symbols.
fn htif_exit_program_jumping_to_zero() -> Vec<u8> {
    let code = rv::assemble(&[rv::itype(0x67, 0, 0, 0, 0)]);
    build_elf(
        EM_RISCV,
        0x8000_0000,
        &[Segment {
            addr: 0x8000_0000,
            bytes: &code,
            memsz: 0x1000,
        }],
        &[("tohost", 0x8000_0800)],
    )
}

#[test]
fn wfi_with_nothing_to_wait_for_is_an_error() {
    let dir = temp_dir("wfi");
    let p = write(&dir, "wfi.elf", &trap_exit_program(&[rv::WFI]));
    let o = emu(&["--arch", "riscv64", "--max-insns", "100000", &p]);
    assert_one_line_error("wfi", &o, &["waiting for an interrupt that can never come"]);
}

#[test]
fn strict_mode_makes_unimplemented_encodings_host_errors() {
    let dir = temp_dir("strict");
    let p = write(&dir, "vector.elf", &trap_exit_program(&[rv::VSETVLI_ZERO]));
    // Without --strict the gap is logged once (DESIGN.md §9), the guest takes an
    // illegal-instruction trap (mcause 2) and its handler exits with that code.
    let o = emu(&["--arch", "riscv64", "--max-insns", "100000", &p]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("unimplemented instruction 0x00007057 at pc 0x8000000c")
            .count(),
        1,
        "{err}"
    );
    assert!(err.ends_with("*** FAILED *** (tohost = 2)\n"), "{err}");
    // With --strict, emu stops and names the PC and the encoding.
    let o = emu(&[
        "--arch",
        "riscv64",
        "--log",
        "off",
        "--strict",
        "--max-insns",
        "100000",
        &p,
    ]);
    assert_one_line_error(
        "strict",
        &o,
        &[
            "unimplemented instruction",
            "0x00007057",
            "0x8000000c",
            "--strict",
        ],
    );
    // The last line says it with the default log level too.
    let o = emu(&["--arch", "riscv64", "--strict", &p]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err.lines().last(),
        Some("emu: unimplemented instruction 0x00007057 at pc 0x8000000c (--strict)"),
        "{err}"
    );
}

#[test]
fn signature_is_dumped_in_spike_format() {
    let dir = temp_dir("signature");
    let code = rv::assemble(&[
        rv::auipc(5, 1),
        rv::addi(6, 0, 1),
        rv::sd(6, 5, 0),
        rv::SPIN,
    ]);
    let data: Vec<u8> = (1..=8).collect();
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
            ("end_signature", 0x8000_2008),
        ],
    );
    let p = write(&dir, "sig.elf", &elf);
    let sig = dir.join("sig.txt");
    let sig_arg = format!("+signature={}", sig.display());
    let o = emu(&["--arch", "riscv64", "--max-insns", "1000", &sig_arg, &p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(&sig).unwrap(),
        "04030201\n08070605\n"
    );

    // A program without the symbols: one-line error.
    let plain = write(&dir, "plain.elf", &htif_exit_program(0));
    let o = emu(&["--arch", "riscv64", "--signature", "/dev/null", &plain]);
    assert_one_line_error("no signature", &o, &["plain.elf", "begin_signature"]);
}

#[test]
fn trace_prints_each_block() {
    let dir = temp_dir("trace");
    let p = write(&dir, "exit0.elf", &htif_exit_program(0));
    let o = emu(&["--arch", "riscv64", "--trace", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.starts_with("emu: trace: pc=0x80000000 insns=0 exit="),
        "{err}"
    );
}
