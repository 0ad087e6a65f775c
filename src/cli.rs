//! emu's command line. Hand-rolled rather than clap because it accepts both QEMU's single-dash
//! style (`emu --arch riscv64 -bios none -kernel prog.elf -m 128M`) and Spike's
//! (`emu --arch riscv64 --isa=rv64gc prog.elf`, so `RISCV_SIM="emu --arch riscv64"` works).

use std::path::PathBuf;
use thiserror::Error;

/// Default guest RAM (QEMU's default for `spike` is 128 MiB too).
pub const DEFAULT_RAM_SIZE: u64 = 128 << 20;
/// Largest guest RAM accepted by `-m`.
pub const MAX_RAM_SIZE: u64 = 16 << 30;

pub const USAGE: &str = "\
usage: emu --arch riscv64 [options] -bios none -kernel PROGRAM.elf
       emu --arch riscv64 [options] PROGRAM.elf

Runs a bare-metal RISC-V 64 ELF program on a spike-like board (RAM at 0x80000000, CLINT at
0x2000000, HTIF through the program's tohost/fromhost symbols). emu's exit status is the
program's HTIF exit code.

options:
  --arch ARCH            guest architecture: riscv64 (the default)
  --isa ISA              Spike-style ISA string; must be RV64 (e.g. rv64gc)
  -kernel FILE           the ELF program to run (or give it as the last argument)
  -bios none             no firmware: the program starts in M-mode at its entry point
  -m SIZE                guest RAM size, with an optional K, M or G suffix (default MiB; 128M)
  --engine KIND          interp, jit or tiered (default tiered)
  --strict               an unimplemented instruction is a host error, not an illegal-instruction trap
  --max-insns N          stop with exit status 1 after N guest instructions (trap entries count)
  --stats                print engine statistics to stderr at exit
  --trace                print every block run to stderr: its PC, instructions retired before
                         it, and why the engine stopped (slow: one block per engine call)
  --log LEVEL            off, error, warn (default: emulator gaps, device misuse), info, debug, trace
  --signature FILE       at exit, write memory begin_signature..end_signature to FILE as hex
                         lines, highest byte first (Spike's +signature=FILE)
  --signature-granularity N  bytes per signature line (default 4)
  -nographic, -M spike   accepted for QEMU compatibility (no effect)
  -h, --help             print this help
  -V, --version          print the version";

/// Which executor runs guest code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineChoice {
    /// IR interpreter only (tier 0).
    Interp,
    /// Cranelift-compiled code for every block (tier 1).
    Jit,
    /// Interpreter first, hot blocks compiled.
    Tiered,
}

/// A validated command line for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub kernel: PathBuf,
    pub ram_size: u64,
    pub engine: EngineChoice,
    pub strict: bool,
    pub max_insns: Option<u64>,
    pub stats: bool,
    /// Where to write the memory between `begin_signature` and `end_signature` at exit
    /// (architecture tests; Spike's `+signature=FILE`).
    pub signature: Option<PathBuf>,
    /// Bytes per line of the signature file (Spike's `+signature-granularity`).
    pub signature_granularity: u32,
    /// Messages from emu's modules shown on stderr (`--log`, default warn).
    pub log: log::LevelFilter,
    /// Print each block the engine runs (PC, retired instructions, why it stopped).
    pub trace: bool,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
    Version,
}

/// Command-line errors; each names the option at fault.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CliError {
    #[error("unknown option '{0}' (try --help)")]
    UnknownOption(String),
    #[error("option '{0}' needs a value")]
    MissingValue(String),
    #[error("invalid value '{value}' for '{option}': {why}")]
    BadValue {
        option: String,
        value: String,
        why: String,
    },
    #[error(
        "no program given (use -kernel FILE or give the ELF as the last argument; try --help)"
    )]
    NoKernel,
    #[error("more than one program given: '{0}' and '{1}'")]
    TwoKernels(String, String),
}

fn bad(option: &str, value: &str, why: impl Into<String>) -> CliError {
    CliError::BadValue {
        option: option.to_string(),
        value: value.to_string(),
        why: why.into(),
    }
}

/// Parse a RAM size: a number of MiB, or a number with a K, M or G suffix (QEMU's `-m`).
pub fn parse_size(option: &str, s: &str) -> Result<u64, CliError> {
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.eq_ignore_ascii_case(&'k') => (&t[..i], 10),
        Some((i, c)) if c.eq_ignore_ascii_case(&'m') => (&t[..i], 20),
        Some((i, c)) if c.eq_ignore_ascii_case(&'g') => (&t[..i], 30),
        Some((i, c)) if c.eq_ignore_ascii_case(&'b') => (&t[..i], 0),
        _ => (t, 20),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| bad(option, s, "expected a size such as 128M, 1G or 256"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .filter(|&b| b <= MAX_RAM_SIZE)
        .ok_or_else(|| bad(option, s, format!("at most {}G", MAX_RAM_SIZE >> 30)))?;
    if bytes == 0 || !bytes.is_multiple_of(4096) {
        return Err(bad(option, s, "must be a non-zero multiple of 4K"));
    }
    Ok(bytes)
}

fn parse_engine(option: &str, s: &str) -> Result<EngineChoice, CliError> {
    match s {
        "interp" => Ok(EngineChoice::Interp),
        "jit" => Ok(EngineChoice::Jit),
        "tiered" => Ok(EngineChoice::Tiered),
        _ => Err(bad(option, s, "expected interp, jit or tiered")),
    }
}

fn set_kernel(k: String, kernel: &mut Option<String>) -> Result<(), CliError> {
    match kernel.take() {
        Some(old) => Err(CliError::TwoKernels(old, k)),
        None => {
            *kernel = Some(k);
            Ok(())
        }
    }
}

/// Parse the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Command, CliError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args = args.into_iter().map(Into::into);
    let mut kernel: Option<String> = None;
    let mut ram_size = DEFAULT_RAM_SIZE;
    let mut engine = EngineChoice::Tiered;
    let mut strict = false;
    let mut max_insns = None;
    let mut stats = false;
    let mut signature = None;
    let mut signature_granularity = 4;
    let mut log = log::LevelFilter::Warn;
    let mut trace = false;

    while let Some(arg) = args.next() {
        // Spike's plusargs (`+signature=FILE`) are long options here.
        let arg = match arg.strip_prefix('+') {
            Some(rest) if rest.contains('=') => format!("--{rest}"),
            _ => arg,
        };
        if arg == "--" {
            for k in args.by_ref() {
                set_kernel(k, &mut kernel)?;
            }
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            set_kernel(arg, &mut kernel)?;
            continue;
        }
        // `--opt=value` and `-opt=value`; Spike's glued `-m128` too.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None if arg.starts_with("-m") && arg[2..].starts_with(|c: char| c.is_ascii_digit()) => {
                ("-m".to_string(), Some(arg[2..].to_string()))
            }
            None => (arg.clone(), None),
        };
        let value = |args: &mut dyn Iterator<Item = String>| -> Result<String, CliError> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .ok_or_else(|| CliError::MissingValue(name.clone())),
            }
        };
        let takes_no_value = |inline: &Option<String>| match inline {
            Some(_) => Err(CliError::UnknownOption(arg.clone())),
            None => Ok(()),
        };
        match name.as_str() {
            "-h" | "--help" | "-help" => return Ok(Command::Help),
            "-V" | "--version" | "-version" => return Ok(Command::Version),
            "--arch" | "-arch" => {
                let v = value(&mut args)?;
                if v != "riscv64" {
                    return Err(bad(&name, &v, "only riscv64 is supported"));
                }
            }
            "--isa" | "-isa" => {
                let v = value(&mut args)?;
                if !v.to_ascii_lowercase().starts_with("rv64") {
                    return Err(bad(&name, &v, "only RV64 ISAs are supported (e.g. rv64gc)"));
                }
            }
            "-kernel" | "--kernel" => {
                let v = value(&mut args)?;
                set_kernel(v, &mut kernel)?;
            }
            "-bios" | "--bios" => {
                let v = value(&mut args)?;
                if v != "none" {
                    return Err(bad(&name, &v, "only '-bios none' is supported"));
                }
            }
            "-M" | "-machine" | "--machine" => {
                let v = value(&mut args)?;
                if v != "spike" && !v.starts_with("spike,") {
                    return Err(bad(&name, &v, "only the spike machine is supported"));
                }
            }
            "-nographic" | "--nographic" => takes_no_value(&inline)?,
            "-m" | "--memory" => {
                let v = value(&mut args)?;
                ram_size = parse_size(&name, &v)?;
            }
            "--engine" | "-engine" => {
                let v = value(&mut args)?;
                engine = parse_engine(&name, &v)?;
            }
            "--strict" => {
                takes_no_value(&inline)?;
                strict = true;
            }
            "--stats" => {
                takes_no_value(&inline)?;
                stats = true;
            }
            "--trace" => {
                takes_no_value(&inline)?;
                trace = true;
            }
            "--signature" => signature = Some(PathBuf::from(value(&mut args)?)),
            "--signature-granularity" => {
                let v = value(&mut args)?;
                signature_granularity = v
                    .parse()
                    .ok()
                    .filter(|g: &u32| g.is_power_of_two() && *g <= 64)
                    .ok_or_else(|| bad(&name, &v, "expected a power of two up to 64"))?;
            }
            "--log" | "-log" => {
                let v = value(&mut args)?;
                log = crate::logger::parse_level(&v).ok_or_else(|| {
                    bad(&name, &v, "expected off, error, warn, info, debug or trace")
                })?;
            }
            "--max-insns" => {
                let v = value(&mut args)?;
                let n: u64 = v
                    .parse()
                    .map_err(|_| bad(&name, &v, "expected a number of instructions"))?;
                max_insns = Some(n);
            }
            _ => return Err(CliError::UnknownOption(arg)),
        }
    }
    let kernel = kernel.ok_or(CliError::NoKernel)?;
    Ok(Command::Run(Config {
        kernel: PathBuf::from(kernel),
        ram_size,
        engine,
        strict,
        max_insns,
        stats,
        signature,
        signature_granularity,
        log,
        trace,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Config {
        match parse(args.iter().copied()) {
            Ok(Command::Run(c)) => c,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn qemu_and_spike_styles() {
        let q = run(&["--arch", "riscv64", "-bios", "none", "-kernel", "p.elf"]);
        let s = run(&["--arch", "riscv64", "--isa=rv64gc", "p.elf"]);
        assert_eq!(q, s);
        assert_eq!(q.kernel, PathBuf::from("p.elf"));
        assert_eq!(q.ram_size, DEFAULT_RAM_SIZE);
        assert_eq!(q.engine, EngineChoice::Tiered);
        let c = run(&[
            "--arch=riscv64",
            "-m",
            "64M",
            "--engine",
            "interp",
            "--strict",
            "--max-insns",
            "1000",
            "--stats",
            "-nographic",
            "p.elf",
        ]);
        assert_eq!(c.ram_size, 64 << 20);
        assert_eq!(c.engine, EngineChoice::Interp);
        assert!(c.strict && c.stats);
        assert_eq!(c.max_insns, Some(1000));
        assert_eq!(
            run(&["--arch", "riscv64", "-m256", "p"]).ram_size,
            256 << 20
        );
        assert_eq!(
            run(&["--arch", "riscv64", "--engine=jit", "p"]).engine,
            EngineChoice::Jit
        );
        let c = run(&["+signature=s.txt", "+signature-granularity=8", "p"]);
        assert_eq!(c.signature, Some(PathBuf::from("s.txt")));
        assert_eq!(c.signature_granularity, 8);
        assert_eq!(c.kernel, PathBuf::from("p"));
        assert_eq!(c.log, log::LevelFilter::Warn);
        assert_eq!(run(&["--log", "off", "p"]).log, log::LevelFilter::Off);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("-m", "1G"), Ok(1 << 30));
        assert_eq!(parse_size("-m", "512k"), Ok(512 << 10));
        assert_eq!(parse_size("-m", "16"), Ok(16 << 20));
        for bad in ["", "x", "0", "-1", "1.5G", "100000G", "1000b", "M"] {
            assert!(parse_size("-m", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_option() {
        let e = |a: &[&str]| parse(a.iter().copied()).unwrap_err().to_string();
        assert_eq!(
            e(&["--arch", "riscv64", "--frobnicate", "p"]),
            "unknown option '--frobnicate' (try --help)"
        );
        assert!(e(&["--arch", "riscv64", "-m", "lots", "p"]).contains("'-m'"));
        assert!(e(&["--arch", "riscv64", "--engine", "fast", "p"]).contains("'--engine'"));
        assert!(e(&["--arch", "x86_64", "p"]).contains("'--arch'"));
        assert!(e(&["--arch", "riscv64", "-kernel"]).contains("'-kernel' needs a value"));
        assert!(e(&["--arch", "riscv64"]).starts_with("no program given"));
        assert_eq!(
            run(&["p"]).kernel,
            PathBuf::from("p"),
            "--arch defaults to riscv64"
        );
        assert!(e(&["--arch", "riscv64", "a", "b"]).contains("'a' and 'b'"));
        assert!(e(&["--arch", "riscv64", "--strict=yes", "p"]).contains("--strict=yes"));
        assert_eq!(parse(["--help"]), Ok(Command::Help));
        assert_eq!(parse(["-V"]), Ok(Command::Version));
    }
}
