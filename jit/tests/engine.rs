//! The engine on a toy guest: every kind (interp, jit, tiered) runs the same programs to the
//! same results; chaining keeps compiled loops out of the dispatch loop; a write noted in the
//! CodeMap invalidates (and unlinks) translations; budgets stop at exact instruction counts.
//!
//! Toy ISA, one 32-bit word per instruction in TestCpu's RAM (`op << 24 | arg`):
//! 0 `r1 += arg`, 1 `r1 += 1; jump RAM_BASE + arg`, 2 halt, 3 load outside RAM (faults),
//! 4 `jump r3` (indirect), 5 yield, 6 `if r1 is odd, jump RAM_BASE + arg`. A block is one
//! instruction, or with `Toy::superblocks` runs on past ops 0 and 6 (op 6 leaves by a side
//! exit) up to `max_insns`, as RISC-V blocks do past conditional branches.

use std::sync::Arc;

use emu_jit::codemap::CodeMap;
use emu_jit::engine::{Engine, EngineKind, RunExit, MAX_IN_FLIGHT};
use emu_jit::env::{CpuCommon, PAGE_MASK};
use emu_jit::guest::{BlockKey, Guest};
use emu_jit::helper::{GuestState, HelperDef};
use emu_jit::ir::{BinOp, Builder, Cond, ExitReason, MemOp, Terminal, Type};
use emu_jit::testing::{reg_offset, test_helpers, TestCpu, RAM_BASE, RAM_SIZE};

#[repr(C)]
struct Toy {
    cpu: TestCpu,
    pages_added: Vec<u64>,
    translations: u32,
    /// What `yield_needs_run_loop` answers (the trait's default: true).
    yields_to_run_loop: bool,
    /// Blocks of several instructions (module docs).
    superblocks: bool,
    /// A virtual page mapped to another physical page of the RAM (virtual, physical);
    /// everything else is mapped one to one.
    remap: Option<(u64, u64)>,
}

// SAFETY: `Toy` is `#[repr(C)]` and starts with a `TestCpu`, which starts with `CpuCommon`; the
// executors pass the only borrow of the state into helpers and the slow path.
unsafe impl GuestState for Toy {}

impl Toy {
    fn new(program: &[u32]) -> Box<Toy> {
        let cpu = *TestCpu::new();
        let mut toy = Box::new(Toy {
            cpu,
            pages_added: Vec::new(),
            translations: 0,
            yields_to_run_loop: true,
            superblocks: false,
            remap: None,
        });
        for (i, w) in program.iter().enumerate() {
            assert!(toy.cpu.write_mem(RAM_BASE + 4 * i as u64, 4, u64::from(*w)));
        }
        toy.cpu.common.pc = RAM_BASE;
        toy
    }
}

impl Toy {
    /// Lift the instruction `word` at `pc`; whether the block may go on after it.
    fn translate_insn(&self, pc: u64, word: u32, b: &mut Builder) -> bool {
        let (op, arg) = (word >> 24, u64::from(word & 0xff_ffff));
        b.insn_start(pc, word);
        let add = |b: &mut Builder, k: u64| {
            let r1 = b.load_global(Type::I64, reg_offset(1));
            let s = b.binary_imm(BinOp::Add, Type::I64, r1, k);
            b.store_global(Type::I64, reg_offset(1), s);
        };
        match op {
            0 => {
                add(b, arg);
                return true;
            }
            1 => {
                add(b, 1);
                b.goto(RAM_BASE + arg);
            }
            2 => b.exit(Terminal::Exit {
                reason: ExitReason::Halt,
                pc: pc + 4,
            }),
            3 => {
                let a = b.iconst(Type::I64, RAM_BASE + RAM_SIZE);
                let v = b.load(Type::I64, MemOp::new(3, false, false), 0, a);
                b.store_global(Type::I64, reg_offset(2), v);
                b.goto(pc + 4);
            }
            4 => {
                let t = b.load_global(Type::I64, reg_offset(3));
                b.exit(Terminal::Indirect { pc: t });
            }
            6 => {
                let r1 = b.load_global(Type::I64, reg_offset(1));
                let odd = b.binary_imm(BinOp::And, Type::I64, r1, 1);
                let zero = b.iconst(Type::I64, 0);
                let even = b.new_label();
                b.br_cond(Cond::Eq, Type::I64, odd, zero, even);
                b.goto(RAM_BASE + arg);
                b.label(even);
                return true;
            }
            _ => b.exit(Terminal::Exit {
                reason: ExitReason::Yield,
                pc: pc + 4,
            }),
        }
        false
    }
}

const fn insn(op: u32, arg: u32) -> u32 {
    (op << 24) | arg
}

impl Guest for Toy {
    fn helpers(&self) -> Vec<&'static HelperDef> {
        test_helpers()
    }

    fn common(&mut self) -> &mut CpuCommon {
        &mut self.cpu.common
    }

    fn block_key(&mut self) -> Option<BlockKey> {
        let pc = self.cpu.common.pc;
        let fetchable = self.cpu.read_mem(pc, 4).is_some();
        let mut key = self.cpu.block_key_at_pc(fetchable)?;
        if let Some((virt, phys)) = self.remap {
            if pc & PAGE_MASK == virt {
                key.phys_pc = phys | (pc & !PAGE_MASK);
            }
        }
        Some(key)
    }

    fn yield_needs_run_loop(&mut self) -> bool {
        self.yields_to_run_loop
    }

    fn translate(&mut self, key: &BlockKey, max_insns: u32, b: &mut Builder) {
        self.translations += 1;
        let mut pc = key.pc;
        let mut count = 0;
        loop {
            let phys = key.phys_pc.wrapping_add(pc.wrapping_sub(key.pc));
            let word = self.cpu.read_mem(phys, 4).unwrap_or(0) as u32;
            count += 1;
            b.set_guest_size(4 * count);
            if !self.translate_insn(pc, word, b) {
                break;
            }
            pc += 4;
            if !self.superblocks || count >= max_insns || self.cpu.read_mem(pc, 4).is_none() {
                b.goto(pc);
                break;
            }
        }
    }

    fn code_page_added(&mut self, phys_page: u64) {
        self.pages_added.push(phys_page);
    }
}

const KINDS: [EngineKind; 3] = [EngineKind::Interp, EngineKind::Jit, EngineKind::Tiered];

/// r1 += 1, r1 += 2, then back to the start: 4 per 3 instructions.
const LOOP: [u32; 3] = [insn(0, 1), insn(0, 2), insn(1, 0)];

fn engine(kind: EngineKind, map: &Arc<CodeMap>) -> Engine {
    let mut e = Engine::new(kind, map.clone()).expect("engine starts");
    e.set_tier_up_threshold(20);
    e
}

#[test]
fn kinds_parse() {
    assert_eq!(
        "tiered".parse::<EngineKind>().ok(),
        Some(EngineKind::Tiered)
    );
    assert_eq!("jit".parse::<EngineKind>().ok(), Some(EngineKind::Jit));
    assert_eq!(
        "interp".parse::<EngineKind>().ok(),
        Some(EngineKind::Interp)
    );
    assert!("fast".parse::<EngineKind>().is_err());
}

#[test]
fn every_kind_stops_at_the_exact_budget() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        let mut toy = Toy::new(&LOOP);
        // Several slices, so tiered mode tiers up between them.
        for slice in 1..=10u64 {
            toy.cpu.common.insn_limit = 300 * slice + 1;
            assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
            assert_eq!(toy.cpu.common.insn_count, 300 * slice + 1, "{kind:?}");
            if kind == EngineKind::Tiered {
                e.wait_for_compiles();
            }
        }
        // 3001 instructions: 1000 loops (4000) plus the first instruction of the next (1).
        assert_eq!(toy.cpu.regs[1], 4001, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 4, "{kind:?}");
        assert_eq!(toy.pages_added, vec![RAM_BASE & PAGE_MASK], "{kind:?}");
        assert!(map.page_has_code(RAM_BASE));
        let s = e.stats();
        assert_eq!(s.blocks_translated, 3, "{kind:?}");
        match kind {
            EngineKind::Interp => assert_eq!(s.native_runs, 0),
            EngineKind::Jit => {
                assert_eq!(s.blocks_compiled, 3);
                assert_eq!(s.interp_runs, 0);
                // Chaining: the loop runs inside compiled code; the dispatch loop only enters
                // it once per slice plus while links are being filled.
                assert!(s.chain_links >= 3, "{s:?}");
                assert!(s.native_runs < 40, "{s:?}");
            }
            EngineKind::Tiered => {
                assert_eq!(s.blocks_compiled, 3, "{s:?}");
                assert!(s.interp_runs >= 60, "{s:?}");
                assert!(s.native_runs < 100, "{s:?}");
                assert!(s.chain_links >= 3, "{s:?}");
            }
        }
    }
}

#[test]
fn invalidation_through_the_code_map_unlinks_chains() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        let mut toy = Toy::new(&LOOP);
        toy.cpu.common.insn_limit = 300;
        assert_eq!(e.run(&mut *toy), RunExit::Budget);
        e.wait_for_compiles();
        toy.cpu.common.insn_limit = 600;
        assert_eq!(e.run(&mut *toy), RunExit::Budget);
        assert_eq!(toy.cpu.regs[1], 800, "{kind:?}");
        // Rewrite the second instruction (a DMA-like write noted in the code map).
        assert!(toy.cpu.write_mem(RAM_BASE + 4, 4, u64::from(insn(0, 10))));
        assert!(map.note_write(RAM_BASE + 4));
        toy.cpu.common.insn_limit = 900;
        assert_eq!(e.run(&mut *toy), RunExit::Budget);
        // 100 more loops of 1 + 10 + 1.
        assert_eq!(toy.cpu.regs[1], 800 + 1200, "{kind:?}");
        let s = e.stats();
        assert_eq!(s.blocks_invalidated, 3, "{kind:?}: {s:?}");
        assert_eq!(s.blocks_translated, 6, "{kind:?}: {s:?}");
        // The page is registered again for the new translations.
        assert!(map.page_has_code(RAM_BASE));
    }
}

#[test]
fn an_unlinked_exit_reports_its_block_and_slot_then_chains() {
    // Jit compiles every block when it first runs. A `Goto` exit whose chain slot is empty
    // leaves compiled code (the backend's unlinked-exit stub returns the exit code the block
    // passed) and the dispatch loop links that slot once the target is compiled: on the
    // first lap only C -> A (A already ran), on the second A -> B and B -> C; from then on
    // the loop runs chained until the budget ends it.
    let map = Arc::new(CodeMap::new());
    let mut e = engine(EngineKind::Jit, &map);
    let mut toy = Toy::new(&LOOP);
    toy.cpu.common.insn_limit = 3000;
    assert_eq!(e.run(&mut *toy), RunExit::Budget);
    assert_eq!(toy.cpu.regs[1], 4000);
    assert_eq!(toy.cpu.common.insn_count, 3000);
    let s = e.stats();
    assert_eq!(s.blocks_compiled, 3, "{s:?}");
    assert_eq!(s.chain_links, 3, "{s:?}");
    assert_eq!(s.lookups_goto, 3 + 2, "{s:?}");
    // Five entries from those exits, one more to start.
    assert_eq!(s.native_runs, 6, "{s:?}");
    assert_eq!(s.lookups_other, 1, "the budget exit: {s:?}");
}

#[test]
fn a_yield_the_run_loop_does_not_need_goes_on_in_the_engine() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        // r1 += 5, yield, r1 += 1, halt.
        let mut toy = Toy::new(&[insn(0, 5), insn(5, 0), insn(0, 1), insn(2, 0)]);
        toy.yields_to_run_loop = false;
        assert_eq!(e.run(&mut *toy), RunExit::Halt, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 16);
        assert_eq!(toy.cpu.common.insn_count, 4);
        assert_eq!(e.stats().yields_kept, 1, "{kind:?}");
    }
}

#[test]
fn exits_reach_the_run_loop() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        // r1 += 5, yield, r1 += 1, halt.
        let mut toy = Toy::new(&[insn(0, 5), insn(5, 0), insn(0, 1), insn(2, 0)]);
        assert_eq!(e.run(&mut *toy), RunExit::Yield, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 8);
        assert_eq!(toy.cpu.common.insn_count, 2);
        assert_eq!(e.run(&mut *toy), RunExit::Halt, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 16);
        assert_eq!(toy.cpu.common.insn_count, 4);
        assert_eq!(toy.cpu.regs[1], 6);

        // A faulting load: Exception at the faulting instruction, which does not retire.
        // New code at the same addresses: drop the old translations first.
        e.flush();
        let mut toy = Toy::new(&[insn(0, 5), insn(3, 0)]);
        assert_eq!(e.run(&mut *toy), RunExit::Exception, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 4);
        assert_eq!(toy.cpu.common.insn_count, 1);
        assert_eq!(toy.cpu.fault_addr, RAM_BASE + RAM_SIZE);

        // An indirect jump outside RAM: the fetch faults (block_key is None).
        let mut toy = Toy::new(&[insn(4, 0)]);
        toy.cpu.regs[3] = 0x10;
        e.flush();
        assert_eq!(e.run(&mut *toy), RunExit::Exception, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, 0x10);
        assert_eq!(toy.cpu.common.insn_count, 1);
    }
}

#[test]
fn tiered_installs_code_and_matches_the_interpreter() {
    let map = Arc::new(CodeMap::new());
    let mut tiered = engine(EngineKind::Tiered, &map);
    // Blocks only (regions would lift the blocks again): see the region test below.
    tiered.set_region_samples(u16::MAX);
    let mut interp = engine(EngineKind::Interp, &Arc::new(CodeMap::new()));
    let mut a = Toy::new(&LOOP);
    let mut b = Toy::new(&LOOP);
    for slice in 1..=50u64 {
        a.cpu.common.insn_limit = 97 * slice;
        b.cpu.common.insn_limit = 97 * slice;
        assert_eq!(tiered.run(&mut *a), interp.run(&mut *b));
        assert_eq!(a.cpu.regs, b.cpu.regs);
        assert_eq!(a.cpu.common.insn_count, b.cpu.common.insn_count);
        assert_eq!(a.cpu.common.pc, b.cpu.common.pc);
    }
    tiered.wait_for_compiles();
    assert_eq!(tiered.stats().blocks_compiled, 3);
    // The blocks lie in one page: their IR was dropped at translation and lifted again for
    // the compiler, once each, and the compiled code matched the interpreter above.
    assert_eq!(tiered.stats().blocks_relifted, 3);
    assert_eq!(
        a.translations,
        3 + 3,
        "three translations, three lifts for the compiler"
    );
    tiered.flush();
    assert_eq!(tiered.cache().valid_len(), 0);
    assert!(!map.page_has_code(RAM_BASE));
}

#[test]
fn a_loop_where_time_slices_end_becomes_a_region() {
    let map = Arc::new(CodeMap::new());
    let mut tiered = engine(EngineKind::Tiered, &map);
    let mut interp = engine(EngineKind::Interp, &Arc::new(CodeMap::new()));
    let mut a = Toy::new(&LOOP);
    let mut b = Toy::new(&LOOP);
    for slice in 1..=200u64 {
        a.cpu.common.insn_limit = 97 * slice;
        b.cpu.common.insn_limit = 97 * slice;
        assert_eq!(tiered.run(&mut *a), interp.run(&mut *b));
        assert_eq!(a.cpu.regs, b.cpu.regs, "slice {slice}");
        assert_eq!(a.cpu.common.insn_count, b.cpu.common.insn_count);
        assert_eq!(a.cpu.common.pc, b.cpu.common.pc);
        tiered.wait_for_compiles();
    }
    let s = tiered.stats();
    // The three blocks were compiled, then the loop was compiled again as a region headed by
    // a block where budget exits kept landing (REGION_SAMPLES each); a region replaces its
    // blocks' code, so blocks_compiled counts each block once.
    assert_eq!(s.blocks_compiled, 3, "{s:?}");
    assert!(s.regions_compiled >= 1, "{s:?}");
    assert_eq!(s.region_blocks, 3 * s.regions_compiled, "{s:?}");
    // Once a region runs, a slice enters compiled code about once.
    assert!(s.native_runs < 400, "{s:?}");
}

/// Blocks that run on past a conditional branch overlap: the block at the branch's target is
/// the tail of the block that falls through to it. In a region the longer one is cut where
/// the other starts (`Engine::region_of`), and the cut block's jump into the other does not
/// check the budget: the budget exits land where the blocks, run one by one, put them. The
/// region is also the code of its second block: entered there (as after an interrupt), it
/// starts there, and a spent budget leaves the pc there.
#[test]
fn a_region_cuts_a_block_where_another_member_starts() {
    // 0: r1 += 1; 1: if r1 odd, jump 3; 2: r1 += 2; 3: r1 += 3; 4: r1 += 1, jump 0;
    // 5: r1 += 1, jump 3; 6: r1 += 1, jump 0 (ways into the loop from outside).
    // Blocks: at 0 (instructions 0-4), at 3 (3-4), at 5 and at 6.
    const PROGRAM: [u32; 7] = [
        insn(0, 1),
        insn(6, 3 * 4),
        insn(0, 2),
        insn(0, 3),
        insn(1, 0),
        insn(1, 3 * 4),
        insn(1, 0),
    ];
    let map = Arc::new(CodeMap::new());
    let mut tiered = engine(EngineKind::Tiered, &map);
    let mut interp = engine(EngineKind::Interp, &Arc::new(CodeMap::new()));
    let mut a = Toy::new(&PROGRAM);
    let mut b = Toy::new(&PROGRAM);
    a.superblocks = true;
    b.superblocks = true;
    // Slices of lengths that are not multiples of the loop's, so they end at every
    // instruction, inside blocks too.
    for slice in 1..=300u64 {
        if slice % 5 == 0 {
            // Into the loop from outside, at either of its blocks (one of them heads the
            // region, the other is entered in its middle), half the time with the budget spent
            // on the way: once the outside blocks are compiled and their exits chained to the
            // region, its entry finds the budget spent and leaves the pc where it was entered.
            let (from, to) = if slice % 10 < 5 { (20, 12) } else { (24, 0) };
            let spent = slice % 20 < 10;
            for t in [&mut a, &mut b] {
                t.cpu.common.pc = RAM_BASE + from;
                t.cpu.common.insn_limit = t.cpu.common.insn_count + if spent { 1 } else { 2 };
            }
            assert_eq!(tiered.run(&mut *a), RunExit::Budget, "slice {slice}");
            assert_eq!(interp.run(&mut *b), RunExit::Budget, "slice {slice}");
            assert_eq!(a.cpu.regs, b.cpu.regs, "slice {slice}");
            assert_eq!(a.cpu.common.pc, b.cpu.common.pc, "slice {slice}");
            if spent {
                assert_eq!(a.cpu.common.pc, RAM_BASE + to, "slice {slice}");
            }
        }
        a.cpu.common.insn_limit = 53 * slice + slice % 7;
        b.cpu.common.insn_limit = 53 * slice + slice % 7;
        assert_eq!(tiered.run(&mut *a), interp.run(&mut *b), "slice {slice}");
        assert_eq!(a.cpu.regs, b.cpu.regs, "slice {slice}");
        assert_eq!(
            a.cpu.common.insn_count, b.cpu.common.insn_count,
            "slice {slice}"
        );
        assert_eq!(a.cpu.common.pc, b.cpu.common.pc, "slice {slice}");
        tiered.wait_for_compiles();
    }
    let s = tiered.stats();
    assert_eq!(s.blocks_translated, 4, "{s:?}");
    assert!(s.regions_compiled >= 1, "{s:?}");
    // Each region: the block at 0 cut before instruction 3, and the block at 3.
    assert_eq!(s.region_blocks, 2 * s.regions_compiled, "{s:?}");
    assert_eq!(s.region_blocks_cut, s.regions_compiled, "{s:?}");
    // Once the region runs, a slice enters compiled code about once.
    assert!(s.native_runs < 600, "{s:?}");
}

#[test]
fn indirect_jumps_stay_in_compiled_code_through_the_jump_cache() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        // r1 += 3, then jump r3 (= the start): an indirect loop of 2 instructions.
        let mut toy = Toy::new(&[insn(0, 3), insn(4, 0)]);
        toy.cpu.regs[3] = RAM_BASE;
        for slice in 1..=5u64 {
            toy.cpu.common.insn_limit = 1000 * slice;
            assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
            e.wait_for_compiles();
        }
        assert_eq!(toy.cpu.regs[1], 3 * 2500, "{kind:?}");
        assert_eq!(toy.cpu.common.insn_count, 5000);
        assert_eq!(toy.cpu.common.pc, RAM_BASE);
        let s = e.stats();
        if kind == EngineKind::Jit {
            // Each slice: a few dispatches until the cache entry and the chain are in place,
            // then the loop never leaves compiled code.
            assert!(s.native_runs <= 5 * 4, "{s:?}");
        }
        if kind == EngineKind::Jit {
            // The jump cache outlives `run`: a slice enters compiled code once and stays.
            let before = e.stats().native_runs;
            toy.cpu.common.insn_limit += 1000;
            assert_eq!(e.run(&mut *toy), RunExit::Budget);
            assert_eq!(e.stats().native_runs, before + 1, "{:?}", e.stats());
            // A TLB flush (the mapping may have changed) empties it: one more lookup.
            toy.cpu.common.tlb_flush();
            toy.cpu.common.insn_limit += 1000;
            assert_eq!(e.run(&mut *toy), RunExit::Budget);
            assert_eq!(e.stats().native_runs, before + 3, "{:?}", e.stats());
            toy.cpu.common.insn_limit = 5000;
            toy.cpu.common.insn_count = 5000;
            toy.cpu.regs[1] = 3 * 2500;
        }
        // Moving the loop target: the cache is keyed by target pc, so the new r3 is honoured.
        toy.cpu.regs[3] = RAM_BASE + 4;
        toy.cpu.common.insn_limit = 5010;
        assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
        assert_eq!(toy.cpu.regs[1], 3 * 2500 + 3, "{kind:?}");
    }
}

#[test]
fn a_full_cache_is_flushed_and_execution_continues() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        e.set_max_cached_blocks(2);
        let mut toy = Toy::new(&LOOP);
        toy.cpu.common.insn_limit = 3000;
        assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
        assert_eq!(toy.cpu.regs[1], 4000, "{kind:?}");
        let s = e.stats();
        assert!(s.flushes >= 1000, "{kind:?}: {s:?}");
        assert!(e.cache().len() <= 2);
    }
}

#[test]
fn a_self_loop_stops_at_the_exact_budget_and_sees_code_writes() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        // r1 += 1; jump to itself.
        let mut toy = Toy::new(&[insn(1, 0)]);
        for limit in [1u64, 2, 3, 50, 1234, 5000, 5001] {
            toy.cpu.common.insn_limit = limit;
            assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
            assert_eq!(toy.cpu.common.insn_count, limit, "{kind:?}");
            assert_eq!(toy.cpu.regs[1], limit, "{kind:?}");
            assert_eq!(toy.cpu.common.pc, RAM_BASE, "{kind:?}");
            e.wait_for_compiles();
        }
        if kind == EngineKind::Jit {
            // The loop runs inside one compiled function: one entry per slice.
            assert_eq!(e.stats().native_runs, 7, "{:?}", e.stats());
        }
        // Rewrite the loop to add 5 (what a store slow path does: note the write, end the
        // slice); the next slice runs the new code.
        assert!(toy.cpu.write_mem(RAM_BASE, 4, u64::from(insn(0, 5))));
        assert!(map.note_write(RAM_BASE));
        toy.cpu.common.insn_limit = 5002;
        assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
        assert_eq!(toy.cpu.regs[1], 5001 + 5, "{kind:?}");
    }
}

#[test]
fn jumps_to_another_page_stay_in_compiled_code_through_the_jump_cache() {
    for kind in KINDS {
        let map = Arc::new(CodeMap::new());
        let mut e = engine(kind, &map);
        // Page 0: r1 += 1, jump to page 1; page 1: r1 += 1, jump back.
        let mut program = vec![0u32; 0x1000 / 4 + 1];
        program[0] = insn(1, 0x1000);
        program[0x1000 / 4] = insn(1, 0);
        let mut toy = Toy::new(&program);
        for slice in 1..=4u64 {
            toy.cpu.common.insn_limit = 1000 * slice + 1;
            assert_eq!(e.run(&mut *toy), RunExit::Budget, "{kind:?}");
            e.wait_for_compiles();
        }
        assert_eq!(toy.cpu.regs[1], 4001, "{kind:?}");
        assert_eq!(toy.cpu.common.pc, RAM_BASE + 0x1000, "{kind:?}");
        let s = e.stats();
        // Never chained directly (other page) ...
        assert_eq!(s.chain_links, 0, "{kind:?}: {s:?}");
        if kind == EngineKind::Jit {
            // ... but a few entries per slice at most: the rest runs through the jump cache.
            assert!(s.native_runs <= 4 * 4, "{s:?}");
        }
    }
}

/// A loop over two pages becomes one region (`Engine::region_of`), whose jump into the other
/// page stays inside only while that page maps where it did: remapped (and flushed from the
/// TLB, as a guest must), the loop runs the other page's code; written, the region goes.
#[test]
fn a_loop_over_two_pages_becomes_a_region_that_follows_the_mapping() {
    // Page 0: r1 += 1, jump to page 1. Page 1: r1 += 1, jump back. Page 2 (mapped at page 1
    // later): r1 += 5; r1 += 1, jump back.
    let mut program = vec![0u32; 0x2000 / 4 + 2];
    program[0] = insn(1, 0x1000);
    program[0x1000 / 4] = insn(1, 0);
    program[0x2000 / 4] = insn(0, 5);
    program[0x2000 / 4 + 1] = insn(1, 0);
    let map = Arc::new(CodeMap::new());
    let interp_map = Arc::new(CodeMap::new());
    let mut tiered = engine(EngineKind::Tiered, &map);
    let mut interp = engine(EngineKind::Interp, &interp_map);
    let mut a = Toy::new(&program);
    let mut b = Toy::new(&program);
    for t in [&mut a, &mut b] {
        t.superblocks = true;
    }
    let mut native_runs = 0;
    for slice in 1..=600u64 {
        if slice == 200 {
            // Before the remap: the loop runs in its region, entered about once a slice.
            let s = tiered.stats();
            assert!(s.regions_compiled >= 1, "{s:?}");
            assert_eq!(s.region_blocks, 2 * s.regions_compiled, "{s:?}");
            native_runs = s.native_runs;
        }
        if slice == 210 {
            assert!(
                tiered.stats().native_runs - native_runs <= 20,
                "{:?}",
                tiered.stats()
            );
        }
        if slice == 300 {
            for t in [&mut a, &mut b] {
                t.remap = Some((RAM_BASE + 0x1000, RAM_BASE + 0x2000));
                t.cpu.common.tlb_flush_page(RAM_BASE + 0x1000);
            }
        }
        if slice == 450 {
            // The guest writes the code its page 1 maps to now: r1 += 7 instead of 5.
            for t in [&mut a, &mut b] {
                assert!(t.cpu.write_mem(RAM_BASE + 0x2000, 4, u64::from(insn(0, 7))));
            }
            assert!(map.note_write(RAM_BASE + 0x2000));
            assert!(interp_map.note_write(RAM_BASE + 0x2000));
        }
        a.cpu.common.insn_limit = 97 * slice + slice % 5;
        b.cpu.common.insn_limit = 97 * slice + slice % 5;
        assert_eq!(tiered.run(&mut *a), interp.run(&mut *b), "slice {slice}");
        assert_eq!(a.cpu.regs, b.cpu.regs, "slice {slice}");
        assert_eq!(a.cpu.common.insn_count, b.cpu.common.insn_count);
        assert_eq!(a.cpu.common.pc, b.cpu.common.pc, "slice {slice}");
        tiered.wait_for_compiles();
    }
    let s = tiered.stats();
    // The remapped loop (pages 0 and 2) became a region too, and was invalidated by the write.
    assert!(s.regions_compiled >= 2, "{s:?}");
    assert!(s.blocks_invalidated >= 2, "{s:?}");
}

#[test]
fn the_compile_queue_stays_short_and_every_hot_block_still_tiers_up() {
    // 200 one-instruction blocks in a ring (r1 += 1, jump to the next), all equally hot: with
    // a tier-up threshold of 1 all of them want compiling at once.
    const N: u32 = 200;
    let program: Vec<u32> = (0..N).map(|i| insn(1, 4 * ((i + 1) % N))).collect();
    let map = Arc::new(CodeMap::new());
    let mut e = engine(EngineKind::Tiered, &map);
    e.set_tier_up_threshold(1);
    let mut toy = Toy::new(&program);
    let mut slices = 0;
    while e.stats().blocks_compiled < u64::from(N) {
        toy.cpu.common.insn_limit = toy.cpu.common.insn_count + u64::from(N);
        assert_eq!(e.run(&mut *toy), RunExit::Budget);
        slices += 1;
        assert!(
            slices < 100_000,
            "blocks never all compiled: {:?}",
            e.stats()
        );
    }
    let s = e.stats();
    assert!(
        s.peak_in_flight >= 1 && s.peak_in_flight <= MAX_IN_FLIGHT as u64,
        "{s:?}"
    );
    assert_eq!(toy.cpu.regs[1], toy.cpu.common.insn_count);
}
