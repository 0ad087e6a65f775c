//! Differential test: random valid IR blocks run on the interpreter (the reference) and on the
//! Cranelift backend from identical states must agree on the exit, pc, instruction count, every
//! register, the fault bookkeeping and all of RAM (DESIGN.md §10).
//!
//! On a mismatch the test prints the seed, the block index and the block's text form; rerun one
//! seed with `EMU_DIFF_SEED=<seed> cargo test -p emu-jit --test differential`.

use std::sync::Arc;

use emu_jit::backend::{compile_standalone, BackendError};
use emu_jit::codemap::CodeMap;
use emu_jit::engine::{Engine, EngineKind, EngineStats, RunExit};
use emu_jit::env::CpuCommon;
use emu_jit::exec::BlockExit;
use emu_jit::guest::{BlockKey, Guest};
use emu_jit::helper::GuestState;
use emu_jit::helper::HelperDef;
use emu_jit::interp::InterpBlock;
use emu_jit::ir::verify::verify;
use emu_jit::ir::{
    BinOp, Builder, Cond, ExitReason, ExtKind, IrBlock, MemOp, Op, Terminal, Type, UnOp, Value,
};
use emu_jit::testing::{
    reg_offset, TestCpu, ADD3, GET_REG, RAISE_IF, RAM_BASE, RAM_SIZE, READ_ICOUNT, READ_PC,
    SET_REG, SUM4,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INT_TYPES: [Type; 5] = [Type::I8, Type::I16, Type::I32, Type::I64, Type::I128];

const BIN_OPS: [BinOp; 24] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::MulHs,
    BinOp::MulHu,
    BinOp::MulHsu,
    BinOp::DivS,
    BinOp::DivU,
    BinOp::RemS,
    BinOp::RemU,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::AndNot,
    BinOp::OrNot,
    BinOp::XorNot,
    BinOp::Shl,
    BinOp::Shr,
    BinOp::Sar,
    BinOp::Rotl,
    BinOp::Rotr,
    BinOp::MinS,
    BinOp::MaxS,
    BinOp::MinU,
];

const CONDS: [Cond; 10] = [
    Cond::Eq,
    Cond::Ne,
    Cond::Lt,
    Cond::Ge,
    Cond::Ltu,
    Cond::Geu,
    Cond::Gt,
    Cond::Le,
    Cond::Gtu,
    Cond::Leu,
];

/// Values usable at the current point, per type, with scope marks for diamonds (a value
/// defined inside an arm is not usable after the merge).
struct Pools {
    vals: Vec<(Type, Value)>,
}

struct Gen<'r> {
    rng: &'r mut StdRng,
    b: Builder,
    pools: Pools,
    pc: u64,
    start_pc: u64,
    /// For whole-engine runs: `Goto` targets are the block's own start (a loop) or a pc in
    /// `[base, base + 4 * n)`.
    targets: Option<(u64, u64)>,
}

fn edge_value(rng: &mut StdRng) -> u64 {
    match rng.gen_range(0..10) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => 1 << 63,
        4 => (1 << 63) - 1,
        5 => 0x80,
        6 => 0x8000_0000,
        7 => 0xffff_ffff,
        8 => rng.gen_range(0..64),
        _ => rng.gen(),
    }
}

impl Gen<'_> {
    fn pick(&mut self, ty: Type) -> Value {
        let candidates: Vec<Value> = self
            .pools
            .vals
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|&(_, v)| v)
            .collect();
        if candidates.is_empty() || self.rng.gen_bool(0.15) {
            let imm = edge_value(self.rng);
            return self.def_const(ty, imm);
        }
        candidates[self.rng.gen_range(0..candidates.len())]
    }

    fn def_const(&mut self, ty: Type, imm: u64) -> Value {
        let v = self.b.iconst(ty, imm);
        self.pools.vals.push((ty, v));
        v
    }

    fn push(&mut self, ty: Type, v: Value) {
        self.pools.vals.push((ty, v));
    }

    fn int_ty(&mut self) -> Type {
        INT_TYPES[self.rng.gen_range(0..INT_TYPES.len())]
    }

    fn i64(&mut self) -> Value {
        self.pick(Type::I64)
    }

    fn address(&mut self, mem: MemOp) -> Value {
        let size = u64::from(mem.size());
        match self.rng.gen_range(0..8) {
            // Outside RAM: a fault.
            0 => {
                let a = RAM_BASE + RAM_SIZE + self.rng.gen_range(0..64);
                self.def_const(Type::I64, a)
            }
            // Near a page boundary, possibly crossing it.
            1 => {
                let page = RAM_BASE + 0x1000 * self.rng.gen_range(1..16);
                let off = self.rng.gen_range(0..8);
                self.def_const(Type::I64, page - off)
            }
            // Misaligned inside a page.
            2 => {
                let a = RAM_BASE + self.rng.gen_range(0..RAM_SIZE - 8);
                self.def_const(Type::I64, a | 1)
            }
            // Computed from a value: RAM_BASE + (v & mask).
            3 => {
                let v = self.i64();
                let m = self.def_const(Type::I64, (RAM_SIZE - 1) & !(size - 1));
                let off = self.b.binary(BinOp::And, Type::I64, v, m);
                let base = self.def_const(Type::I64, RAM_BASE);
                let a = self.b.add(Type::I64, base, off);
                self.push(Type::I64, a);
                a
            }
            _ => {
                let a = RAM_BASE + (self.rng.gen_range(0..RAM_SIZE / 8) * 8) % (RAM_SIZE - 8);
                self.def_const(Type::I64, a & !(size - 1))
            }
        }
    }

    fn mem_op(&mut self, max_bytes: u32) -> MemOp {
        let max_log2 = max_bytes.trailing_zeros().min(3) as u8;
        MemOp::new(
            self.rng.gen_range(0..=max_log2),
            self.rng.gen(),
            self.rng.gen_bool(0.3),
        )
    }

    fn mmu(&mut self) -> u8 {
        // MMU index 1 has no TLB entries: every access takes the slow path.
        if self.rng.gen_bool(0.15) {
            1
        } else {
            0
        }
    }

    /// One random non-control op.
    fn simple_op(&mut self) {
        match self.rng.gen_range(0..20) {
            0 | 1 => {
                let ty = self.int_ty();
                let imm = edge_value(self.rng);
                self.def_const(ty, imm);
            }
            2 | 3 => {
                let r = self.rng.gen_range(0..32);
                let (ty, off) = match self.rng.gen_range(0..8) {
                    0 => (Type::I32, reg_offset(r)),
                    1 => (Type::F64, reg_offset(r)),
                    2 => (Type::I8, reg_offset(r) + 3),
                    3 => (Type::I32, reg_offset(r) + 4),
                    _ => (Type::I64, reg_offset(r)),
                };
                let v = self.b.load_global(ty, off);
                self.push(ty, v);
            }
            4 | 5 => {
                let r = self.rng.gen_range(0..32);
                let (ty, off) = match self.rng.gen_range(0..10) {
                    0 => (Type::I32, reg_offset(r)),
                    1 => (Type::F64, reg_offset(r)),
                    2 => (Type::I32, reg_offset(r) + 4),
                    3 => (Type::I16, reg_offset(r) + 2),
                    _ => (Type::I64, reg_offset(r)),
                };
                let v = self.pick(ty);
                self.b.store_global(ty, off, v);
            }
            6..=9 => {
                let ty = self.int_ty();
                let op = BIN_OPS[self.rng.gen_range(0..BIN_OPS.len())];
                let op = if self.rng.gen_bool(0.05) {
                    BinOp::MaxU
                } else {
                    op
                };
                let a = self.pick(ty);
                let b = self.pick(ty);
                let d = self.b.binary(op, ty, a, b);
                self.push(ty, d);
            }
            10 => {
                let ty = self.int_ty();
                let op = [
                    UnOp::Not,
                    UnOp::Neg,
                    UnOp::Clz,
                    UnOp::Ctz,
                    UnOp::Popcnt,
                    UnOp::Bswap,
                ][self.rng.gen_range(0..6)];
                let a = self.pick(ty);
                let d = self.b.unary(op, ty, a);
                self.push(ty, d);
            }
            11 => {
                let (from, to) = [
                    (Type::I64, Type::F64),
                    (Type::F64, Type::I64),
                    (Type::I32, Type::F32),
                    (Type::F32, Type::I32),
                ][self.rng.gen_range(0..4)];
                let a = self.pick(from);
                let d = self.b.unary(UnOp::Bitcast, to, a);
                self.push(to, d);
            }
            12 => {
                let mut from = self.int_ty();
                let mut to = self.int_ty();
                if from == to {
                    return;
                }
                let kind = if from.bits() > to.bits() {
                    ExtKind::Trunc
                } else if self.rng.gen() {
                    ExtKind::Sext
                } else {
                    ExtKind::Zext
                };
                if from.bits() > to.bits() && kind != ExtKind::Trunc {
                    std::mem::swap(&mut from, &mut to);
                }
                let a = self.pick(from);
                let d = self.b.ext(kind, from, to, a);
                self.push(to, d);
            }
            13 => {
                let ty = self.int_ty();
                let cond = CONDS[self.rng.gen_range(0..CONDS.len())];
                let a = self.pick(ty);
                let b = self.pick(ty);
                let d = self.b.set_cond(cond, ty, a, b);
                self.push(Type::I8, d);
            }
            14 => {
                let ty = if self.rng.gen_bool(0.2) {
                    Type::F64
                } else {
                    self.int_ty()
                };
                let c = self.pick(Type::I8);
                let a = self.pick(ty);
                let b = self.pick(ty);
                let d = self.b.select(ty, c, a, b);
                self.push(ty, d);
            }
            15 | 16 => {
                let ty = if self.rng.gen_bool(0.1) {
                    Type::F64
                } else {
                    [Type::I32, Type::I64, Type::I64, Type::I128][self.rng.gen_range(0..4)]
                };
                let mut mem = if ty == Type::F64 {
                    MemOp::new(3, false, self.rng.gen())
                } else {
                    self.mem_op(ty.bytes())
                };
                if self.rng.gen_bool(0.15) {
                    mem = mem.with_store_intent();
                }
                let addr = self.address(mem);
                let mmu = self.mmu();
                let d = self.b.load(ty, mem, mmu, addr);
                self.push(ty, d);
            }
            17 => {
                let ty = [Type::I8, Type::I32, Type::I64, Type::I64, Type::F64]
                    [self.rng.gen_range(0..5)];
                let mem = if ty == Type::F64 {
                    MemOp::new(3, false, false)
                } else {
                    self.mem_op(ty.bytes())
                };
                let addr = self.address(mem);
                let src = self.pick(ty);
                let mmu = self.mmu();
                self.b.store(ty, mem, mmu, src, addr);
            }
            _ => self.call(),
        }
    }

    fn call(&mut self) {
        let helpers: [&'static HelperDef; 7] = [
            &ADD3,
            &SUM4,
            &RAISE_IF,
            &READ_PC,
            &READ_ICOUNT,
            &GET_REG,
            &SET_REG,
        ];
        let def = helpers[self.rng.gen_range(0..helpers.len())];
        let mut args = Vec::new();
        for _ in 0..def.args {
            let v = if std::ptr::eq(def, &RAISE_IF) {
                // Raise rarely, so most blocks run to their end.
                let x = if self.rng.gen_bool(0.1) { 0x77 } else { 0 };
                self.def_const(Type::I64, x)
            } else {
                self.i64()
            };
            args.push(v);
        }
        if let Some(d) = self.b.call(def, &args) {
            self.push(Type::I64, d);
        }
    }

    fn terminal(&mut self) {
        let t = match self.rng.gen_range(0..6) {
            0 | 1 => Terminal::Goto {
                pc: match self.targets {
                    Some(_) if self.rng.gen_bool(0.2) => self.start_pc,
                    Some((base, n)) => base + 4 * self.rng.gen_range(0..n),
                    None => self.start_pc + 4 * self.rng.gen_range(0..64),
                },
            },
            2 => Terminal::Indirect { pc: self.i64() },
            3 => Terminal::Exit {
                reason: [ExitReason::Exception, ExitReason::Yield, ExitReason::Halt]
                    [self.rng.gen_range(0..3)],
                pc: self.pc,
            },
            4 => Terminal::ExitDynamic {
                reason: [ExitReason::Exception, ExitReason::Yield, ExitReason::Halt]
                    [self.rng.gen_range(0..3)],
                pc: self.i64(),
            },
            _ => Terminal::Goto { pc: self.pc + 4 },
        };
        self.b.exit(t);
    }

    /// One guest instruction: a few ops, maybe a diamond (with an exit in one arm).
    fn insn(&mut self) {
        self.b.insn_start(self.pc, 0x13);
        let n = self.rng.gen_range(1..6);
        for _ in 0..n {
            self.simple_op();
        }
        if self.rng.gen_bool(0.3) {
            let ty = self.int_ty();
            let cond = CONDS[self.rng.gen_range(0..CONDS.len())];
            let a = self.pick(ty);
            let b = self.pick(ty);
            let else_l = self.b.new_label();
            let end_l = self.b.new_label();
            let mark = self.pools.vals.len();
            self.b.br_cond(cond, ty, a, b, else_l);
            for _ in 0..self.rng.gen_range(0..4) {
                self.simple_op();
            }
            let then_exits = self.rng.gen_bool(0.2);
            if then_exits {
                self.terminal();
            } else {
                self.b.br(end_l);
            }
            self.pools.vals.truncate(mark);
            self.b.label(else_l);
            for _ in 0..self.rng.gen_range(0..4) {
                self.simple_op();
            }
            self.pools.vals.truncate(mark);
            self.b.label(end_l);
        }
        self.pc += 4;
    }
}

fn gen_block(rng: &mut StdRng) -> IrBlock {
    let start_pc = 0x8000_0000 + 4 * rng.gen_range(0..0x400u64);
    gen_block_at(rng, start_pc, None)
}

fn gen_block_at(rng: &mut StdRng, start_pc: u64, targets: Option<(u64, u64)>) -> IrBlock {
    gen_into(rng, Builder::new(start_pc), start_pc, targets).finish()
}

/// Generate a block into `b` (already reset to `start_pc`).
fn gen_into(rng: &mut StdRng, b: Builder, start_pc: u64, targets: Option<(u64, u64)>) -> Builder {
    let mut g = Gen {
        b,
        pools: Pools { vals: Vec::new() },
        pc: start_pc,
        start_pc,
        targets,
        rng,
    };
    let insns = g.rng.gen_range(1..8);
    for _ in 0..insns {
        g.insn();
    }
    g.terminal();
    let size = (g.pc - start_pc) as u32;
    g.b.set_guest_size(size);
    g.b
}

fn fresh_state(rng: &mut StdRng) -> Box<TestCpu> {
    let mut cpu = TestCpu::new();
    for r in cpu.regs.iter_mut() {
        *r = edge_value(rng);
    }
    for _ in 0..64 {
        let a = RAM_BASE + rng.gen_range(0..RAM_SIZE / 8) * 8;
        cpu.write_mem(a, 8, rng.gen());
    }
    if rng.gen_bool(0.2) {
        cpu.unmap_page(RAM_BASE + 0x1000 * rng.gen_range(0..16));
    }
    cpu.common.insn_count = rng.gen_range(0..1000);
    cpu.common.insn_limit = if rng.gen_bool(0.05) {
        cpu.common.insn_count
    } else {
        u64::MAX
    };
    cpu.common.pc = 0x1234;
    cpu
}

#[derive(Debug, PartialEq)]
struct Outcome {
    exit: BlockExit,
    pc: u64,
    insn_count: u64,
    exception_pending: u64,
    regs: [u64; 32],
    fault_addr: u64,
    slow_calls: u64,
    slow_seen: u64,
    ram_hash: u64,
}

fn outcome(exit: BlockExit, cpu: &TestCpu) -> Outcome {
    // FNV-1a over the RAM, so a mismatch is cheap to detect and compare.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in cpu.ram.iter() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    Outcome {
        exit,
        pc: cpu.common.pc,
        insn_count: cpu.common.insn_count,
        exception_pending: cpu.common.exception_pending,
        regs: cpu.regs,
        fault_addr: cpu.fault_addr,
        slow_calls: cpu.slow_calls,
        slow_seen: cpu.slow_seen,
        ram_hash: h,
    }
}

/// Runs `count` blocks from `seed`; returns (blocks compared, blocks the backend declined).
/// With `optimize`, the backend runs the optimized block (as the engine does) against the
/// interpreter on the original, which also checks that the passes preserve behaviour.
fn run_seed(seed: u64, count: usize, optimize: bool) -> (usize, usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut compared = 0;
    let mut declined = 0;
    for i in 0..count {
        let block = gen_block(&mut rng);
        if let Err(e) = verify(&block) {
            panic!("generator bug (seed {seed}, block {i}): {e}\n{block}");
        }
        let state_seed: u64 = rng.gen();
        let mut compiled = block.clone();
        if optimize {
            emu_jit::opt::optimize(&mut compiled);
        }
        let code = match compile_standalone(&compiled) {
            Ok(c) => c,
            Err(BackendError::Unsupported(_)) => {
                declined += 1;
                continue;
            }
            Err(e) => panic!("backend failed (seed {seed}, block {i}): {e}\n{block}"),
        };
        let mut a = fresh_state(&mut StdRng::seed_from_u64(state_seed));
        let mut b = fresh_state(&mut StdRng::seed_from_u64(state_seed));
        let interp = InterpBlock::new(&block);
        // SAFETY: each TestCpu is live and only borrowed here; the block uses test helpers and
        // register offsets inside TestCpu.
        let ea = unsafe { interp.run(a.state_ptr()) };
        // SAFETY: as above.
        let eb = unsafe { code.run(b.state_ptr()) };
        let (mut oa, mut ob) = (outcome(ea, &a), outcome(eb, &b));
        if optimize {
            // Passes may remove dead `Goto` exits, renumbering chain slots; the engine keys
            // slots on the optimized block, so only the kind of exit must match here. The
            // interpreter on the optimized block must match the backend exactly.
            let mut c = fresh_state(&mut StdRng::seed_from_u64(state_seed));
            // SAFETY: as above.
            let ec = unsafe { InterpBlock::new(&compiled).run(c.state_ptr()) };
            assert_eq!(
                outcome(ec, &c),
                ob,
                "interpreter and backend disagree on the optimized block (seed {seed}, block \
                 {i}):\n{compiled}"
            );
            for o in [&mut oa, &mut ob] {
                if let BlockExit::Goto { .. } = o.exit {
                    o.exit = BlockExit::Goto { slot: 0 };
                }
            }
        }
        if oa != ob {
            panic!(
                "interpreter and backend disagree (seed {seed}, block {i}, state seed \
                 {state_seed}, optimized {optimize}):\ninterp: {oa:x?}\nnative: {ob:x?}\n\
                 {block}\ncompiled:\n{compiled}"
            );
        }
        compared += 1;
        if std::env::var("EMU_DIFF_VERBOSE").is_ok() {
            eprintln!("{:?} insns={}", oa.exit, block.insn_count);
        }
    }
    (compared, declined)
}

#[test]
fn interpreter_and_backend_agree_on_random_blocks() {
    let seeds: Vec<u64> = match std::env::var("EMU_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("EMU_DIFF_SEED is a u64")],
        Err(_) => vec![1, 2, 3, 4],
    };
    let mut total = 0;
    let mut declined = 0;
    let want = seeds.len() * 350;
    for seed in seeds {
        let (c, d) = run_seed(seed, 500, false);
        total += c;
        declined += d;
    }
    eprintln!("differential: {total} blocks agree, {declined} declined by the backend");
    assert!(total >= want, "too few blocks compared: {total}");
}

#[test]
fn optimized_blocks_on_the_backend_agree_with_the_interpreter() {
    let seeds: Vec<u64> = match std::env::var("EMU_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("EMU_DIFF_SEED is a u64")],
        Err(_) => vec![11, 12],
    };
    let mut total = 0;
    let want = seeds.len() * 450;
    for seed in seeds {
        total += run_seed(seed, 500, true).0;
    }
    assert!(total >= want, "too few blocks compared: {total}");
}

/// Guest code window of [`RandomGuest`]: two pages, so jumps are chained directly inside a page
/// and through the jump cache across pages.
const CODE_BASE: u64 = 0x4000_0000;
const CODE_INSNS: u64 = 0x800;

/// A guest whose block at every pc of the code window is a random block (a function of the
/// seed and the pc), whose `Goto`s loop to their own start or jump inside the window.
#[repr(C)]
struct RandomGuest {
    cpu: TestCpu,
    seed: u64,
    /// Instructions in the code window (at most [`CODE_INSNS`]).
    window: u64,
}

// SAFETY: `RandomGuest` is `#[repr(C)]` and starts with a `TestCpu`, which starts with
// `CpuCommon`; the executors pass the only borrow of the state into helpers and the slow path.
unsafe impl GuestState for RandomGuest {}

impl Guest for RandomGuest {
    fn helpers(&self) -> Vec<&'static HelperDef> {
        emu_jit::testing::test_helpers()
    }

    fn common(&mut self) -> &mut CpuCommon {
        &mut self.cpu.common
    }

    fn block_key(&mut self) -> Option<BlockKey> {
        let pc = self.cpu.common.pc;
        let fetchable =
            (CODE_BASE..CODE_BASE + 4 * self.window).contains(&pc) && pc.is_multiple_of(4);
        self.cpu.block_key_at_pc(fetchable)
    }

    fn translate(&mut self, key: &BlockKey, _max_insns: u32, b: &mut Builder) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ key.pc.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // A small window is for loops: blocks that end in a `Goto` are drawn again until one
        // does (a few tries; the draw depends on the seed and the pc only).
        let tries = if self.window < CODE_INSNS { 8 } else { 1 };
        for _ in 0..tries {
            let mut taken = std::mem::take(b);
            taken.reset(key.pc);
            *b = gen_into(&mut rng, taken, key.pc, Some((CODE_BASE, self.window)));
            if matches!(b.block().ops.last(), Some(Op::Exit(Terminal::Goto { .. }))) {
                break;
            }
        }
        if self.window < CODE_INSNS {
            // Loops of several blocks rather than self loops: a block's last `Goto` to its own
            // start goes three instructions on instead.
            let next = CODE_BASE + 4 * ((key.pc / 4 + 3) % self.window);
            if let Some(Op::Exit(Terminal::Goto { pc })) = b.block_mut().ops.last_mut() {
                if *pc == key.pc {
                    *pc = next;
                }
            }
        }
    }

    fn code_page_added(&mut self, _phys_page: u64) {}
}

/// Run the random guest with a code window of `window` instructions on one engine kind;
/// returns the final outcome and the engine's counters.
fn run_engine(kind: EngineKind, seed: u64, state_seed: u64, window: u64) -> (Outcome, EngineStats) {
    let cpu = *fresh_state(&mut StdRng::seed_from_u64(state_seed));
    let mut g = Box::new(RandomGuest { cpu, seed, window });
    g.cpu.common.pc = CODE_BASE;
    g.cpu.common.insn_limit = 0;
    let mut e = Engine::new(kind, Arc::new(CodeMap::new())).expect("engine starts");
    e.set_tier_up_threshold(5);
    e.set_region_samples(1);
    let mut last = RunExit::Budget;
    for slice in 0..3000u64 {
        if g.cpu.common.insn_count >= 20_000 {
            break;
        }
        // Budget slices of varying length, so budget exits land everywhere.
        let n = g.cpu.common.insn_count;
        g.cpu.common.insn_limit = n + 1 + (n.wrapping_mul(7919) % 300);
        last = e.run(&mut *g);
        if tiered_waits(kind, slice) {
            e.wait_for_compiles();
        }
        // Like an interrupt, every few slices: continue elsewhere.
        if matches!(last, RunExit::Exception | RunExit::Yield | RunExit::Halt) || slice % 4 == 3 {
            // What a run loop would do, deterministically: deliver, then continue elsewhere.
            g.cpu.common.exception_pending = 0;
            let pc = g.cpu.common.pc;
            g.cpu.common.pc = CODE_BASE + 4 * (pc.wrapping_mul(31).wrapping_add(n) % window);
        }
    }
    if std::env::var("EMU_DIFF_VERBOSE").is_ok() {
        eprintln!(
            "{kind:?}: {:?} count {}",
            e.stats(),
            g.cpu.common.insn_count
        );
    }
    let exit = match last {
        RunExit::Budget => BlockExit::Budget,
        RunExit::Exception => BlockExit::Fault,
        RunExit::Yield => BlockExit::Exit(ExitReason::Yield),
        RunExit::Halt => BlockExit::Exit(ExitReason::Halt),
    };
    (outcome(exit, &g.cpu), e.stats())
}

/// Tiered mode installs compiled code at arbitrary times; waiting now and then makes the test
/// also cover the compiled tier (results must not depend on it either way).
fn tiered_waits(kind: EngineKind, slice: u64) -> bool {
    kind == EngineKind::Tiered && slice.is_multiple_of(8)
}

#[test]
fn engines_agree_on_random_guest_programs() {
    let seeds: Vec<u64> = match std::env::var("EMU_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("EMU_DIFF_SEED is a u64")],
        Err(_) => (21..27).collect(),
    };
    let mut retired = 0;
    let n = seeds.len() as u64;
    for seed in seeds {
        let (reference, _) = run_engine(EngineKind::Interp, seed, seed, CODE_INSNS);
        retired += reference.insn_count;
        for kind in [EngineKind::Jit, EngineKind::Tiered] {
            let (got, _) = run_engine(kind, seed, seed, CODE_INSNS);
            assert_eq!(
                got, reference,
                "seed {seed}: {kind:?} differs from the interpreter"
            );
        }
    }
    // Some programs fault at every turn; most must run.
    assert!(
        retired > n * 2000,
        "the programs barely ran: {retired} instructions"
    );
}

/// Random programs in a window of a few dozen instructions, where jumps close loops of a
/// few blocks: tiered mode compiles them as regions (one function, jumps between the blocks,
/// budget checks at every jump), which must agree with the interpreter and the per-block JIT.
#[test]
fn regions_agree_with_the_interpreter_on_random_loops() {
    let seeds: Vec<u64> = match std::env::var("EMU_DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("EMU_DIFF_SEED is a u64")],
        Err(_) => (41..161).collect(),
    };
    let mut regions = 0;
    for seed in seeds {
        let (reference, _) = run_engine(EngineKind::Interp, seed, seed, 8);
        for kind in [EngineKind::Jit, EngineKind::Tiered] {
            let (got, stats) = run_engine(kind, seed, seed, 8);
            assert_eq!(
                got, reference,
                "seed {seed}: {kind:?} differs from the interpreter"
            );
            regions += stats.region_blocks;
        }
    }
    assert!(
        regions >= 50,
        "too few blocks compiled in regions: {regions}"
    );
}
