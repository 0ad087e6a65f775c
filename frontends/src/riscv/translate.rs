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
use super::decode::{decode, extension_gap};
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

/// Bytes of code [`CodeWindow`] reads at once: 64 instructions of 4 bytes, the engine's block
/// limit.
const WINDOW: usize = 256;

/// The first [`WINDOW`] bytes of a block's code (or up to its page end), read from RAM in one
/// copy: fetching halfword by halfword cost a RAM-region lookup and a copy call each, a third
/// of the lifter's time. Halfwords outside the window (or all of them, if the window could
/// not be read as one range) are fetched one by one as before, so what a block sees of
/// memory does not change.
struct CodeWindow {
    /// Guest physical address of `bytes[0]`.
    phys: u64,
    /// Bytes of `bytes` read from RAM.
    len: usize,
    bytes: [u8; WINDOW],
}

impl CodeWindow {
    /// The code at physical `phys`, of which `room` bytes are left in the page.
    fn read(cpu: &RiscvCpu, phys: u64, room: u64) -> CodeWindow {
        let mut w = CodeWindow {
            phys,
            len: 0,
            bytes: [0; WINDOW],
        };
        let n = room.min(WINDOW as u64) as usize;
        if let (Some(ram), Some(buf)) = (cpu.bus.ram_at(phys, n as u64), w.bytes.get_mut(..n)) {
            if ram.read(phys, buf) {
                w.len = n;
            }
        }
        w
    }

    /// The halfword at physical `addr`.
    fn u16_at(&self, cpu: &RiscvCpu, addr: u64) -> Option<u16> {
        let off = addr.wrapping_sub(self.phys);
        if off.saturating_add(2) <= self.len as u64 {
            if let Some(&[lo, hi]) = self.bytes.get(off as usize..off as usize + 2) {
                return Some(u16::from_le_bytes([lo, hi]));
            }
        }
        read_u16(cpu, addr)
    }
}

/// Fetch the instruction at `pc`. `room` is the number of bytes left in the page from `pc`;
/// `first` says whether it starts the block.
fn fetch(
    cpu: &mut RiscvCpu,
    key: &BlockKey,
    code: &CodeWindow,
    pc: u64,
    room: u64,
    first: bool,
) -> Fetched {
    let phys = key.phys_pc.wrapping_add(pc.wrapping_sub(key.pc));
    let fault = |tval| Fetched::Fault {
        cause: CAUSE_FETCH_ACCESS,
        tval,
    };
    let Some(lo) = code.u16_at(cpu, phys) else {
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
        code.u16_at(cpu, phys.wrapping_add(2))
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
    let code = CodeWindow::read(cpu, key.phys_pc, limit);
    let mut offset = 0u64;
    let mut count = 0u32;
    loop {
        let pc = key.pc.wrapping_add(offset);
        let (raw, len) = match fetch(cpu, key, &code, pc, limit - offset, count == 0) {
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
            // An extension emu lacks is an emulator gap (logged, `--strict`); anything else is
            // a reserved encoding, which is simply illegal (Unprivileged ISA §2.2).
            let helper = if extension_gap(insn).is_some() {
                &HELPER_UNIMPLEMENTED
            } else {
                &HELPER_ILLEGAL
            };
            gen_trap(b, pc, helper, &[u64::from(raw)]);
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

/// A RISC-V hart on RAM for lifter tests: assemble words into RAM, translate and run blocks on
/// the IR interpreter (the reference executor).
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::riscv::decode::tables;
    use emu_devices::clock::VirtualTime;
    use emu_devices::{Bus, GuestRam};
    use emu_jit::codemap::CodeMap;
    use emu_jit::exec::BlockExit;
    use emu_jit::guest::Guest;
    use std::sync::Arc;

    pub const RAM_BASE: u64 = 0x8000_0000;
    pub const RAM_SIZE: u64 = 0x10_0000;

    pub fn hart() -> Box<RiscvCpu> {
        let mut bus = Bus::new();
        let ram = GuestRam::new(RAM_BASE, RAM_SIZE).expect("test RAM");
        bus.add_ram(Arc::new(ram));
        let mut cpu = RiscvCpu::new(
            0,
            Arc::new(bus),
            Arc::new(CodeMap::new()),
            Arc::new(VirtualTime::new()),
        );
        cpu.common.pc = RAM_BASE;
        cpu
    }

    /// Write little-endian bytes at guest physical `addr`.
    pub fn poke(cpu: &RiscvCpu, addr: u64, bytes: &[u8]) {
        let ram = cpu.bus.ram_at(addr, bytes.len() as u64).expect("in RAM");
        assert!(ram.write(addr, bytes));
    }

    pub fn peek_u64(cpu: &RiscvCpu, addr: u64) -> u64 {
        cpu.bus
            .ram_at(addr, 8)
            .and_then(|r| r.read_u64(addr))
            .expect("in RAM")
    }

    /// Put 32-bit instruction words at `addr`.
    pub fn load_words(cpu: &RiscvCpu, addr: u64, words: &[u32]) {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        poke(cpu, addr, &bytes);
    }

    /// Put a program at RAM_BASE followed by `j .` (the end marker [`run_to`] stops at);
    /// returns the end marker's address.
    pub fn program(cpu: &RiscvCpu, words: &[u32]) -> u64 {
        load_words(cpu, RAM_BASE, words);
        let end = RAM_BASE + 4 * words.len() as u64;
        load_words(cpu, end, &[0x0000_006f]);
        end
    }

    /// Translate the block at the hart's pc (verified IR).
    pub fn translate(cpu: &mut RiscvCpu, max_insns: u32) -> emu_jit::ir::IrBlock {
        let key = cpu.block_key().expect("fetchable pc");
        let mut b = Builder::new(key.pc);
        translate_block(cpu, &key, max_insns, &mut b);
        let block = b.finish();
        if let Err(e) = emu_jit::ir::verify::verify(&block) {
            panic!("{e:?}\n{block}");
        }
        block
    }

    /// The two executors of the engine.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Tier {
        /// The IR interpreter (tier 0, the reference).
        Interp,
        /// Cranelift-compiled code (tier 1).
        Native,
    }

    /// Translate and run one block on the interpreter.
    pub fn step(cpu: &mut RiscvCpu, max_insns: u32) -> BlockExit {
        step_on(cpu, max_insns, Tier::Interp)
    }

    /// Translate and run one block on the given executor.
    pub fn step_on(cpu: &mut RiscvCpu, max_insns: u32, tier: Tier) -> BlockExit {
        let block = translate(cpu, max_insns);
        let state = cpu.state_ptr();
        match tier {
            // SAFETY: `state` is the CpuCommon at the start of this live RiscvCpu, which
            // nothing else borrows during the call; the block's globals are offsets inside
            // RiscvCpu and its helpers are this guest's.
            Tier::Interp => unsafe { emu_jit::interp::run_block(&block, state) },
            Tier::Native => {
                let code = emu_jit::backend::compile_standalone(&block)
                    .unwrap_or_else(|e| panic!("{e:?}\n{block}"));
                // SAFETY: as above.
                unsafe { code.run(state) }
            }
        }
    }

    /// Run blocks until the pc reaches `end` or an exception is pending; returns the last exit.
    pub fn run_to(cpu: &mut RiscvCpu, end: u64) -> BlockExit {
        run_to_on(cpu, end, Tier::Interp)
    }

    /// [`run_to`] on the given executor.
    pub fn run_to_on(cpu: &mut RiscvCpu, end: u64, tier: Tier) -> BlockExit {
        for _ in 0..1000 {
            let exit = step_on(cpu, 64, tier);
            if cpu.common.exception_pending != 0 || cpu.common.pc == end {
                return exit;
            }
        }
        panic!("no progress to {end:#x}, pc {:#x}", cpu.common.pc);
    }

    /// The encoding of the named instruction's fixed bits.
    pub fn bits_of(name: &str) -> u32 {
        tables()
            .iter()
            .flat_map(|t| t.iter())
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no pattern {name}"))
            .bits
    }

    pub fn r_type(name: &str, rd: u32, rs1: u32, rs2: u32) -> u32 {
        bits_of(name) | rd << 7 | rs1 << 15 | rs2 << 20
    }

    pub fn i_type(name: &str, rd: u32, rs1: u32, imm: i32) -> u32 {
        bits_of(name) | rd << 7 | rs1 << 15 | ((imm as u32) & 0xfff) << 20
    }

    pub fn s_type(name: &str, rs1: u32, rs2: u32, imm: i32) -> u32 {
        let imm = imm as u32;
        bits_of(name) | (imm & 0x1f) << 7 | rs1 << 15 | rs2 << 20 | ((imm >> 5) & 0x7f) << 25
    }

    pub fn b_type(name: &str, rs1: u32, rs2: u32, imm: i32) -> u32 {
        let imm = imm as u32;
        bits_of(name)
            | ((imm >> 11) & 1) << 7
            | ((imm >> 1) & 0xf) << 8
            | rs1 << 15
            | rs2 << 20
            | ((imm >> 5) & 0x3f) << 25
            | ((imm >> 12) & 1) << 31
    }

    /// Run one instruction with x1 = a, x2 = b on both executors, which must agree; returns
    /// x3.
    pub fn exec1(insn: u32, a: u64, b: u64) -> u64 {
        let results = [Tier::Interp, Tier::Native].map(|tier| {
            let mut cpu = hart();
            load_words(&cpu, RAM_BASE, &[insn]);
            cpu.x[1] = a;
            cpu.x[2] = b;
            let exit = step_on(&mut cpu, 1, tier);
            assert_eq!(
                cpu.common.exception_pending, 0,
                "{insn:#010x} raised on {tier:?}"
            );
            assert_eq!(exit, BlockExit::Goto { slot: 0 });
            assert_eq!(cpu.common.pc, RAM_BASE + 4);
            cpu.x[3]
        });
        assert_eq!(
            results[0], results[1],
            "{insn:#010x}: interpreter vs Cranelift"
        );
        results[0]
    }

    /// `name x3, x1, x2` with x1 = a, x2 = b.
    pub fn rr(name: &str, a: u64, b: u64) -> u64 {
        exec1(r_type(name, 3, 1, 2), a, b)
    }

    /// `name x3, x1, imm` (I-type or shift-immediate: `imm` goes to bits 31:20).
    pub fn ri(name: &str, a: u64, imm: i32) -> u64 {
        exec1(i_type(name, 3, 1, imm), a, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use emu_jit::exec::BlockExit;
    use emu_jit::ir::Op;

    fn pending(cpu: &RiscvCpu) -> (u64, u64, u64) {
        assert_eq!(cpu.common.exception_pending, 1, "no exception pending");
        (cpu.pending_cause, cpu.pending_tval, cpu.common.pc)
    }

    fn last_exit(block: &emu_jit::ir::IrBlock) -> Option<Terminal> {
        block.ops.iter().rev().find_map(|op| match op {
            Op::Exit(t) => Some(*t),
            _ => None,
        })
    }

    /// A block longer than the code window: the instructions past it are fetched one by
    /// one, and the block runs as the same instructions would one at a time.
    #[test]
    fn blocks_past_the_code_window() {
        let n = WINDOW / 4 + 20;
        let words: Vec<u32> = (0..n).map(|i| i_type("addi", 1, 1, i as i32)).collect();
        for max in [n as u32, 1] {
            let mut cpu = hart();
            let end = program(&cpu, &words);
            if max > 1 {
                assert_eq!(translate(&mut cpu, max).insn_count, max);
            }
            for _ in 0..n {
                if cpu.common.pc == end {
                    break;
                }
                step(&mut cpu, max);
            }
            assert_eq!(cpu.common.pc, end);
            assert_eq!(cpu.x[1], (0..n as u64).sum::<u64>());
        }
    }

    #[test]
    fn code_window_reads_what_ram_holds() {
        let cpu = hart();
        load_words(&cpu, RAM_BASE + 0x10, &[0x1122_3344, 0x5566_7788]);
        let w = CodeWindow::read(&cpu, RAM_BASE + 0x10, 6);
        assert_eq!(w.len, 6);
        assert_eq!(w.u16_at(&cpu, RAM_BASE + 0x10), Some(0x3344));
        assert_eq!(w.u16_at(&cpu, RAM_BASE + 0x14), Some(0x7788));
        // Past the window and outside RAM: read as before.
        assert_eq!(w.u16_at(&cpu, RAM_BASE + 0x16), Some(0x5566));
        assert_eq!(w.u16_at(&cpu, RAM_BASE - 2), None);
        let w = CodeWindow::read(&cpu, RAM_BASE + RAM_SIZE - 4, 64);
        assert_eq!(w.len, 0, "not all of it in RAM: nothing read at once");
        assert_eq!(w.u16_at(&cpu, RAM_BASE + RAM_SIZE - 2), Some(0));
    }

    #[test]
    fn stops_at_max_insns() {
        let mut cpu = hart();
        program(&cpu, &[i_type("addi", 1, 1, 1); 5]);
        let block = translate(&mut cpu, 3);
        assert_eq!(block.insn_count, 3);
        assert_eq!(block.guest_size, 12);
        assert_eq!(
            last_exit(&block),
            Some(Terminal::Goto { pc: RAM_BASE + 12 })
        );
        let exit = step(&mut cpu, 3);
        assert_eq!(
            (exit, cpu.x[1], cpu.common.insn_count),
            (BlockExit::Goto { slot: 0 }, 3, 3)
        );
    }

    #[test]
    fn stops_at_the_page_end() {
        let mut cpu = hart();
        let start = RAM_BASE + 0x1000 - 8;
        load_words(&cpu, start, &[i_type("addi", 1, 1, 1); 4]);
        cpu.common.pc = start;
        let block = translate(&mut cpu, 64);
        assert_eq!((block.insn_count, block.guest_size), (2, 8));
        assert_eq!(
            last_exit(&block),
            Some(Terminal::Goto {
                pc: RAM_BASE + 0x1000
            })
        );
    }

    #[test]
    fn mixes_compressed_and_full_instructions() {
        let mut cpu = hart();
        let bytes: Vec<u8> = [
            &0x4445u16.to_le_bytes()[..],               // c.li x8, 17
            &0x1401u16.to_le_bytes()[..],               // c.addi x8, -32
            &i_type("addi", 9, 8, 1).to_le_bytes()[..], // addi x9, x8, 1
            &0x854au16.to_le_bytes()[..],               // c.mv x10, x18
            &0x0000_006fu32.to_le_bytes()[..],          // j .
        ]
        .concat();
        poke(&cpu, RAM_BASE, &bytes);
        cpu.x[18] = 0x1234;
        let end = RAM_BASE + 10;
        let block = translate(&mut cpu, 64);
        assert_eq!(block.insn_count, 5);
        match block.ops.first() {
            Some(Op::InsnStart { pc, insn }) => assert_eq!((*pc, *insn), (RAM_BASE, 0x4445)),
            other => panic!("{other:?}"),
        }
        run_to(&mut cpu, end);
        assert_eq!(
            (cpu.x[8], cpu.x[9], cpu.x[10]),
            ((-15i64) as u64, (-14i64) as u64, 0x1234)
        );
        assert_eq!(cpu.common.insn_count, 5);
    }

    #[test]
    fn straddling_instruction_is_a_block_of_its_own() {
        let mut cpu = hart();
        let start = RAM_BASE + 0x1000 - 4;
        poke(&cpu, start, &0x4445u16.to_le_bytes()); // c.li x8, 17
        let addi = i_type("addi", 9, 8, 1).to_le_bytes();
        poke(&cpu, start + 2, &addi);
        cpu.common.pc = start;
        let block = translate(&mut cpu, 64);
        assert_eq!(block.insn_count, 1);
        assert_eq!(last_exit(&block), Some(Terminal::Goto { pc: start + 2 }));
        step(&mut cpu, 64);
        let block = translate(&mut cpu, 64);
        assert_eq!((block.insn_count, block.guest_size), (1, 4));
        step(&mut cpu, 64);
        assert_eq!((cpu.x[9], cpu.common.pc), (18, start + 6));
    }

    #[test]
    fn reserved_compressed_raises_illegal_with_the_halfword() {
        let mut cpu = hart();
        load_words(&cpu, RAM_BASE, &[i_type("addi", 1, 0, 1), 0x6101_6101]);
        let exit = step(&mut cpu, 64);
        assert!(matches!(
            exit,
            BlockExit::Fault | BlockExit::Exit(ExitReason::Exception)
        ));
        assert_eq!(pending(&cpu), (2, 0x6101, RAM_BASE + 4));
        assert_eq!((cpu.x[1], cpu.common.insn_count), (1, 1));
    }

    #[test]
    fn unimplemented_encoding_raises_illegal_with_the_word() {
        let mut cpu = hart();
        program(&cpu, &[0x0800_4033]); // Zbkb pack
        step(&mut cpu, 64);
        assert_eq!(pending(&cpu), (2, 0x0800_4033, RAM_BASE));
        assert_eq!(cpu.common.insn_count, 0);
    }

    #[test]
    fn unfetchable_code_raises_instruction_access_fault() {
        let mut cpu = hart();
        let key = BlockKey {
            pc: 0x1000,
            phys_pc: 0x1000,
            flags: cpu.trans_flags().to_key_flags(),
        };
        let mut b = Builder::new(key.pc);
        translate_block(&mut cpu, &key, 64, &mut b);
        let block = b.finish();
        assert!(emu_jit::ir::verify::verify(&block).is_ok());
        let state = emu_jit::guest::Guest::state_ptr(&mut *cpu);
        // SAFETY: as in testutil::step.
        unsafe { emu_jit::interp::run_block(&block, state) };
        assert_eq!(pending(&cpu), (1, 0x1000, 0x1000));
    }

    #[test]
    fn load_fault_mid_block_stops_at_the_faulting_instruction() {
        for tier in [Tier::Interp, Tier::Native] {
            let mut cpu = hart();
            program(
                &cpu,
                &[
                    i_type("addi", 1, 0, 1),
                    i_type("ld", 2, 3, 0),
                    i_type("addi", 1, 0, 2),
                ],
            );
            cpu.x[3] = 0x10; // no RAM or device there
            assert_eq!(step_on(&mut cpu, 64, tier), BlockExit::Fault, "{tier:?}");
            assert_eq!(pending(&cpu), (5, 0x10, RAM_BASE + 4), "{tier:?}");
            assert_eq!((cpu.x[1], cpu.common.insn_count), (1, 1), "{tier:?}");
        }
    }

    /// A loop over several blocks (branch back, compressed and full instructions) gives the
    /// same state on both executors.
    #[test]
    fn loop_agrees_on_both_executors() {
        // x1 = 10; x2 = 0; loop: x2 += x1 * 3 (sh1add); x1 -= 1 (c.addi); bnez x1, loop
        let results = [Tier::Interp, Tier::Native].map(|tier| {
            let mut cpu = hart();
            let mut bytes = Vec::new();
            bytes.extend(i_type("addi", 1, 0, 10).to_le_bytes());
            bytes.extend(i_type("addi", 2, 0, 0).to_le_bytes());
            bytes.extend(r_type("sh1add", 3, 1, 1).to_le_bytes()); // x3 = 2*x1 + x1
            bytes.extend(r_type("add", 2, 2, 3).to_le_bytes());
            bytes.extend(0x10fdu16.to_le_bytes()); // c.addi x1, -1
            bytes.extend(b_type("bne", 1, 0, -10).to_le_bytes());
            bytes.extend(0x0000_006fu32.to_le_bytes());
            poke(&cpu, RAM_BASE, &bytes);
            let end = RAM_BASE + bytes.len() as u64 - 4;
            run_to_on(&mut cpu, end, tier);
            (cpu.x[1], cpu.x[2], cpu.common.insn_count)
        });
        // The loop's last branch falls through into `j .` in the same block (a superblock),
        // which retires once before the block ends at its own start.
        assert_eq!(results[0], (0, 165, 2 + 4 * 10 + 1));
        assert_eq!(results[0], results[1]);
    }

    /// Random straight-line streams of the register-only integer instructions (RV64I ALU, M,
    /// Zb*, Zicond) with random operands: both executors must end in the same state.
    #[test]
    fn random_alu_streams_agree_on_both_executors() {
        use crate::riscv::lift::{rvi, rvm, zb, zicond};
        let alu: Vec<_> = [rvi::RV64I, rvm::RV64M, zb::ZBA, zb::ZBB, zb::ZBC, zb::ZBS]
            .iter()
            .chain([zicond::ZICOND].iter())
            .flat_map(|t| t.iter())
            .filter(|p| matches!(p.bits & 0x7f, 0x13 | 0x1b | 0x33 | 0x3b))
            .collect();
        assert!(alu.len() > 80, "{}", alu.len());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..40 {
            let mut words = Vec::new();
            for _ in 0..24 {
                let p = alu[(next() % alu.len() as u64) as usize];
                // Free fields random; rd avoids x0 half of the time only by chance.
                words.push((next() as u32 & !p.mask) | p.bits);
            }
            let mut init = [0u64; 32];
            for (i, r) in init.iter_mut().enumerate().skip(1) {
                *r = match next() % 4 {
                    0 => next() % 8,
                    1 => (i as u64).wrapping_neg(),
                    2 => 1 << (next() % 64),
                    _ => next(),
                };
            }
            let results = [Tier::Interp, Tier::Native].map(|tier| {
                let mut cpu = hart();
                let end = program(&cpu, &words);
                cpu.x = init;
                run_to_on(&mut cpu, end, tier);
                assert_eq!(cpu.common.exception_pending, 0, "round {round}");
                (cpu.x, cpu.common.insn_count)
            });
            assert_eq!(results[0], results[1], "round {round}: {words:08x?}");
            assert_eq!(results[0].0[0], 0);
        }
    }

    #[test]
    fn straddling_instruction_into_missing_memory_faults_at_run_time() {
        let mut cpu = hart();
        let pc = RAM_BASE + RAM_SIZE - 2;
        poke(&cpu, pc, &0x0013u16.to_le_bytes()); // low half of a 32-bit addi
        cpu.common.pc = pc;
        let block = translate(&mut cpu, 64);
        assert_eq!(block.insn_count, 1);
        step(&mut cpu, 64);
        assert_eq!(pending(&cpu), (1, pc + 2, pc));
    }

    /// Every 16-bit encoding and a sample of random 32-bit words, in every translation mode,
    /// lift to IR that verifies, whatever they are (guest-controlled input never panics).
    #[test]
    fn any_encoding_lifts_to_valid_ir() {
        let mut cpu = hart();
        let mut lifted = 0u32;
        let mut lift = |cpu: &mut RiscvCpu, word: u32, flags: TransFlags| {
            lifted += 1;
            load_words(cpu, RAM_BASE, &[word, 0x0000_006f]);
            let key = BlockKey {
                pc: RAM_BASE,
                phys_pc: RAM_BASE,
                flags: flags.to_key_flags(),
            };
            let mut b = Builder::new(key.pc);
            translate_block(cpu, &key, 4, &mut b);
            let block = b.finish();
            if let Err(e) = emu_jit::ir::verify::verify(&block) {
                panic!("{word:#010x} {flags:?}: {e:?}\n{block}");
            }
        };
        let modes = [
            TransFlags {
                privilege: 3,
                mmu_idx: 3,
                fp_enabled: true,
                fs_dirty: false,
            },
            TransFlags {
                privilege: 0,
                mmu_idx: 0,
                fp_enabled: false,
                fs_dirty: false,
            },
        ];
        for half in 0..=u16::MAX {
            if half & 3 != 3 {
                lift(
                    &mut cpu,
                    u32::from(half) | 0x0001_0000,
                    modes[usize::from(half & 1)],
                );
            }
        }
        let mut seed = 0x853c_49e6_748f_ea9bu64;
        for n in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            lift(&mut cpu, seed as u32 | 3, modes[n % 2]);
        }
        assert_eq!(lifted, 49_152 + 50_000);
    }

    #[test]
    fn key_flags_round_trip() {
        for privilege in [0, 1, 3] {
            for mmu_idx in 0..8 {
                for (fp_enabled, fs_dirty) in [(false, false), (true, false), (true, true)] {
                    let f = TransFlags {
                        privilege,
                        mmu_idx,
                        fp_enabled,
                        fs_dirty,
                    };
                    assert_eq!(TransFlags::from_key_flags(f.to_key_flags()), f);
                }
            }
        }
    }
}
