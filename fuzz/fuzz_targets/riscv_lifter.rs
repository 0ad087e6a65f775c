//! RISC-V decoder + lifter + both executors on arbitrary instruction bytes.
//!
//! Two identical harts get the same program (the input's tail, at the start of RAM). Each runs
//! up to `MAX_BLOCKS` blocks — translated, verified, then executed by the IR interpreter on one
//! hart and by Cranelift-compiled code on the other — with pending exceptions delivered and
//! interrupts checked at block boundaries, as the run loop does. After every block the two harts
//! must agree on x/f registers, fcsr, pc, privilege, retired-instruction count, the pending
//! exception, the CSRs and all of RAM (DESIGN.md §3: the interpreter is the reference).
//!
//! Input layout: byte 0 selects the privilege and mstatus.FS, byte 1 the block length limit,
//! bytes 2..10 seed the integer registers (several point into RAM so loads and stores land),
//! the rest is the program (at most `MAX_CODE` bytes).
#![no_main]

use emu_devices::clock::VirtualTime;
use emu_devices::{Bus, GuestRam};
use emu_frontends::riscv::cpu::{Privilege, RiscvCpu};
use emu_frontends::riscv::csr::{MSTATUS_FS, MSTATUS_FS_SHIFT};
use emu_frontends::riscv::translate::translate_block;
use emu_fuzz::Input;
use emu_jit::backend::{BackendError, CodeArena, Compiler};
use emu_jit::codemap::CodeMap;
use emu_jit::exec::BlockExit;
use emu_jit::guest::Guest;
use emu_jit::ir::{verify, Builder, IrBlock};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

const RAM_BASE: u64 = 0x8000_0000;
/// Small, so comparing all of RAM after every block stays cheap.
const RAM_SIZE: u64 = 0x1_0000;
/// Trap vector: the second half of RAM (zeros: `c.unimp` traps again, bounded by MAX_BLOCKS).
const TRAP_VECTOR: u64 = RAM_BASE + 0x8000;
const MAX_CODE: usize = 1024;
const MAX_BLOCKS: usize = 32;
/// Blocks compiled into one arena before it is dropped and a fresh one made.
const ARENA_BLOCKS: usize = 4096;

/// Tier 1 kept across inputs: compiling dominates the run time, and mutated inputs mostly
/// repeat blocks, so compiled code is cached by the block's IR text.
struct Tier1 {
    compiler: Compiler,
    arena: CodeArena,
    /// Entry points in `arena` (None: tier 1 does not lower the block).
    cache: HashMap<String, Option<usize>>,
}

impl Tier1 {
    fn new() -> Tier1 {
        Tier1 {
            compiler: Compiler::new().expect("host ISA supported by cranelift"),
            arena: CodeArena::new(64 << 20).expect("code arena"),
            cache: HashMap::new(),
        }
    }
}

thread_local! {
    static TIER1: RefCell<Tier1> = RefCell::new(Tier1::new());
}

fn hart(input_regs: u64, privilege: Privilege, fs: u64) -> Box<RiscvCpu> {
    let mut bus = Bus::new();
    bus.add_ram(Arc::new(
        GuestRam::new(RAM_BASE, RAM_SIZE).expect("64 KiB of RAM"),
    ));
    let mut cpu = RiscvCpu::new(
        0,
        Arc::new(bus),
        Arc::new(CodeMap::new()),
        Arc::new(VirtualTime::new()),
    );
    cpu.common.pc = RAM_BASE;
    cpu.privilege = privilege as u64;
    cpu.csr.mstatus = (cpu.csr.mstatus & !MSTATUS_FS) | (fs << MSTATUS_FS_SHIFT);
    cpu.csr.mtvec = TRAP_VECTOR;
    cpu.csr.stvec = TRAP_VECTOR;
    // A simple generator: x1..x31 get a mix of RAM addresses and arbitrary values.
    let mut s = input_regs | 1;
    for i in 1..32 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        cpu.x[i] = match i % 4 {
            0 | 1 => RAM_BASE + (s % RAM_SIZE),
            2 => s & 0xff,
            _ => s,
        };
        cpu.f[i] = s.rotate_left(i as u32);
    }
    cpu
}

fn translate(cpu: &mut RiscvCpu, max_insns: u32) -> Option<IrBlock> {
    let key = cpu.block_key()?;
    let mut b = Builder::new(key.pc);
    translate_block(cpu, &key, max_insns, &mut b);
    let block = b.finish();
    if let Err(e) = verify::verify(&block) {
        panic!("lifter produced malformed IR: {e:?}\n{block}");
    }
    Some(block)
}

/// Run `block` as native code on `cpu`; `None` if tier 1 does not lower it (it stays on the
/// interpreter in the engine too).
fn run_native(block: &IrBlock, cpu: &mut RiscvCpu) -> Option<BlockExit> {
    TIER1.with(|t| {
        let mut t = t.borrow_mut();
        let text = block.to_string();
        let entry = match t.cache.get(&text) {
            Some(&e) => e,
            None => {
                if t.arena.installed() >= ARENA_BLOCKS {
                    // No code from the old arena runs or is referenced any more.
                    t.arena = CodeArena::new(64 << 20).expect("code arena");
                    t.cache.clear();
                }
                let e = match t.compiler.compile(block, 0, None) {
                    Ok(code) => {
                        Some(t.arena.install(&code).expect("install compiled block") as usize)
                    }
                    Err(BackendError::Unsupported(_)) => None,
                    Err(e) => panic!("tier 1 failed on a verified block: {e}\n{block}"),
                };
                t.cache.insert(text, e);
                e
            }
        }?;
        // SAFETY: `entry` was installed in the current arena from this very IR text (the cache
        // is cleared with the arena); `cpu` is a live RiscvCpu borrowed only here; the block was
        // lifted for this guest (its helpers and slow path) and compiled without chain slots.
        Some(unsafe { t.arena.enter(cpu.state_ptr(), entry as *const u8).0 })
    })
}

fn run_interp(block: &IrBlock, cpu: &mut RiscvCpu) -> BlockExit {
    // SAFETY: as in `run_native`: the state is a live RiscvCpu borrowed only here, and the
    // block's globals and helpers are this guest's.
    unsafe { emu_jit::interp::run_block(block, cpu.state_ptr()) }
}

/// Whether the two harts' RAM holds the same bytes (compared a page at a time, no allocation).
fn same_ram(a: &RiscvCpu, b: &RiscvCpu) -> bool {
    let (mut pa, mut pb) = ([0u8; 4096], [0u8; 4096]);
    (RAM_BASE..RAM_BASE + RAM_SIZE).step_by(4096).all(|addr| {
        let ra = a
            .bus
            .ram_at(addr, 4096)
            .is_some_and(|r| r.read(addr, &mut pa));
        let rb = b
            .bus
            .ram_at(addr, 4096)
            .is_some_and(|r| r.read(addr, &mut pb));
        assert!(ra && rb, "RAM readable");
        pa == pb
    })
}

/// Panic (a finding) if the two harts disagree.
fn compare(a: &RiscvCpu, b: &RiscvCpu, what: &str, block: Option<&IrBlock>) {
    let ctx = || match block {
        Some(bl) => format!("{what}\n{bl}"),
        None => what.to_string(),
    };
    assert_eq!(a.x, b.x, "x registers: {}", ctx());
    assert_eq!(a.f, b.f, "f registers: {}", ctx());
    assert_eq!((a.frm, a.fflags), (b.frm, b.fflags), "fcsr: {}", ctx());
    assert_eq!(a.common.pc, b.common.pc, "pc: {}", ctx());
    assert_eq!(
        a.common.insn_count,
        b.common.insn_count,
        "insn_count: {}",
        ctx()
    );
    assert_eq!(a.privilege, b.privilege, "privilege: {}", ctx());
    assert_eq!(
        a.common.exception_pending,
        b.common.exception_pending,
        "exception pending: {}",
        ctx()
    );
    if a.common.exception_pending != 0 {
        assert_eq!(
            (a.pending_cause, a.pending_tval),
            (b.pending_cause, b.pending_tval),
            "pending exception: {}",
            ctx()
        );
    }
    assert_eq!(
        (a.reservation, a.reservation_value),
        (b.reservation, b.reservation_value),
        "LR reservation: {}",
        ctx()
    );
    assert_eq!(
        format!("{:?}", a.csr),
        format!("{:?}", b.csr),
        "CSRs: {}",
        ctx()
    );
    assert!(same_ram(a, b), "RAM differs: {}", ctx());
}

fuzz_target!(
    init: emu_fuzz::warm_up_tier1(),
    |data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let privilege = match mode & 3 {
        0 => Privilege::User,
        1 => Privilege::Supervisor,
        _ => Privilege::Machine,
    };
    let fs = u64::from((mode >> 2) & 3);
    let max_insns = u32::from(input.u8() % 64) + 1;
    let regs = input.u64();
    let code = input.bytes(MAX_CODE);
    if code.is_empty() {
        return;
    }

    let mut interp = hart(regs, privilege, fs);
    let mut native = hart(regs, privilege, fs);
    for cpu in [&interp, &native] {
        let ok = cpu
            .bus
            .ram_at(RAM_BASE, code.len() as u64)
            .is_some_and(|r| r.write(RAM_BASE, code));
        assert!(ok, "program fits in RAM");
    }

    for step in 0..MAX_BLOCKS {
        let ba = translate(&mut interp, max_insns);
        let bb = translate(&mut native, max_insns);
        let (ba, bb) = match (ba, bb) {
            (Some(ba), Some(bb)) => (ba, bb),
            (None, None) => {
                // The fetch faulted: both have the exception pending.
                compare(&interp, &native, "fetch fault", None);
                interp.deliver_exception();
                native.deliver_exception();
                continue;
            }
            _ => panic!("identical harts disagree on whether pc is fetchable"),
        };
        assert_eq!(
            format!("{ba}"),
            format!("{bb}"),
            "identical harts lifted different IR"
        );
        let ea = run_interp(&ba, &mut interp);
        let eb = match run_native(&bb, &mut native) {
            Some(e) => e,
            None => run_interp(&bb, &mut native),
        };
        assert_eq!(ea, eb, "block exit at step {step}\n{ba}");
        compare(&interp, &native, &format!("after block {step}"), Some(&ba));

        for cpu in [&mut interp, &mut native] {
            cpu.deliver_exception();
            cpu.check_interrupts();
        }
        compare(&interp, &native, "after trap entry", None);
    }
});
