//! A bare-metal board like Spike and QEMU's `spike` machine: one RV64GC hart, RAM at
//! 0x8000_0000, a SiFive CLINT at 0x0200_0000, and HTIF over the program's `tohost` /
//! `fromhost` symbols. The hart starts in M-mode at the ELF entry point (`-bios none`), with
//! a0 = hart id and a1 = 0 (no device tree yet).

use crate::cli::EngineChoice;
use crate::runloop::{self, LoopOptions, Platform, RunError, StepExit, Vcpu};
use emu_devices::clint::{CLINT_BASE, CLINT_SIZE};
use emu_devices::clock::VirtualTime;
use emu_devices::htif::{Htif, HtifExit, HtifPort, HtifReg};
use emu_devices::{Bus, BusError, Clint, GuestRam, MemoryError};
use emu_firmware::{load_elf, ElfError, ElfImage};
use emu_frontends::riscv::cpu::RiscvCpu;
use emu_jit::codemap::CodeMap;
use emu_jit::engine::{Engine, EngineError, EngineKind, RunExit};
use parking_lot::Mutex;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use thiserror::Error;

/// Where RAM starts (Spike's `DRAM_BASE`, QEMU `spike`/`virt`).
pub const RAM_BASE: u64 = 0x8000_0000;
/// Register a0/a1 numbers (psABI): the boot arguments.
const A0: usize = 10;
const A1: usize = 11;

/// Errors building or running the board.
#[derive(Debug, Error)]
pub enum MachineError {
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// Loading the program failed; the ELF error names the file.
    #[error("could not load kernel {0}")]
    Load(#[from] ElfError),
    #[error("could not map {what}: {source}")]
    Map { what: String, source: BusError },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Run(#[from] RunError),
    /// `--signature` for a program without the symbols.
    #[error("'{0}' has no begin_signature/end_signature symbols (needed by --signature)")]
    NoSignature(String),
    /// The signature symbols do not bound a range of RAM.
    #[error("the signature {begin:#x}..{end:#x} is not a range of guest RAM")]
    BadSignature { begin: u64, end: u64 },
}

/// Spike's signature file format (fesvr/htif.cc): one line per `granularity` bytes, each line
/// the bytes from the highest address to the lowest in two lowercase hex digits, a short last
/// line padded with zeros.
pub fn format_signature(bytes: &[u8], granularity: usize) -> String {
    let g = granularity.max(1);
    let mut out = String::with_capacity(bytes.len() * 2 + bytes.len() / g + 1);
    for line in bytes.chunks(g) {
        for j in (0..g).rev() {
            let b = line.get(j).copied().unwrap_or(0);
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// How to build and run the board.
#[derive(Clone, Debug)]
pub struct SpikeConfig {
    pub ram_size: u64,
    pub engine: EngineChoice,
    pub strict: bool,
    pub max_insns: Option<u64>,
    /// Print every block the engine runs to stderr (`--trace`).
    pub trace: bool,
}

/// The board's devices as the run loop sees them.
struct Board {
    time: Arc<VirtualTime>,
    clint: Arc<Mutex<Clint>>,
    exit: HtifExit,
    /// Where `--trace` lines go.
    trace: Option<Box<dyn Write + Send>>,
}

impl Platform for Board {
    fn sync_time(&mut self, now_ns: u64) {
        self.time.advance_to(now_ns);
        self.clint.lock().update();
    }
    fn next_deadline_ns(&self) -> Option<u64> {
        self.clint.lock().next_deadline_ns()
    }
    fn exit_code(&self) -> Option<u64> {
        self.exit.code()
    }
    fn trace(&mut self, pc: u64, insns: u64, exit: StepExit) {
        if let Some(out) = &mut self.trace {
            let _ = writeln!(out, "emu: trace: pc={pc:#x} insns={insns} exit={exit:?}");
        }
    }
}

/// The hart with the engine that runs it.
struct Hart {
    cpu: Box<RiscvCpu>,
    engine: Engine,
    /// The GDB stub's hart side, which runs the engine itself (src/gdb).
    debug: Option<crate::gdb::HartDebug>,
}

impl Vcpu for Hart {
    fn run(&mut self) -> StepExit {
        let exit = match self.debug.as_mut() {
            Some(d) => d.run(0, &mut *self.cpu, &mut self.engine),
            None => self.engine.run(&mut *self.cpu),
        };
        match exit {
            RunExit::Exception => StepExit::Exception,
            RunExit::Yield => StepExit::Yield,
            RunExit::Halt => StepExit::Halt,
            RunExit::Budget => StepExit::Budget,
        }
    }
    fn pc(&self) -> u64 {
        self.cpu.common.pc
    }
    fn insn_count(&self) -> u64 {
        self.cpu.common.insn_count
    }
    fn set_insn_limit(&mut self, limit: u64) {
        self.cpu.common.insn_limit = limit;
    }
    fn now_ns(&self) -> u64 {
        self.cpu.clock.now_ns(self.cpu.common.insn_count)
    }
    fn insns_until(&self, ns: u64) -> u64 {
        self.cpu.clock.insns_until(self.cpu.common.insn_count, ns)
    }
    fn skip_to(&mut self, ns: u64) {
        let count = self.cpu.common.insn_count;
        self.cpu.clock.skip_to(count, ns);
    }
    fn deliver_exception(&mut self, strict: bool) -> Result<(), (u64, u32)> {
        if strict {
            if let Some(gap) = self.cpu.unimplemented {
                return Err(gap);
            }
        }
        self.cpu.deliver_exception();
        Ok(())
    }
    fn check_interrupts(&mut self) -> bool {
        self.cpu.check_interrupts()
    }
    fn interrupt_pending_for_wfi(&self) -> bool {
        self.cpu.interrupt_pending_for_wfi()
    }
    fn next_timer_deadline_ns(&self) -> Option<u64> {
        self.cpu.next_timer_deadline_ns()
    }
}

/// A spike-like board with its program loaded, ready to run.
pub struct Spike {
    board: Board,
    hart: Hart,
    htif: Option<Arc<Mutex<Htif>>>,
    image: ElfImage,
    opts: LoopOptions,
}

impl Spike {
    /// Build the board and load `kernel`. The guest's console output (HTIF) goes to `stdout`
    /// and `stderr`.
    pub fn new(
        config: &SpikeConfig,
        kernel: &Path,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> Result<Spike, MachineError> {
        let time = Arc::new(VirtualTime::new());
        let ram = Arc::new(GuestRam::new(RAM_BASE, config.ram_size)?);
        let mut bus = Bus::new();
        bus.add_ram(ram);
        let image = load_elf(kernel, &bus)?;

        // The CPU takes the finished bus, but the CLINT must be on the bus first: it drives
        // interrupt lines that are handed to the hart afterwards.
        let irq_lines = Arc::new(AtomicU64::new(0));
        let clint = Arc::new(Mutex::new(Clint::new(
            time.clone(),
            vec![irq_lines.clone()],
        )));
        bus.add_device(CLINT_BASE, CLINT_SIZE, clint.clone())
            .map_err(|source| MachineError::Map {
                what: "the CLINT".into(),
                source,
            })?;

        let htif = Htif::new(bus.ram_regions().to_vec(), stdout, stderr);
        let exit = htif.exit_handle();
        let htif = Arc::new(Mutex::new(htif));
        let mut htif_mapped = false;
        for (addr, reg, name) in [
            (image.tohost, HtifReg::ToHost, "tohost"),
            (image.fromhost, HtifReg::FromHost, "fromhost"),
        ] {
            let Some(addr) = addr else { continue };
            let port = Arc::new(Mutex::new(HtifPort::new(htif.clone(), reg)));
            bus.add_device(addr, 8, port)
                .map_err(|source| MachineError::Map {
                    what: format!("HTIF {name} at {addr:#x}"),
                    source,
                })?;
            htif_mapped = true;
        }

        let bus = Arc::new(bus);
        let code_map = Arc::new(CodeMap::new());
        let mut cpu = RiscvCpu::new(0, bus, code_map.clone(), time.clone());
        cpu.irq_lines = irq_lines;
        cpu.strict = config.strict;
        cpu.common.pc = image.entry;
        cpu.x[A0] = cpu.hart_id;
        cpu.x[A1] = 0;
        let kind = match config.engine {
            EngineChoice::Interp => EngineKind::Interp,
            EngineChoice::Jit => EngineKind::Jit,
            EngineChoice::Tiered => EngineKind::Tiered,
        };
        let engine = Engine::new(kind, code_map)?;
        Ok(Spike {
            board: Board {
                time,
                clint,
                exit,
                trace: config
                    .trace
                    .then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>),
            },
            hart: Hart {
                cpu,
                engine,
                debug: None,
            },
            htif: htif_mapped.then_some(htif),
            image,
            opts: LoopOptions {
                strict: config.strict,
                max_insns: config.max_insns,
                trace: config.trace,
            },
        })
    }

    /// The loaded program.
    pub fn image(&self) -> &ElfImage {
        &self.image
    }

    /// Whether the program can exit through HTIF (it has a `tohost` symbol).
    pub fn has_htif(&self) -> bool {
        self.htif.is_some()
    }

    /// Run until the program exits; returns its HTIF exit code.
    pub fn run(&mut self) -> Result<u64, MachineError> {
        let r = runloop::run(&mut self.hart, &mut self.board, self.opts);
        if let Some(htif) = &self.htif {
            htif.lock().flush();
        }
        Ok(r?)
    }

    /// The memory between the program's `begin_signature` and `end_signature` symbols, in
    /// Spike's signature format.
    pub fn signature(&self, kernel: &Path, granularity: u32) -> Result<String, MachineError> {
        let (Some(begin), Some(end)) = (self.image.begin_signature, self.image.end_signature)
        else {
            return Err(MachineError::NoSignature(kernel.display().to_string()));
        };
        let len = end
            .checked_sub(begin)
            .ok_or(MachineError::BadSignature { begin, end })?;
        let ram = self
            .hart
            .cpu
            .bus
            .ram_at(begin, len)
            .ok_or(MachineError::BadSignature { begin, end })?;
        let mut bytes = vec![0u8; len as usize];
        if !ram.read(begin, &mut bytes) {
            return Err(MachineError::BadSignature { begin, end });
        }
        Ok(format_signature(&bytes, granularity as usize))
    }

    /// A hash of the hart's architectural state (PC, privilege, integer and FP registers, fcsr,
    /// retired instructions, RAM): two runs of the same program must agree (DESIGN.md §5).
    pub fn state_hash(&self) -> u64 {
        // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
        let mut h = Fnv1a::default();
        let cpu = &self.hart.cpu;
        for v in [
            cpu.common.pc,
            cpu.common.insn_count,
            cpu.privilege,
            cpu.frm,
            cpu.fflags,
        ] {
            h.write_u64(v);
        }
        cpu.x
            .iter()
            .chain(cpu.f.iter())
            .for_each(|&v| h.write_u64(v));
        let mut page = vec![0u8; 4096];
        for ram in cpu.bus.ram_regions() {
            let mut addr = ram.base();
            while ram.read(addr, &mut page) {
                // Untouched pages are zero: skip them cheaply (the mapping is lazily committed,
                // but reading it costs the same; hashing 4 KiB of zeros need not).
                if page.iter().any(|&b| b != 0) {
                    h.write_u64(addr);
                    h.write(&page);
                }
                addr += page.len() as u64;
            }
        }
        h.0
    }

    /// Retired guest instructions.
    pub fn insn_count(&self) -> u64 {
        self.hart.cpu.common.insn_count
    }

    /// Attach the GDB stub's hart side and `-d` tracing (src/gdb, src/trace.rs).
    pub fn attach_debug(
        &mut self,
        gdb: Option<crate::gdb::HartDebug>,
        trace: Option<&(crate::trace::TraceItems, crate::trace::TraceOut)>,
    ) {
        if let Some((items, out)) = trace {
            crate::trace::install(*items, out, &mut self.hart.engine, &mut self.hart.cpu);
        }
        self.hart.debug = gdb;
    }

    /// The engine (for statistics).
    pub fn engine(&self) -> &Engine {
        &self.hart.engine
    }

    /// The hart (for tests and debugging).
    pub fn cpu(&self) -> &RiscvCpu {
        &self.hart.cpu
    }
}

/// The 64-bit FNV-1a hash.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emu_firmware::testing::{build_elf, htif_exit_program, rv, Segment, EM_RISCV};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn config(engine: EngineChoice) -> SpikeConfig {
        SpikeConfig {
            ram_size: 1 << 20,
            engine,
            strict: false,
            max_insns: Some(1_000_000),
            trace: false,
        }
    }

    fn run_elf(
        name: &str,
        elf: &[u8],
        engine: EngineChoice,
    ) -> (Result<u64, MachineError>, String, String) {
        let dir = std::env::temp_dir().join(format!("emu-spike-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, elf).unwrap();
        let (out, err) = (Capture::default(), Capture::default());
        let mut m = Spike::new(
            &config(engine),
            &path,
            Box::new(out.clone()),
            Box::new(err.clone()),
        )
        .unwrap();
        let r = m.run();
        let text = |c: &Capture| String::from_utf8_lossy(&c.0.lock()).into_owned();
        (r, text(&out), text(&err))
    }

    #[test]
    fn runs_a_program_to_its_htif_exit() {
        for engine in [
            EngineChoice::Interp,
            EngineChoice::Jit,
            EngineChoice::Tiered,
        ] {
            let (r, out, err) = run_elf("exit5.elf", &htif_exit_program(5), engine);
            assert_eq!(r.unwrap(), 5);
            assert_eq!(out, "");
            assert_eq!(err, "*** FAILED *** (tohost = 5)\n");
        }
    }

    #[test]
    fn console_output_goes_to_the_injected_stdout() {
        const T0: u32 = 5;
        const T1: u32 = 6;
        // t0 = &tohost (the auipc is at 0x8000_0000); for each byte:
        // tohost = 1 << 56 | 1 << 48 | byte (console putchar); then exit 0.
        let mut code = vec![rv::auipc(T0, 1)];
        for &c in b"ok\n" {
            code.extend([
                rv::addi(T1, 0, 0x101),
                rv::slli(T1, T1, 48),
                rv::ori(T1, T1, i32::from(c)),
                rv::sd(T1, T0, 0),
            ]);
        }
        code.extend([rv::addi(T1, 0, 1), rv::sd(T1, T0, 0), rv::SPIN]);
        let code = rv::assemble(&code);
        let elf = build_elf(
            EM_RISCV,
            0x8000_0000,
            &[
                Segment {
                    addr: 0x8000_0000,
                    bytes: &code,
                    memsz: 0x1000,
                },
                Segment {
                    addr: 0x8000_1000,
                    bytes: &[0; 16],
                    memsz: 0x1000,
                },
            ],
            &[("tohost", 0x8000_1000), ("fromhost", 0x8000_1008)],
        );
        let (r, out, err) = run_elf("putchar.elf", &elf, EngineChoice::Tiered);
        assert_eq!(r.unwrap(), 0, "{err}");
        assert_eq!(out, "ok\n");
    }

    #[test]
    fn a_missing_kernel_names_the_file() {
        let e = Spike::new(
            &config(EngineChoice::Interp),
            Path::new("/nonexistent/k.elf"),
            Box::new(std::io::sink()),
            Box::new(std::io::sink()),
        )
        .err()
        .unwrap();
        assert_eq!(
            e.to_string(),
            "could not load kernel '/nonexistent/k.elf': No such file or directory"
        );
    }

    #[test]
    fn fnv1a_known_values() {
        let mut h = Fnv1a::default();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn signature_lines_are_highest_byte_first() {
        let bytes = [0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb];
        assert_eq!(format_signature(&bytes, 4), "04030201\n0000bbaa\n");
        assert_eq!(format_signature(&bytes, 2), "0201\n0403\nbbaa\n");
        assert_eq!(format_signature(&[], 4), "");
    }
}
