//! emu versus QEMU on random RV64 instruction streams.
//!
//! Each program is generated from a seed: a prologue that loads random values into x1..x31 and
//! f0..f31, a random stream of integer ALU (RV64I, M, Zba, Zbb, Zbc, Zbs), loads and stores to
//! a scratch buffer (aligned and misaligned), aligned AMOs and LR/SC pairs (A), forward branches
//! and jumps, and F/D operations with a static rounding mode (the assembler compresses what it
//! can, so RVC is exercised too), with up to two counted loops of random instructions that run
//! long enough for the tiered engine to compile them, then an epilogue that prints x1..x31, f0..f31, fcsr, the trap
//! count and the scratch buffer as hex through HTIF and exits 0. The same ELF runs on
//! `qemu-system-riscv64 -M spike` and on emu; their outputs must be identical.
//!
//! Environment: `EMU_DIFF_COUNT` (programs, default 30), `EMU_DIFF_SEED` (first seed, default
//! 0x5eed), `EMU_DIFF_LEN` (instructions per program, default 300), `EMU_DIFF_ENGINES` (comma
//! list of `--engine` values to run emu with, e.g. `interp,jit`; default: emu's default engine).
//! A failure prints the seed; rerun one program with `EMU_DIFF_SEED=<seed> EMU_DIFF_COUNT=1`.
//!
//! The cross compiler (Debian `gcc-riscv64-unknown-elf`) and QEMU (`qemu-system-misc`) are
//! required: CI installs both, so their absence is a failure with instructions, not a skip.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CC: &str = "riscv64-unknown-elf-gcc";
const QEMU: &str = "qemu-system-riscv64";
/// Same flags as test-roms/riscv64/Makefile.
const CFLAGS: &[&str] = &[
    "-march=rv64gc_zba_zbb_zbc_zbs_zicsr_zifencei",
    "-mabi=lp64d",
    "-nostdlib",
    "-nostartfiles",
    "-static",
    "-mcmodel=medany",
    "-Wl,--no-warn-rwx-segments",
];
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes in the scratch buffer the random loads and stores use (based at x27).
const SCRATCH_BYTES: usize = 256;
/// Base register of the scratch buffer; the stream never writes it.
const BASE_REG: usize = 27;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------
// Program generation
// ---------------------------------------------------------------------------------------------

/// Integer register-register operations (rd, rs1, rs2): RV64I, M, Zba, Zbb, Zbs, Zbc.
const RR_OPS: &[&str] = &[
    "add",
    "sub",
    "sll",
    "slt",
    "sltu",
    "xor",
    "srl",
    "sra",
    "or",
    "and",
    "addw",
    "subw",
    "sllw",
    "srlw",
    "sraw",
    "mul",
    "mulh",
    "mulhsu",
    "mulhu",
    "div",
    "divu",
    "rem",
    "remu",
    "mulw",
    "divw",
    "divuw",
    "remw",
    "remuw",
    "sh1add",
    "sh2add",
    "sh3add",
    "add.uw",
    "sh1add.uw",
    "sh2add.uw",
    "sh3add.uw",
    "andn",
    "orn",
    "xnor",
    "max",
    "maxu",
    "min",
    "minu",
    "rol",
    "ror",
    "rolw",
    "rorw",
    "bclr",
    "bset",
    "binv",
    "bext",
];
/// Unary operations (rd, rs1). `ctzw` is left out: for a zero low word QEMU 7.2 returns 63
/// instead of 32 (see test-roms/riscv64/rvzicond.S), which would make the comparison useless.
const R_OPS: &[&str] = &[
    "clz", "ctz", "cpop", "clzw", "cpopw", "sext.b", "sext.h", "zext.h", "orc.b", "rev8",
];
/// Register-immediate operations with a 12-bit signed immediate.
const I_OPS: &[&str] = &["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"];
/// Shift-immediate operations and the largest shift amount each accepts.
const SHIFT_OPS: &[(&str, u32)] = &[
    ("slli", 63),
    ("srli", 63),
    ("srai", 63),
    ("slliw", 31),
    ("srliw", 31),
    ("sraiw", 31),
    ("rori", 63),
    ("roriw", 31),
    ("slli.uw", 63),
    ("bclri", 63),
    ("bseti", 63),
    ("binvi", 63),
    ("bexti", 63),
];
const AMOS: &[&str] = &[
    "amoswap", "amoadd", "amoand", "amoor", "amoxor", "amomin", "amomax", "amominu", "amomaxu",
];
/// Counter of the generated counted loops; only the loops write it.
const LOOP_REG: usize = 25;
/// Iterations of a generated loop: far above the engine's tier-up threshold (1000 block runs),
/// so that the tiered engine's background compile finishes and most rounds run compiled code.
const LOOP_ITERS: std::ops::Range<u32> = 20_000..30_000;
/// Holds the address of AMOs and LR/SC (overwritten right before each use).
const AMO_ADDR_REG: usize = 26;
const BRANCHES: &[&str] = &["beq", "bne", "blt", "bge", "bltu", "bgeu"];
const LOADS: &[(&str, usize)] = &[
    ("lb", 1),
    ("lbu", 1),
    ("lh", 2),
    ("lhu", 2),
    ("lw", 4),
    ("lwu", 4),
    ("ld", 8),
];
const STORES: &[(&str, usize)] = &[("sb", 1), ("sh", 2), ("sw", 4), ("sd", 8)];
const RMS: &[&str] = &["rne", "rtz", "rdn", "rup", "rmm"];
/// FP binary ops taking a rounding mode, per precision suffix.
const FP_RM2: &[&str] = &["fadd", "fsub", "fmul", "fdiv"];
const FP_NR2: &[&str] = &["fmin", "fmax", "fsgnj", "fsgnjn", "fsgnjx"];
const FP_FMA: &[&str] = &["fmadd", "fmsub", "fnmadd", "fnmsub"];
const FP_CMP: &[&str] = &["feq", "flt", "fle"];

/// Interesting 64-bit integers, mixed into the random register values.
const SPECIAL_INTS: &[u64] = &[
    0,
    1,
    u64::MAX,
    0x8000_0000_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0xffff_ffff_8000_0000,
    0x1_0000_0000,
    63,
    64,
    32,
];
/// Interesting doubles (bit patterns): zeros, ones, infinities, NaNs, subnormals, extremes.
const SPECIAL_F64: &[u64] = &[
    0,
    0x8000_0000_0000_0000,
    0x3ff0_0000_0000_0000,
    0xbff8_0000_0000_0000,
    0x7ff0_0000_0000_0000,
    0xfff0_0000_0000_0000,
    0x7ff8_0000_0000_0000,
    0x7ff0_0000_0000_0001,
    0x0000_0000_0000_0001,
    0x000f_ffff_ffff_ffff,
    0x7fef_ffff_ffff_ffff,
    0x41e0_0000_0000_0000,
    0xc3e0_0000_0000_0000,
];
/// Interesting singles (bit patterns), NaN-boxed when used.
const SPECIAL_F32: &[u32] = &[
    0,
    0x8000_0000,
    0x3f80_0000,
    0xbfc0_0000,
    0x7f80_0000,
    0xff80_0000,
    0x7fc0_0000,
    0x7f80_0001,
    0x0000_0001,
    0x007f_ffff,
    0x7f7f_ffff,
    0x4f00_0000,
    0xcf00_0000,
];

fn random_int(rng: &mut StdRng) -> u64 {
    match rng.gen_range(0..4) {
        0 => *SPECIAL_INTS.choose(rng).unwrap_or(&0),
        1 => rng.gen_range(0..256u64).wrapping_sub(128),
        _ => rng.gen(),
    }
}

fn random_fp_bits(rng: &mut StdRng) -> u64 {
    let boxed = |v: u32| 0xffff_ffff_0000_0000 | u64::from(v);
    match rng.gen_range(0..6) {
        0 => *SPECIAL_F64.choose(rng).unwrap_or(&0),
        1 => boxed(*SPECIAL_F32.choose(rng).unwrap_or(&0)),
        // an ordinary double with a moderate exponent
        2 => {
            (rng.gen_range(0x3c0u64..0x440) << 52)
                | (rng.gen::<u64>() >> 12)
                | (rng.gen::<u64>() & (1 << 63))
        }
        // an ordinary single, boxed
        3 => boxed(
            (rng.gen_range(0x60u32..0xa0) << 23)
                | (rng.gen::<u32>() >> 9)
                | (rng.gen::<u32>() & (1 << 31)),
        ),
        _ => rng.gen(),
    }
}

/// A destination register: anything but the scratch base and the loop counter.
fn rd(rng: &mut StdRng) -> usize {
    loop {
        let r = rng.gen_range(0..32);
        if r != BASE_REG && r != LOOP_REG {
            return r;
        }
    }
}

fn rs(rng: &mut StdRng) -> usize {
    rng.gen_range(0..32)
}

fn fr(rng: &mut StdRng) -> usize {
    rng.gen_range(0..32)
}

/// One random instruction (or a forward branch whose label is placed later). `pending` holds
/// (instructions still to emit before the label, label name).
fn gen_insn(
    rng: &mut StdRng,
    out: &mut String,
    pending: &mut Vec<(u32, String)>,
    label_no: &mut u32,
) {
    let p = if rng.gen_bool(0.5) { "d" } else { "s" };
    let rm = *RMS.choose(rng).unwrap_or(&"rne");
    let line = match rng.gen_range(0..104) {
        100..=102 => {
            // an AMO on an aligned scratch slot, addressed through x26
            let (suffix, size) = if rng.gen_bool(0.5) {
                ("d", 8)
            } else {
                ("w", 4)
            };
            let off = rng.gen_range(0..SCRATCH_BYTES / size) * size;
            format!(
                "addi x{AMO_ADDR_REG}, x{BASE_REG}, {off}\n        {}.{suffix} x{}, x{}, (x{AMO_ADDR_REG})",
                AMOS.choose(rng).unwrap_or(&"amoadd"),
                rd(rng),
                rs(rng)
            )
        }
        103 => {
            // an LR/SC pair with nothing in between: the SC succeeds on both
            let (suffix, size) = if rng.gen_bool(0.5) {
                ("d", 8)
            } else {
                ("w", 4)
            };
            let off = rng.gen_range(0..SCRATCH_BYTES / size) * size;
            let mut lr_rd = rd(rng);
            if lr_rd == AMO_ADDR_REG {
                lr_rd = 0;
            }
            format!(
                "addi x{AMO_ADDR_REG}, x{BASE_REG}, {off}\n        lr.{suffix} x{lr_rd}, (x{AMO_ADDR_REG})\n        \
                 sc.{suffix} x{}, x{}, (x{AMO_ADDR_REG})",
                rd(rng),
                rs(rng)
            )
        }
        0..=29 => format!(
            "{} x{}, x{}, x{}",
            RR_OPS.choose(rng).unwrap_or(&"add"),
            rd(rng),
            rs(rng),
            rs(rng)
        ),
        30..=35 => format!(
            "{} x{}, x{}",
            R_OPS.choose(rng).unwrap_or(&"clz"),
            rd(rng),
            rs(rng)
        ),
        36..=45 => format!(
            "{} x{}, x{}, {}",
            I_OPS.choose(rng).unwrap_or(&"addi"),
            rd(rng),
            rs(rng),
            rng.gen_range(-2048..2048)
        ),
        46..=52 => {
            let &(op, max) = SHIFT_OPS.choose(rng).unwrap_or(&("slli", 63));
            format!(
                "{op} x{}, x{}, {}",
                rd(rng),
                rs(rng),
                rng.gen_range(0..=max)
            )
        }
        53..=54 => format!("lui x{}, {:#x}", rd(rng), rng.gen_range(0..0x10_0000u32)),
        55 => format!("auipc x{}, {:#x}", rd(rng), rng.gen_range(0..0x10_0000u32)),
        56..=63 => {
            let &(op, size) = LOADS.choose(rng).unwrap_or(&("ld", 8));
            let off = mem_offset(rng, size);
            format!("{op} x{}, {off}(x{BASE_REG})", rd(rng))
        }
        64..=70 => {
            let &(op, size) = STORES.choose(rng).unwrap_or(&("sd", 8));
            let off = mem_offset(rng, size);
            format!("{op} x{}, {off}(x{BASE_REG})", rs(rng))
        }
        71..=76 => {
            // forward branch (or jal) over 0..6 instructions
            let label = format!("L{}", *label_no);
            *label_no += 1;
            let skip = rng.gen_range(0..6);
            pending.push((skip, label.clone()));
            if rng.gen_range(0..5) == 0 {
                format!("jal x{}, {label}", rd(rng))
            } else {
                format!(
                    "{} x{}, x{}, {label}",
                    BRANCHES.choose(rng).unwrap_or(&"beq"),
                    rs(rng),
                    rs(rng)
                )
            }
        }
        77..=81 => format!(
            "{}.{p} f{}, f{}, f{}, {rm}",
            FP_RM2.choose(rng).unwrap_or(&"fadd"),
            fr(rng),
            fr(rng),
            fr(rng)
        ),
        82..=83 => format!(
            "{}.{p} f{}, f{}, f{}",
            FP_NR2.choose(rng).unwrap_or(&"fmin"),
            fr(rng),
            fr(rng),
            fr(rng)
        ),
        84..=85 => format!(
            "{}.{p} f{}, f{}, f{}, f{}, {rm}",
            FP_FMA.choose(rng).unwrap_or(&"fmadd"),
            fr(rng),
            fr(rng),
            fr(rng),
            fr(rng)
        ),
        86 => format!("fsqrt.{p} f{}, f{}, {rm}", fr(rng), fr(rng)),
        87 => format!(
            "{}.{p} x{}, f{}, f{}",
            FP_CMP.choose(rng).unwrap_or(&"feq"),
            rd(rng),
            fr(rng),
            fr(rng)
        ),
        88 => format!("fclass.{p} x{}, f{}", rd(rng), fr(rng)),
        89..=90 => {
            let to = ["w", "wu", "l", "lu"].choose(rng).copied().unwrap_or("w");
            format!("fcvt.{to}.{p} x{}, f{}, {rm}", rd(rng), fr(rng))
        }
        91..=92 => {
            let from = ["w", "wu", "l", "lu"].choose(rng).copied().unwrap_or("l");
            // fcvt.d.w and fcvt.d.wu are exact and take no rounding mode
            if p == "d" && (from == "w" || from == "wu") {
                format!("fcvt.d.{from} f{}, x{}", fr(rng), rs(rng))
            } else {
                format!("fcvt.{p}.{from} f{}, x{}, {rm}", fr(rng), rs(rng))
            }
        }
        93 => {
            if p == "d" {
                format!("fcvt.s.d f{}, f{}, {rm}", fr(rng), fr(rng))
            } else {
                format!("fcvt.d.s f{}, f{}", fr(rng), fr(rng))
            }
        }
        94 => match rng.gen_range(0..4) {
            0 => format!("fmv.x.d x{}, f{}", rd(rng), fr(rng)),
            1 => format!("fmv.d.x f{}, x{}", fr(rng), rs(rng)),
            2 => format!("fmv.x.w x{}, f{}", rd(rng), fr(rng)),
            _ => format!("fmv.w.x f{}, x{}", fr(rng), rs(rng)),
        },
        95..=97 => {
            let (op, size) = if rng.gen_bool(0.5) {
                ("fld", 8)
            } else {
                ("flw", 4)
            };
            let off = rng.gen_range(0..SCRATCH_BYTES / size) * size;
            format!("{op} f{}, {off}(x{BASE_REG})", fr(rng))
        }
        _ => {
            let (op, size) = if rng.gen_bool(0.5) {
                ("fsd", 8)
            } else {
                ("fsw", 4)
            };
            let off = rng.gen_range(0..SCRATCH_BYTES / size) * size;
            format!("{op} f{}, {off}(x{BASE_REG})", fr(rng))
        }
    };
    let _ = writeln!(out, "        {line}");
    // Count this instruction against every label already pending, then place the due ones.
    let mut i = 0;
    while i < pending.len() {
        if pending[i].0 == 0 {
            let (_, label) = pending.swap_remove(i);
            let _ = writeln!(out, "{label}:");
        } else {
            pending[i].0 -= 1;
            i += 1;
        }
    }
}

/// An offset for a `size`-byte access inside the scratch buffer; one in four is misaligned
/// (ordinary misaligned loads and stores complete on QEMU and on emu).
fn mem_offset(rng: &mut StdRng, size: usize) -> usize {
    if size > 1 && rng.gen_range(0..4) == 0 {
        rng.gen_range(0..=SCRATCH_BYTES - size)
    } else {
        rng.gen_range(0..SCRATCH_BYTES / size) * size
    }
}

/// The whole assembly program for `seed`.
fn gen_program(seed: u64, len: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut s = String::new();
    let _ = writeln!(s, "# random differential program, seed {seed:#x}");
    s.push_str("#include \"test_macros.h\"\n\nRVTEST_CODE_BEGIN\n");
    // prologue: FP registers (through x5), then the integer registers
    for f in 0..32 {
        let _ = writeln!(
            s,
            "        li x5, {:#x}\n        fmv.d.x f{f}, x5",
            random_fp_bits(&mut rng)
        );
    }
    s.push_str("        csrwi fcsr, 0\n");
    for x in 1..32 {
        if x == BASE_REG {
            let _ = writeln!(s, "        la x{BASE_REG}, scratch");
        } else {
            let _ = writeln!(s, "        li x{x}, {:#x}", random_int(&mut rng));
        }
    }
    let mut pending = Vec::new();
    let mut label_no = 0;
    // The stream, with up to two counted loops whose bodies are random instructions too.
    // Branch labels never cross a loop boundary: pending ones are placed before a loop starts
    // and before its closing branch, so every branch stays forward and inside its region.
    let mut emitted = 0;
    let mut loops = 0;
    while emitted < len {
        if loops < 2 && rng.gen_range(0..80) == 0 {
            for (_, label) in pending.drain(..) {
                let _ = writeln!(s, "{label}:");
            }
            let body = rng.gen_range(4..16);
            let _ = writeln!(
                s,
                "        li x{LOOP_REG}, {}\nLOOP{loops}:",
                rng.gen_range(LOOP_ITERS)
            );
            for _ in 0..body {
                gen_insn(&mut rng, &mut s, &mut pending, &mut label_no);
            }
            for (_, label) in pending.drain(..) {
                let _ = writeln!(s, "{label}:");
            }
            let _ = writeln!(
                s,
                "        addi x{LOOP_REG}, x{LOOP_REG}, -1\n        bnez x{LOOP_REG}, LOOP{loops}"
            );
            loops += 1;
            emitted += body;
        } else {
            gen_insn(&mut rng, &mut s, &mut pending, &mut label_no);
            emitted += 1;
        }
    }
    for (_, label) in pending {
        let _ = writeln!(s, "{label}:");
    }
    // epilogue: dump x1..x31, f0..f31, fcsr, trap count, then print dump and scratch buffer
    s.push_str(
        "        csrw sscratch, x1\n\
         \x20       la x1, dump\n",
    );
    for x in 2..32 {
        let _ = writeln!(s, "        sd x{x}, {}(x1)", (x - 1) * 8);
    }
    s.push_str("        csrr x2, sscratch\n        sd x2, 0(x1)\n");
    for f in 0..32 {
        let _ = writeln!(s, "        fsd f{f}, {}(x1)", (31 + f) * 8);
    }
    s.push_str(
        "        frcsr x2\n\
         \x20       sd x2, 504(x1)\n\
         \x20       la x2, trap_save\n\
         \x20       ld x2, TS_COUNT(x2)\n\
         \x20       sd x2, 512(x1)\n\
         \x20       la s0, dump\n\
         \x20       li s1, 65 + 32\n\
         1:      ld a0, 0(s0)\n\
         \x20       call htif_puthex\n\
         \x20       li a0, 10\n\
         \x20       call htif_putchar\n\
         \x20       addi s0, s0, 8\n\
         \x20       addi s1, s1, -1\n\
         \x20       bnez s1, 1b\n\
         \x20       j pass\n\
         RVTEST_CODE_END\n\n\
         RVTEST_DATA_BEGIN\n\
         \x20       .align 6\n\
         dump:   .fill 65, 8, 0\n\
         scratch:\n",
    );
    for _ in 0..SCRATCH_BYTES / 8 {
        let _ = writeln!(s, "        .dword {:#x}", rng.gen::<u64>());
    }
    s.push_str("RVTEST_DATA_END\n");
    s
}

/// Name of line `i` of the dump.
fn dump_label(i: usize) -> String {
    match i {
        0..=30 => format!("x{}", i + 1),
        31..=62 => format!("f{}", i - 31),
        63 => "fcsr".to_string(),
        64 => "trap count".to_string(),
        _ => format!("scratch[{:#x}]", (i - 65) * 8),
    }
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

fn roms_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/riscv64")
}

fn require_tool(tool: &str, package: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{tool}` is needed by this test and was not found or does not run: install the Debian \
         package `{package}` (apt-get install {package})"
    );
}

fn build(src: &Path, elf: &Path) -> Result<(), String> {
    let roms = roms_dir();
    let out = Command::new(CC)
        .args(CFLAGS)
        .arg("-I")
        .arg(roms.join("include"))
        .arg("-T")
        .arg(roms.join("link.ld"))
        .arg("-o")
        .arg(elf)
        .arg(src)
        .output()
        .map_err(|e| format!("cannot run {CC}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{CC} failed on {}:\n{}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs a command with stdin closed, returning (exit code, stdout) or a description of what
/// went wrong (including a timeout).
fn run(mut cmd: Command) -> Result<(i32, String), String> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {desc}: {e}"))?;
    // Read stdout on a thread so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{desc} did not finish within {RUN_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for {desc}: {e}")),
        }
    };
    let out = reader.join().map_err(|_| "stdout reader panicked")?;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let code = status.code().unwrap_or(-1);
    if code != 0 && !err.is_empty() {
        eprintln!("{desc} stderr:\n{err}");
    }
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

fn run_qemu(elf: &Path) -> Result<(i32, String), String> {
    let mut cmd = Command::new(QEMU);
    cmd.args(["-M", "spike", "-bios", "none", "-nographic", "-kernel"])
        .arg(elf);
    run(cmd)
}

fn run_emu(elf: &Path, engine: Option<&str>) -> Result<(i32, String), String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_emu"));
    cmd.args(["--arch", "riscv64", "-bios", "none", "-kernel"])
        .arg(elf)
        .args(["--max-insns", "10000000"]);
    if let Some(e) = engine {
        cmd.args(["--engine", e]);
    }
    run(cmd)
}

/// Describes how `emu` differs from `qemu` (line by line), or None if they agree.
fn compare(qemu: &(i32, String), emu: &(i32, String)) -> Option<String> {
    let mut report = String::new();
    if qemu.0 != emu.0 {
        let _ = writeln!(report, "  exit status: qemu {} emu {}", qemu.0, emu.0);
    }
    let q: Vec<&str> = qemu.1.lines().collect();
    let e: Vec<&str> = emu.1.lines().collect();
    if q.len() != e.len() {
        let _ = writeln!(report, "  output lines: qemu {} emu {}", q.len(), e.len());
    }
    for (i, (a, b)) in q.iter().zip(e.iter()).enumerate() {
        if a != b {
            let _ = writeln!(report, "  {:>14}: qemu {a} emu {b}", dump_label(i));
        }
    }
    (!report.is_empty()).then_some(report)
}

#[test]
fn generated_programs_depend_only_on_the_seed() {
    let a = gen_program(7, 200);
    assert_eq!(a, gen_program(7, 200));
    assert_ne!(a, gen_program(8, 200));
    // every pending branch label is placed exactly once
    for n in 0.. {
        let label = format!("L{n}");
        let uses = a.matches(&format!(", {label}\n")).count();
        if uses == 0 {
            break;
        }
        assert_eq!(
            a.matches(&format!("\n{label}:\n")).count(),
            1,
            "{label} placed once"
        );
    }
    // the stream never writes the scratch base (stores and branches only read their first operand)
    let base = format!("x{BASE_REG},");
    let body = a.split("la x27, scratch").nth(1).unwrap_or("");
    for line in body.lines() {
        let mut words = line.split_whitespace();
        let (Some(op), Some(first)) = (words.next(), words.next()) else {
            continue;
        };
        let reads_only = op.starts_with('s')
            && !op.starts_with("sl")
            && !op.starts_with("sr")
            && !op.starts_with("su")
            && !op.starts_with("sh")
            && !op.starts_with("sext")
            || op.starts_with('b') && BRANCHES.contains(&op);
        assert!(
            reads_only || first != base,
            "writes the scratch base: {line}"
        );
    }
}

#[test]
fn compare_names_the_differing_registers() {
    let qemu = (0, "1\n2\n3\n".to_string());
    assert_eq!(compare(&qemu, &qemu.clone()), None);
    let report = compare(&qemu, &(0, "1\n9\n3\n".to_string())).unwrap_or_default();
    assert!(report.contains("x2: qemu 2 emu 9"), "{report}");
    assert!(!report.contains("x1:"), "{report}");
    let report = compare(&qemu, &(3, "1\n".to_string())).unwrap_or_default();
    assert!(report.contains("exit status: qemu 0 emu 3"), "{report}");
    assert!(report.contains("output lines: qemu 3 emu 1"), "{report}");
    assert_eq!(dump_label(31), "f0");
    assert_eq!(dump_label(63), "fcsr");
    assert_eq!(dump_label(66), "scratch[0x8]");
}

#[test]
fn emu_matches_qemu_on_random_programs() {
    require_tool(CC, "gcc-riscv64-unknown-elf");
    require_tool(QEMU, "qemu-system-misc");
    let count = env_u64("EMU_DIFF_COUNT", 30);
    let first_seed = env_u64("EMU_DIFF_SEED", 0x5eed);
    let len = usize::try_from(env_u64("EMU_DIFF_LEN", 300)).unwrap_or(300);
    let engines: Vec<Option<String>> = match std::env::var("EMU_DIFF_ENGINES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|e| Some(e.trim().to_string()))
            .collect(),
        _ => vec![None],
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu_differential");
    std::fs::create_dir_all(&dir).expect("create the scratch directory under target/");

    let mut failures = Vec::new();
    for seed in first_seed..first_seed + count {
        let src = dir.join(format!("diff-{seed:x}.S"));
        let elf = dir.join(format!("diff-{seed:x}.elf"));
        std::fs::write(&src, gen_program(seed, len)).expect("write the generated program");
        if let Err(e) = build(&src, &elf) {
            panic!("seed {seed:#x}: the generator produced a program that does not build: {e}");
        }
        let qemu = match run_qemu(&elf) {
            Ok(r) => r,
            Err(e) => panic!("seed {seed:#x}: {e}"),
        };
        assert_eq!(
            qemu.0, 0,
            "seed {seed:#x}: the program failed on QEMU itself (exit {}): generator bug",
            qemu.0
        );
        assert_eq!(
            qemu.1.lines().count(),
            65 + SCRATCH_BYTES / 8,
            "seed {seed:#x}: QEMU output"
        );
        for engine in &engines {
            let name = engine.as_deref().unwrap_or("default");
            match run_emu(&elf, engine.as_deref()) {
                Ok(emu) => {
                    if let Some(diff) = compare(&qemu, &emu) {
                        failures.push(format!(
                            "seed {seed:#x} (engine {name}, program {}):\n{diff}",
                            src.display()
                        ));
                    }
                }
                Err(e) => failures.push(format!("seed {seed:#x} (engine {name}): {e}")),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} random programs differ between emu and QEMU \
         (rerun one with EMU_DIFF_SEED=<seed> EMU_DIFF_COUNT=1):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
