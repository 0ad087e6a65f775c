//! QEMU-style `-d ITEM,...` tracing with `-D FILE` (QEMU's util/log.c items): guest
//! disassembly of each new block (`in_asm`, through capstone), its IR after optimization
//! (`op`), interrupts and exceptions taken (`int`), one line per block run (`exec`), registers
//! before each block (`cpu`), guest mistakes (`guest_errors`) and unimplemented encodings
//! (`unimp`).
//!
//! Cost when off: the engine tests one flag per translated block and one per dispatch; the hart
//! tests whether it has an observer on a trap, a bus error or an unimplemented encoding.
//! `exec` and `cpu` turn chaining off (as QEMU's `-d exec` needs `nochain`), so every block run
//! is seen.

use std::any::Any;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use emu_frontends::riscv::cpu::{Privilege, RiscvCpu};
use emu_frontends::riscv::debug::{CpuObserver, TrapEvent};
use emu_jit::engine::{Engine, TraceSink, TraceWants};
use emu_jit::guest::BlockKey;
use emu_jit::ir::IrBlock;
use emu_jit::tb::TbId;
use parking_lot::Mutex;

/// `-d help`: the items, as QEMU lists them.
pub const HELP: &str = "Log items (comma separated):
in_asm          show target assembly code for each compiled TB
op              show micro ops after optimization (alias: op_opt)
int             show interrupts/exceptions in short format
exec            show trace before each executed TB (lots of logs)
cpu             show CPU registers before entering a TB (lots of logs)
guest_errors    log when the guest OS does something invalid (eg accessing a
                non-existent register)
unimp           log unimplemented functionality
nochain         do not chain compiled TBs so that \"exec\" and \"cpu\" show
                complete traces";

/// Host errors of `-d` / `-D`.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// An item `-d` does not know.
    #[error("unknown log item '{0}' in '-d' (try '-d help')")]
    UnknownItem(String),
    /// The `-D` file cannot be created.
    #[error("could not open log file '{path}': {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The `-d` items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceItems {
    pub in_asm: bool,
    pub op: bool,
    pub int: bool,
    pub exec: bool,
    pub cpu: bool,
    pub guest_errors: bool,
    pub unimp: bool,
    pub nochain: bool,
}

impl TraceItems {
    /// Parse `-d`'s comma-separated list (`help` is handled by the caller, see [`HELP`]).
    pub fn parse(list: &str) -> Result<TraceItems, TraceError> {
        let mut t = TraceItems::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item {
                "in_asm" => t.in_asm = true,
                "op" | "op_opt" => t.op = true,
                "int" => t.int = true,
                "exec" => t.exec = true,
                "cpu" => t.cpu = true,
                "guest_errors" => t.guest_errors = true,
                "unimp" => t.unimp = true,
                "nochain" => t.nochain = true,
                _ => return Err(TraceError::UnknownItem(item.to_string())),
            }
        }
        Ok(t)
    }

    pub fn any(&self) -> bool {
        self.in_asm
            || self.op
            || self.int
            || self.exec
            || self.cpu
            || self.guest_errors
            || self.unimp
            || self.nochain
    }
}

/// Where trace lines go, shared by the engine's tracer and the harts' observers.
pub type TraceOut = Arc<Mutex<Box<dyn Write + Send>>>;

/// The `-D` file, or stderr.
pub fn open_output(path: Option<&Path>) -> Result<TraceOut, TraceError> {
    let w: Box<dyn Write + Send> = match path {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |source| TraceError::Open {
                path: p.to_path_buf(),
                source,
            },
        )?)),
        None => Box::new(std::io::stderr()),
    };
    Ok(Arc::new(Mutex::new(w)))
}

/// The `-d`/`-D` options: the items and the open output, or None without `-d`.
pub fn setup(
    opts: &crate::gdb::DebugOptions,
) -> Result<Option<(TraceItems, TraceOut)>, TraceError> {
    let Some(list) = opts.log_items.as_deref() else {
        return Ok(None);
    };
    let items = TraceItems::parse(list)?;
    if !items.any() {
        return Ok(None);
    }
    Ok(Some((items, open_output(opts.log_file.as_deref())?)))
}

/// Turn tracing on for one hart and its engine.
pub fn install(items: TraceItems, out: &TraceOut, engine: &mut Engine, cpu: &mut RiscvCpu) {
    let wants = TraceWants {
        translate: items.in_asm || items.op,
        exec: items.exec || items.cpu || items.nochain,
    };
    if wants.translate || wants.exec {
        let sink = EngineTracer {
            items,
            out: out.clone(),
        };
        engine.set_tracer(Some(Box::new(sink)), wants);
    }
    if items.int || items.guest_errors || items.unimp {
        cpu.observer = Some(Box::new(HartObserver {
            items,
            out: out.clone(),
        }));
    }
}

/// The engine side: `in_asm`, `op`, `exec`, `cpu`.
pub struct EngineTracer {
    items: TraceItems,
    out: TraceOut,
}

thread_local! {
    /// Capstone handles are not `Send`; each hart thread opens its own on first use.
    static DISASM: Option<capstone::Capstone> = {
        use capstone::prelude::*;
        capstone::Capstone::new()
            .riscv()
            .mode(capstone::arch::riscv::ArchMode::RiscV64)
            .extra_mode([capstone::arch::riscv::ArchExtraMode::RiscVC].into_iter())
            .build()
            .ok()
    };
}

/// Guest disassembly of `code` at `pc`, QEMU's `IN:` format (one line per instruction).
pub fn disassemble(code: &[u8], pc: u64) -> String {
    let mut s = String::new();
    DISASM.with(|cs| {
        let mut done = 0usize;
        if let Some(cs) = cs {
            if let Ok(insns) = cs.disasm_all(code, pc) {
                for i in insns.iter() {
                    let bytes = i.bytes();
                    let word = bytes
                        .iter()
                        .rev()
                        .fold(0u32, |w, &b| (w << 8) | u32::from(b));
                    let width = if bytes.len() == 2 { 4 } else { 8 };
                    let _ = writeln!(
                        s,
                        "0x{:016x}:  {:0width$x}{:pad$}  {:<10} {}",
                        i.address(),
                        word,
                        "",
                        i.mnemonic().unwrap_or("?"),
                        i.op_str().unwrap_or(""),
                        pad = 16 - width,
                    );
                    done += bytes.len();
                }
            }
        }
        // Whatever capstone cannot decode is shown as raw data.
        let mut at = done;
        while let Some(rest) = code.get(at..).filter(|r| !r.is_empty()) {
            let n = if rest.len() >= 4 && rest.first().is_some_and(|b| b & 3 == 3) {
                4
            } else {
                rest.len().min(2)
            };
            let word = rest
                .iter()
                .take(n)
                .rev()
                .fold(0u32, |w, &b| (w << 8) | u32::from(b));
            let _ = writeln!(
                s,
                "0x{:016x}:  {word:08x}          .insn (not decoded)",
                pc.wrapping_add(at as u64)
            );
            at += n;
        }
    });
    s
}

const XREG_NAMES: [&str; 32] = [
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4",
    "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4",
    "t5", "t6",
];

/// Registers in the layout of QEMU's `riscv_cpu_dump_state`.
pub fn dump_cpu(cpu: &mut RiscvCpu) -> String {
    let mut s = String::new();
    let _ = writeln!(s, " {:<8} {:016x}", "pc", cpu.common.pc);
    for (name, num) in [
        ("mhartid", 0xf14u16),
        ("mstatus", 0x300),
        ("mip", 0x344),
        ("mie", 0x304),
        ("mideleg", 0x303),
        ("medeleg", 0x302),
        ("mtvec", 0x305),
        ("stvec", 0x105),
        ("mepc", 0x341),
        ("sepc", 0x141),
        ("mcause", 0x342),
        ("scause", 0x142),
        ("mtval", 0x343),
        ("stval", 0x143),
        ("satp", 0x180),
    ] {
        let v = cpu.csr_read(num).unwrap_or(0);
        let _ = writeln!(s, " {name:<8} {v:016x}");
    }
    let _ = writeln!(s, " {:<8} {}", "priv", cpu.privilege);
    for (i, (name, v)) in XREG_NAMES.iter().zip(cpu.x.iter()).enumerate() {
        let _ = write!(s, " x{i}/{name:<5} {v:016x}");
        if i % 4 == 3 {
            s.push('\n');
        }
    }
    for (i, v) in cpu.f.iter().enumerate() {
        let _ = write!(s, " f{i:<2}      {v:016x}");
        if i % 4 == 3 {
            s.push('\n');
        }
    }
    s
}

impl TraceSink for EngineTracer {
    fn translated(&mut self, guest: &mut dyn Any, key: &BlockKey, ir: &IrBlock) {
        let mut s = String::new();
        if self.items.in_asm {
            let mut code = vec![0u8; ir.guest_size as usize];
            if let Some(cpu) = guest.downcast_mut::<RiscvCpu>() {
                if let Some(ram) = cpu.bus.ram_at(key.phys_pc, code.len() as u64) {
                    if !ram.read(key.phys_pc, &mut code) {
                        code.clear();
                    }
                } else {
                    code.clear();
                }
            }
            s.push_str("----------------\nIN: \n");
            s.push_str(&disassemble(&code, key.pc));
            s.push('\n');
        }
        if self.items.op {
            let _ = writeln!(s, "OP after optimization:\n{ir}");
        }
        let _ = self.out.lock().write_all(s.as_bytes());
    }

    fn before_exec(&mut self, guest: &mut dyn Any, key: &BlockKey, id: TbId) {
        let mut s = String::new();
        let mut hart = 0;
        if let Some(cpu) = guest.downcast_mut::<RiscvCpu>() {
            hart = cpu.hart_id;
            if self.items.cpu {
                s.push_str(&dump_cpu(cpu));
            }
        }
        if self.items.exec {
            // QEMU: "Trace %d: %p [cs_base/pc/flags/cflags] symbol", %d the CPU index.
            let _ = writeln!(
                s,
                "Trace {hart}: {:#x} [00000000/{:016x}/{:08x}/00000000] ",
                id.0, key.pc, key.flags
            );
        }
        let _ = self.out.lock().write_all(s.as_bytes());
    }
}

/// The hart side: `int`, `guest_errors`, `unimp`.
pub struct HartObserver {
    items: TraceItems,
    out: TraceOut,
}

fn priv_letter(p: Privilege) -> char {
    match p {
        Privilege::User => 'U',
        Privilege::Supervisor => 'S',
        Privilege::Machine => 'M',
    }
}

/// Name of an exception or interrupt cause (Privileged ISA Table 3.6).
pub fn cause_name(cause: u64, interrupt: bool) -> &'static str {
    if interrupt {
        return match cause {
            1 => "s_software",
            3 => "m_software",
            5 => "s_timer",
            7 => "m_timer",
            9 => "s_external",
            11 => "m_external",
            _ => "interrupt",
        };
    }
    match cause {
        0 => "misaligned_fetch",
        1 => "fault_fetch",
        2 => "illegal_instruction",
        3 => "breakpoint",
        4 => "misaligned_load",
        5 => "fault_load",
        6 => "misaligned_store",
        7 => "fault_store",
        8 => "user_ecall",
        9 => "supervisor_ecall",
        11 => "machine_ecall",
        12 => "exec_page_fault",
        13 => "load_page_fault",
        15 => "store_page_fault",
        _ => "exception",
    }
}

impl CpuObserver for HartObserver {
    fn trap(&mut self, ev: &TrapEvent) {
        if !self.items.int {
            return;
        }
        // QEMU's riscv_cpu_do_interrupt line, plus the privilege change and the handler.
        let _ = writeln!(
            self.out.lock(),
            "riscv_cpu_do_interrupt: hart:{}, async:{}, cause:{:016x}, epc:{:#018x}, \
             tval:{:#018x}, desc={}, priv:{}->{}, handler:{:#018x}",
            ev.hart_id,
            u8::from(ev.interrupt),
            ev.cause,
            ev.epc,
            ev.tval,
            cause_name(ev.cause, ev.interrupt),
            priv_letter(ev.from),
            priv_letter(ev.to),
            ev.target,
        );
    }

    fn guest_error(&mut self, hart_id: u64, msg: &str) {
        if self.items.guest_errors {
            let _ = writeln!(self.out.lock(), "guest error: hart {hart_id}: {msg}");
        }
    }

    fn unimplemented(&mut self, hart_id: u64, pc: u64, insn: u32) {
        if self.items.unimp {
            let _ = writeln!(
                self.out.lock(),
                "unimplemented: hart {hart_id}: instruction {insn:#010x} at pc {pc:#x}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_parse_as_qemu_names_them() {
        let t = TraceItems::parse("in_asm,op_opt,int").unwrap();
        assert!(t.in_asm && t.op && t.int && !t.exec);
        assert!(TraceItems::parse("").is_ok_and(|t| !t.any()));
        let e = TraceItems::parse("in_asm,bogus").unwrap_err().to_string();
        assert!(e.contains("'bogus'"), "{e}");
        for item in [
            "in_asm",
            "op",
            "int",
            "exec",
            "cpu",
            "guest_errors",
            "unimp",
        ] {
            assert!(HELP.contains(item));
        }
    }

    #[test]
    fn disassembles_rv64_and_compressed() {
        // auipc t0,0 ; c.li a0,1 ; an all-ones word capstone cannot decode.
        let code = [0x97, 0x02, 0x00, 0x00, 0x05, 0x45, 0xff, 0xff, 0xff, 0xff];
        let s = disassemble(&code, 0x8000_0000);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert!(lines[0].starts_with("0x0000000080000000:  00000297"), "{s}");
        assert!(lines[0].contains("auipc"), "{s}");
        assert!(lines[1].starts_with("0x0000000080000004:  4505"), "{s}");
        assert!(lines[1].contains("li"), "{s}");
        assert!(lines[2].contains("0x0000000080000006"), "{s}");
    }
}
