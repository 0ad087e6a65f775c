//! Random differential test of the whole pipeline: random valid blocks (straight-line code,
//! diamonds, globals of several widths, memory accesses that sometimes fault, helpers of every
//! effect kind, all terminals) run on the interpreter before and after [`super::optimize`]
//! from identical states must end in identical states.

use crate::exec::BlockExit;
use crate::interp::InterpBlock;
use crate::ir::verify::verify;
use crate::ir::*;
use crate::testing::{
    reg_offset, TestCpu, ADD3, GET_REG, RAISE_IF, RAM_BASE, READ_ICOUNT, READ_PC, SET_REG,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const INT: [Type; 5] = [Type::I8, Type::I16, Type::I32, Type::I64, Type::I128];
const BINOPS: [BinOp; 25] = [
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
    BinOp::MaxU,
];
const UNOPS: [UnOp; 6] = [
    UnOp::Not,
    UnOp::Neg,
    UnOp::Clz,
    UnOp::Ctz,
    UnOp::Popcnt,
    UnOp::Bswap,
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

struct Gen {
    rng: StdRng,
    b: Builder,
    /// Values usable at the current point, by type.
    pool: Vec<(Value, Type)>,
    pc: u64,
}

impl Gen {
    fn pick(&mut self, ty: Type) -> Value {
        let cands: Vec<Value> = self
            .pool
            .iter()
            .filter(|(_, t)| *t == ty)
            .map(|(v, _)| *v)
            .collect();
        if cands.is_empty() || self.rng.gen_ratio(1, 6) {
            return self.constant(ty);
        }
        cands[self.rng.gen_range(0..cands.len())]
    }

    fn constant(&mut self, ty: Type) -> Value {
        let imm = match self.rng.gen_range(0..6) {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => 1 << (ty.bits().min(64) - 1),
            4 => self.rng.gen_range(0..70),
            _ => self.rng.gen(),
        };
        let v = self.b.iconst(ty, imm);
        self.pool.push((v, ty));
        v
    }

    fn int_ty(&mut self) -> Type {
        INT[self.rng.gen_range(0..INT.len())]
    }

    fn def(&mut self, v: Value, ty: Type) {
        self.pool.push((v, ty));
    }

    /// An I64 address: usually inside the first RAM page, sometimes misaligned, rarely outside
    /// RAM (a fault).
    fn address(&mut self) -> Value {
        let base = self.pick(Type::I64);
        let mask = self.b.iconst(Type::I64, 0xfff);
        let off = self.b.binary(BinOp::And, Type::I64, base, mask);
        let region = if self.rng.gen_ratio(1, 12) {
            0x2000_0000
        } else {
            RAM_BASE
        };
        let r = self.b.iconst(Type::I64, region);
        self.b.binary(BinOp::Add, Type::I64, off, r)
    }

    fn op(&mut self) {
        match self.rng.gen_range(0..16) {
            0 => {
                let ty = [Type::I8, Type::I32, Type::I64][self.rng.gen_range(0..3)];
                let off = reg_offset(self.rng.gen_range(0..8));
                let v = self.b.load_global(ty, off);
                self.def(v, ty);
            }
            1 => {
                let ty = [Type::I8, Type::I32, Type::I64][self.rng.gen_range(0..3)];
                let off = reg_offset(self.rng.gen_range(0..8));
                let v = self.pick(ty);
                self.b.store_global(ty, off, v);
            }
            2..=5 => {
                let ty = self.int_ty();
                let op = BINOPS[self.rng.gen_range(0..BINOPS.len())];
                let (x, y) = (self.pick(ty), self.pick(ty));
                let v = self.b.binary(op, ty, x, y);
                self.def(v, ty);
            }
            6 => {
                let ty = self.int_ty();
                let op = UNOPS[self.rng.gen_range(0..UNOPS.len())];
                let x = self.pick(ty);
                let v = self.b.unary(op, ty, x);
                self.def(v, ty);
            }
            7 => {
                let (a, c) = (self.int_ty(), self.int_ty());
                if a == c {
                    let x = self.pick(a);
                    let v = self.b.mov(a, x);
                    self.def(v, a);
                    return;
                }
                let kind = if a.bits() > c.bits() {
                    ExtKind::Trunc
                } else if self.rng.gen() {
                    ExtKind::Sext
                } else {
                    ExtKind::Zext
                };
                let x = self.pick(a);
                let v = self.b.ext(kind, a, c, x);
                self.def(v, c);
            }
            8 => {
                let ty = self.int_ty();
                let cond = CONDS[self.rng.gen_range(0..CONDS.len())];
                let (x, y) = (self.pick(ty), self.pick(ty));
                let v = self.b.set_cond(cond, ty, x, y);
                self.def(v, Type::I8);
                let ty2 = self.int_ty();
                let (p, q) = (self.pick(ty2), self.pick(ty2));
                let s = self.b.select(ty2, v, p, q);
                self.def(s, ty2);
            }
            9 | 10 => {
                let size_log2 = self.rng.gen_range(0..4u8);
                let mem = MemOp::new(size_log2, self.rng.gen(), self.rng.gen_ratio(1, 4));
                let ty = [Type::I64, Type::I128][usize::from(self.rng.gen_ratio(1, 5))];
                let a = self.address();
                let v = self.b.load(ty, mem, 0, a);
                self.def(v, ty);
            }
            11 => {
                let size_log2 = self.rng.gen_range(0..4u8);
                let mem = MemOp::new(size_log2, false, self.rng.gen_ratio(1, 4));
                let a = self.address();
                let v = self.pick(Type::I64);
                self.b.store(Type::I64, mem, 0, v, a);
            }
            12 => {
                let args: Vec<Value> = (0..3).map(|_| self.pick(Type::I64)).collect();
                if let Some(v) = self.b.call(&ADD3, &args) {
                    self.def(v, Type::I64);
                }
            }
            13 => {
                // Raise rarely: the argument is usually zero.
                let x = if self.rng.gen_ratio(1, 10) {
                    self.pick(Type::I64)
                } else {
                    self.b.iconst(Type::I64, 0)
                };
                self.b.call(&RAISE_IF, &[x]);
            }
            14 => {
                let h = [&READ_PC, &READ_ICOUNT][self.rng.gen_range(0..2)];
                if let Some(v) = self.b.call(h, &[]) {
                    self.def(v, Type::I64);
                }
                let i = self.b.iconst(Type::I64, self.rng.gen_range(0..8));
                if let Some(v) = self.b.call(&GET_REG, &[i]) {
                    self.def(v, Type::I64);
                }
            }
            _ => {
                let i = self.b.iconst(Type::I64, self.rng.gen_range(0..8));
                let x = self.pick(Type::I64);
                self.b.call(&SET_REG, &[i, x]);
            }
        }
    }

    fn terminal(&mut self) {
        let t = match self.rng.gen_range(0..4) {
            0 | 1 => Terminal::Goto {
                pc: self.rng.gen_range(0..4) * 0x100,
            },
            2 => Terminal::Indirect {
                pc: self.pick(Type::I64),
            },
            _ => Terminal::Exit {
                reason: [ExitReason::Yield, ExitReason::Halt, ExitReason::Exception]
                    [self.rng.gen_range(0..3)],
                pc: self.pc,
            },
        };
        self.b.exit(t);
    }

    fn ops(&mut self, n: usize) {
        for _ in 0..n {
            self.op();
        }
    }

    fn block(seed: u64) -> IrBlock {
        let mut g = Gen {
            rng: StdRng::seed_from_u64(seed),
            b: Builder::new(0x1000),
            pool: Vec::new(),
            pc: 0x1000,
        };
        let insns = g.rng.gen_range(1..6);
        for i in 0..insns {
            g.pc = 0x1000 + 4 * i;
            g.b.insn_start(g.pc, 0);
            let n = g.rng.gen_range(1..8);
            g.ops(n);
            if g.rng.gen_ratio(1, 3) {
                // A diamond: values defined in an arm stay in that arm.
                let ty = g.int_ty();
                let cond = CONDS[g.rng.gen_range(0..CONDS.len())];
                let (x, y) = (g.pick(ty), g.pick(ty));
                let (l_else, l_join) = (g.b.new_label(), g.b.new_label());
                g.b.br_cond(cond, ty, x, y, l_else);
                let saved = g.pool.len();
                let n = g.rng.gen_range(0..4);
                g.ops(n);
                if g.rng.gen_ratio(1, 3) {
                    g.terminal();
                } else {
                    g.b.br(l_join);
                }
                g.pool.truncate(saved);
                g.b.label(l_else);
                let n = g.rng.gen_range(0..4);
                g.ops(n);
                g.pool.truncate(saved);
                g.b.label(l_join);
            }
        }
        g.terminal();
        g.b.finish()
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    exit: BlockExit,
    pc: u64,
    insn_count: u64,
    exception_pending: u64,
    fault_addr: u64,
    slow_calls: u64,
    regs: [u64; 32],
    ram: Vec<u8>,
}

/// Which executor runs a block.
#[derive(Clone, Copy, PartialEq)]
enum Tier {
    Interp,
    Cranelift,
}

/// Run `block` from the state `seed` makes; `None` if tier 1 declines the block
/// (`BackendError::Unsupported`, a documented limit).
fn run(block: &IrBlock, seed: u64, tier: Tier) -> Option<Outcome> {
    let mut cpu = TestCpu::new();
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    for r in cpu.regs.iter_mut() {
        *r = rng.gen();
    }
    for b in cpu.ram.iter_mut().take(0x1000) {
        *b = rng.gen();
    }
    cpu.common.insn_count = 1000;
    let mut exit = match tier {
        // SAFETY: the test CPU is live and borrowed for the call; globals are its registers.
        Tier::Interp => unsafe { InterpBlock::new(block).run(cpu.state_ptr()) },
        Tier::Cranelift => match crate::backend::compile_standalone(block) {
            // SAFETY: as above.
            Ok(code) => unsafe { code.run(cpu.state_ptr()) },
            Err(crate::backend::BackendError::Unsupported(_)) => return None,
            Err(e) => panic!("tier 1 failed to compile:\n{e}\n{block}"),
        },
    };
    // Goto slots number the exits of the block that ran: compare by target instead.
    if let BlockExit::Goto { .. } = exit {
        exit = BlockExit::Goto { slot: 0 };
    }
    Some(Outcome {
        exit,
        pc: cpu.common.pc,
        insn_count: cpu.common.insn_count,
        exception_pending: cpu.common.exception_pending,
        fault_addr: cpu.fault_addr,
        slow_calls: cpu.slow_calls,
        regs: cpu.regs,
        ram: cpu.ram[..0x1000].to_vec(),
    })
}

#[test]
fn optimized_random_blocks_behave_the_same() {
    let n: u64 = std::env::var("EMU_OPT_RANDOM_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    let mut changed = 0;
    let mut kinds = [0u64; 5];
    for seed in 0..n {
        let block = Gen::block(seed);
        if let Err(e) = verify(&block) {
            panic!("seed {seed}: generator made an invalid block: {e}\n{block}");
        }
        let mut opt = block.clone();
        super::optimize(&mut opt);
        verify(&opt).unwrap_or_else(|e| panic!("seed {seed}: {e}\n{block}\n{opt}"));
        if opt.ops.len() < block.ops.len() {
            changed += 1;
        }
        let (Some(a), Some(b)) = (
            run(&block, seed, Tier::Interp),
            run(&opt, seed, Tier::Interp),
        ) else {
            unreachable!("the interpreter runs every block");
        };
        kinds[match a.exit {
            BlockExit::Goto { .. } => 0,
            BlockExit::Indirect => 1,
            BlockExit::Exit(_) => 2,
            BlockExit::Fault => 3,
            BlockExit::Budget => 4,
        }] += 1;
        assert!(
            a == b,
            "seed {seed}: optimized block differs\n{a:x?}\nvs\n{b:x?}\n{block}\n---\n{opt}"
        );
        // The text form round-trips on every random block too.
        let text = block.to_string();
        let back = crate::ir::parse::parse_block(&text, &crate::testing::test_helpers())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        assert_eq!(back.to_string(), text, "seed {seed}");
        assert_eq!(back.ops, block.ops, "seed {seed}");
    }
    // The passes must actually do something on these blocks.
    assert!(changed > n / 2, "only {changed} of {n} blocks shrank");
    // And the blocks reach every kind of exit but Budget (never spent here).
    assert!(
        kinds[..4].iter().all(|&k| k > n / 50),
        "exit kinds {kinds:?}"
    );
}

/// The fused pipeline (`optimize`) makes exactly the block the passes make one by one
/// (`optimize_by_passes`), ops, value table and instruction count alike.
#[test]
fn fused_pipeline_equals_the_passes_in_order() {
    let n: u64 = std::env::var("EMU_OPT_RANDOM_BLOCKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    for seed in 0..n {
        let block = Gen::block(seed);
        let mut fused = block.clone();
        super::optimize(&mut fused);
        let mut passes = block.clone();
        super::optimize_by_passes(&mut passes);
        assert!(
            fused.ops == passes.ops
                && fused.values == passes.values
                && fused.insn_count == passes.insn_count,
            "seed {seed}: fused\n{fused}\n---\npasses\n{passes}\n---\ninput\n{block}"
        );
    }
}

/// The optimized random blocks also run the same on tier 1 (Cranelift), before and after
/// optimization: the optimizer's output is what the engine compiles.
#[test]
fn random_blocks_agree_on_cranelift() {
    let n: u64 = std::env::var("EMU_OPT_RANDOM_BLOCKS_JIT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut compiled = 0;
    for seed in 0..n {
        let block = Gen::block(seed);
        let mut opt = block.clone();
        super::optimize(&mut opt);
        let Some(reference) = run(&block, seed, Tier::Interp) else {
            unreachable!("the interpreter runs every block");
        };
        for b in [&block, &opt] {
            if let Some(o) = run(b, seed, Tier::Cranelift) {
                compiled += 1;
                assert!(
                    o == reference,
                    "seed {seed}: tier 1 differs from the interpreter\n{reference:x?}\nvs\n{o:x?}\n{b}"
                );
            }
        }
    }
    assert!(compiled > n, "only {compiled} of {} blocks compiled", 2 * n);
}

/// The redundant-globals pass as it was before its table of 8-byte slots: one list of what
/// is known and one of pending stores, each scanned whole (with the rule for a label reached
/// only from the branch just before it). The pass must make exactly what this makes.
fn linear_redundant_globals(block: &mut IrBlock) {
    let overlaps = |a_off: u32, a_ty: Type, b_off: u32, b_ty: Type| {
        let (a0, a1) = (u64::from(a_off), u64::from(a_off) + u64::from(a_ty.bytes()));
        let (b0, b1) = (u64::from(b_off), u64::from(b_off) + u64::from(b_ty.bytes()));
        a0 < b1 && b0 < a1
    };
    let helpers = block.helpers.clone();
    let mut known: Vec<(u32, Type, Value)> = Vec::new();
    let mut branches_to = vec![0u32; block.labels as usize];
    let mut after_branch = None;
    for op in block.ops.iter_mut() {
        let last_branch = after_branch.take();
        match *op {
            Op::LoadGlobal { dst, ty, offset } => {
                match known.iter().find(|k| k.0 == offset && k.1 == ty) {
                    Some(k) => *op = Op::Mov { dst, ty, src: k.2 },
                    None => known.push((offset, ty, dst)),
                }
            }
            Op::StoreGlobal { src, ty, offset } => {
                known.retain(|k| !overlaps(k.0, k.1, offset, ty));
                known.push((offset, ty, src));
            }
            Op::Call { helper, .. }
                if helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.writes_state) =>
            {
                known.clear()
            }
            Op::Label(l) if last_branch != Some(l) || branches_to[l.0 as usize] != 1 => {
                known.clear()
            }
            Op::BrCond { label, .. } | Op::Br(label) => {
                branches_to[label.0 as usize] += 1;
                after_branch = Some(label);
            }
            Op::Exit(_) => after_branch = last_branch,
            _ => {}
        }
    }
    let mut pending: Vec<(usize, u32, Type)> = Vec::new();
    let mut dead = vec![false; block.ops.len()];
    for (i, op) in block.ops.iter().enumerate() {
        match *op {
            Op::StoreGlobal { ty, offset, .. } => {
                let (o, end) = (u64::from(offset), u64::from(offset) + u64::from(ty.bytes()));
                pending.retain(|&(j, po, pty)| {
                    let (p0, p1) = (u64::from(po), u64::from(po) + u64::from(pty.bytes()));
                    let covered = o <= p0 && p1 <= end;
                    if covered {
                        dead[j] = true;
                    }
                    !covered
                });
                pending.push((i, offset, ty));
            }
            Op::LoadGlobal { ty, offset, .. } => {
                pending.retain(|&(_, po, pty)| !overlaps(po, pty, offset, ty));
            }
            Op::Call { helper, .. }
                if helpers
                    .get(helper.0 as usize)
                    .is_none_or(|h| h.effects.reads_state || h.effects.may_raise) =>
            {
                pending.clear();
            }
            Op::Load { .. }
            | Op::Store { .. }
            | Op::Label(_)
            | Op::Br(_)
            | Op::BrCond { .. }
            | Op::Exit(_) => pending.clear(),
            _ => {}
        }
    }
    let mut i = 0;
    block.ops.retain(|_| {
        i += 1;
        !dead[i - 1]
    });
}

/// Random blocks, and the same with their globals moved to offsets that straddle, half-cover
/// and cover the 8-byte slots differently: the pass equals [`linear_redundant_globals`].
#[test]
fn redundant_globals_equals_the_linear_scan() {
    let shifts = [0u32, 4, 2, 1, 0x10_0000];
    for seed in 0..3000u64 {
        for (k, shift) in shifts.iter().enumerate() {
            let mut block = Gen::block(seed);
            for op in block.ops.iter_mut() {
                if let Op::LoadGlobal { offset, .. } | Op::StoreGlobal { offset, .. } = op {
                    // Every other global moves, so moved and unmoved ones overlap.
                    if (*offset / 8 + seed as u32 + k as u32).is_multiple_of(2) {
                        *offset += shift;
                    }
                }
            }
            assert_table_pass_equals_linear(&block, &format!("seed {seed} shift {shift}"));
        }
    }
}

/// Blocks of global loads and stores only, of every width, at offsets 4 bytes apart (so
/// 8-byte slots are straddled, half-covered and covered by wider ones) and at the end of the
/// pass's slot table, with labels and state-writing helpers between them: the pass equals
/// [`linear_redundant_globals`].
#[test]
fn redundant_globals_on_overlapping_widths_equals_the_linear_scan() {
    const TYPES: [Type; 5] = [Type::I8, Type::I16, Type::I32, Type::I64, Type::I128];
    for seed in 0..3000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut b = Builder::new(0x1000);
        b.insn_start(0x1000, 0);
        let base = if rng.gen_ratio(1, 4) {
            (1 << 20) - 16
        } else {
            0x100
        };
        for _ in 0..rng.gen_range(1..40) {
            let ty = TYPES[rng.gen_range(0..TYPES.len())];
            let offset = base + 4 * rng.gen_range(0..8);
            match rng.gen_range(0..20) {
                0 => {
                    let l = b.new_label();
                    b.label(l);
                }
                1 => {
                    let v = b.iconst(Type::I64, 1);
                    b.call(&SET_REG, &[v, v]);
                }
                2 => {
                    b.call(&READ_PC, &[]);
                }
                3..=10 => {
                    b.load_global(ty, offset);
                }
                _ => {
                    let v = b.iconst(ty, rng.gen());
                    b.store_global(ty, offset, v);
                }
            }
        }
        b.exit(Terminal::Exit {
            reason: ExitReason::Halt,
            pc: 0x1004,
        });
        let block = b.finish();
        assert_table_pass_equals_linear(&block, &format!("seed {seed}"));
    }
}

/// `redundant_globals` on `block` gives the ops [`linear_redundant_globals`] gives.
fn assert_table_pass_equals_linear(block: &IrBlock, what: &str) {
    let mut table = block.clone();
    super::globals::redundant_globals(&mut table);
    let mut linear = block.clone();
    linear_redundant_globals(&mut linear);
    assert!(
        table.ops == linear.ops,
        "{what}: table\n{table}\n---\nlinear\n{linear}\n---\ninput\n{block}"
    );
}
