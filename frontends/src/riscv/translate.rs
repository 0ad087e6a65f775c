//! Block translation: fetch guest instructions from RAM, expand compressed ones, decode and lift
//! each until a block end (DESIGN.md §2). A block stops after an instruction that ends it
//! (branch, jump, trap, translation-state change), at `max_insns` instructions, and at the end
//! of the guest page of its first instruction. A 32-bit instruction straddling the page end is
//! lifted alone, as a one-instruction block, its second half fetched through the MMU.

use emu_jit::env::{PAGE_MASK, PAGE_SIZE};
use emu_jit::guest::BlockKey;
use emu_jit::helper::HelperDef;
use emu_jit::ir::{Builder, ExitReason, Terminal, Type};

use super::cpu::RiscvCpu;
use super::decode::decode;
use super::lift::{LiftCtx, Lifted, TransFlags};
use super::mmu::translate_fetch;
use super::rvc;
use super::trap::{HELPER_ILLEGAL, HELPER_RAISE, HELPER_UNIMPLEMENTED};

/// Instruction access fault (Privileged ISA Table 3.6).
const CAUSE_FETCH_ACCESS: u64 = 1;

/// One fetched instruction.
enum Fetched {
    /// `raw` is the encoding as in memory (16-bit ones zero-extended), `len` 2 or 4.
    Insn { raw: u32, len: u64 },
    /// The bytes cannot be fetched: raise `cause` with `tval` when the block runs.
    Fault { cause: u64, tval: u64 },
    /// Stop the block before this instruction (it is fetched as the start of its own block).
    Stop,
}

/// Read a halfword of guest RAM at physical `addr`.
fn read_u16(cpu: &RiscvCpu, addr: u64) -> Option<u16> {
    let ram = cpu.bus.ram_at(addr, 2)?;
    let mut buf = [0u8; 2];
    ram.read(addr, &mut buf).then(|| u16::from_le_bytes(buf))
}

/// Fetch the instruction at `pc`. `room` is the number of bytes left in the page from `pc`;
/// `first` says whether it starts the block.
fn fetch(cpu: &mut RiscvCpu, key: &BlockKey, pc: u64, room: u64, first: bool) -> Fetched {
    let phys = key.phys_pc.wrapping_add(pc.wrapping_sub(key.pc));
    let fault = |tval| Fetched::Fault {
        cause: CAUSE_FETCH_ACCESS,
        tval,
    };
    let Some(lo) = read_u16(cpu, phys) else {
        return if first { fault(pc) } else { Fetched::Stop };
    };
    if lo & 3 != 3 {
        return Fetched::Insn {
            raw: u32::from(lo),
            len: 2,
        };
    }
    let hi_vaddr = pc.wrapping_add(2);
    let hi = if room > 2 {
        read_u16(cpu, phys.wrapping_add(2))
    } else if !first {
        // Straddles the page end: lifted alone as the next block.
        return Fetched::Stop;
    } else {
        match translate_fetch(cpu, hi_vaddr) {
            Ok(hi_phys) => read_u16(cpu, hi_phys),
            Err(e) => {
                return Fetched::Fault {
                    cause: e.cause(),
                    tval: e.tval(),
                }
            }
        }
    };
    match hi {
        Some(hi) => Fetched::Insn {
            raw: u32::from(lo) | u32::from(hi) << 16,
            len: 4,
        },
        None if first => fault(hi_vaddr),
        None => Fetched::Stop,
    }
}

/// Call a one-argument trap helper with `arg` and leave with the exception pending at `pc`.
fn gen_trap(b: &mut Builder, pc: u64, def: &'static HelperDef, args: &[u64]) {
    let args: Vec<_> = args.iter().map(|&a| b.iconst(Type::I64, a)).collect();
    b.call(def, &args);
    b.exit(Terminal::Exit {
        reason: ExitReason::Exception,
        pc,
    });
}

/// Lift the block at `key` into `b` (the contract of `Guest::translate`).
pub fn translate_block(cpu: &mut RiscvCpu, key: &BlockKey, max_insns: u32, b: &mut Builder) {
    let flags = TransFlags::from_key_flags(key.flags);
    // Bytes from the block start to the end of its page.
    let limit = PAGE_SIZE - (key.pc & !PAGE_MASK);
    let max_insns = max_insns.max(1);
    let mut offset = 0u64;
    let mut count = 0u32;
    loop {
        let pc = key.pc.wrapping_add(offset);
        let (raw, len) = match fetch(cpu, key, pc, limit - offset, count == 0) {
            Fetched::Insn { raw, len } => (raw, len),
            Fetched::Stop => {
                b.goto(pc);
                break;
            }
            Fetched::Fault { cause, tval } => {
                b.insn_start(pc, 0);
                gen_trap(b, pc, &HELPER_RAISE, &[cause, tval]);
                break;
            }
        };
        b.insn_start(pc, raw);
        offset += len;
        count += 1;
        let insn = if len == 2 {
            match rvc::expand(raw as u16) {
                Some(insn) => insn,
                None => {
                    gen_trap(b, pc, &HELPER_ILLEGAL, &[u64::from(raw)]);
                    break;
                }
            }
        } else {
            raw
        };
        let Some(pattern) = decode(insn) else {
            gen_trap(b, pc, &HELPER_UNIMPLEMENTED, &[u64::from(raw)]);
            break;
        };
        let ops_before = b.len();
        let mut ctx = LiftCtx {
            b: &mut *b,
            pc,
            len,
            raw,
            flags,
        };
        match (pattern.lift)(&mut ctx, insn) {
            Lifted::Continue => {
                if count >= max_insns || offset >= limit {
                    b.goto(pc.wrapping_add(len));
                    break;
                }
            }
            Lifted::EndBlock => break,
            Lifted::Illegal => {
                // Lifters decide legality before emitting (the Builder cannot drop ops).
                if b.len() != ops_before {
                    log::error!(
                        "riscv: lifter for {} emitted ops before reporting illegal at {pc:#x}",
                        pattern.name
                    );
                }
                gen_trap(b, pc, &HELPER_ILLEGAL, &[u64::from(raw)]);
                break;
            }
        }
    }
    b.set_guest_size(offset as u32);
}
