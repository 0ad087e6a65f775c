//! Optimizer passes over one [`IrBlock`] (DESIGN.md §2): small free functions, one per file,
//! each preserving the block's observable behaviour exactly (guest state, memory, exits,
//! instruction counts). [`optimize`] runs them all.
//!
//! Each pass is also written as a step over one op (`globals::Forwarder`,
//! `globals::DeadStores`, `const_fold::Folder`, `dce::Reach`, `compact::Renumber`), and
//! [`optimize`] drives the steps of all passes in three walks over the block instead of a
//! dozen: translation of cold code is a large share of a boot (~47 k blocks), and the passes
//! run one by one spent most of their time re-reading ops and allocating tables. The result is
//! the block the passes produce one after the other in the order of [`PIPELINE`] (a test
//! checks this on random blocks). Ops are rewritten in place, field by field: copying an op
//! whole just after writing some of its fields stalls on store forwarding, which was most of
//! the passes' time. In debug builds the verifier checks the result, and a
//! failure is a bug in a pass (never a guest fault), so it panics.

pub mod compact;
pub mod const_fold;
pub mod copy_prop;
pub mod dce;
pub mod globals;
#[cfg(test)]
mod random_tests;

use crate::ir::verify::verify;
use crate::ir::{IrBlock, Op, Type, Value};
use std::cell::RefCell;

/// A pass: rewrites a verified block into an equivalent verified block.
pub type Pass = fn(&mut IrBlock);

/// The pipeline, in order, with each pass's name for debug-build verifier failures.
/// Forwarding globals creates `Mov`s for copy propagation; folding propagates the moves it
/// makes itself; dead-code elimination removes what the others made unused, and compaction
/// renumbers what is left.
pub const PIPELINE: [(&str, Pass); 5] = [
    ("globals", globals::redundant_globals),
    ("copy_prop", copy_prop::copy_propagate),
    ("const_fold", const_fold::const_fold),
    ("dce", dce::dead_code),
    ("compact", compact::compact_values),
];

/// Run the passes of [`PIPELINE`] one after the other, verifying after each in debug builds:
/// the reference for [`optimize`], and a way to find which pass broke a block.
pub fn optimize_by_passes(block: &mut IrBlock) {
    for (name, pass) in PIPELINE {
        pass(block);
        if cfg!(debug_assertions) {
            if let Err(e) = verify(block) {
                panic!("IR pass `{name}` produced an invalid block: {e}\n{block}");
            }
        }
    }
}

/// The passes' state, kept between blocks so translation allocates no tables.
#[derive(Default)]
struct Scratch {
    /// `alias[v]`: the value `v` copies (copy propagation and the moves folding makes).
    alias: Vec<Value>,
    forward: globals::Forwarder,
    stores: globals::DeadStores,
    folder: const_fold::Folder,
    reach: dce::Reach,
    /// Per op: `dce::{REMOVED, REACHABLE, KEEP}`.
    flags: Vec<u8>,
    needed: Vec<bool>,
    renumber: compact::Renumber,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::default();
}

/// Run every pass of [`PIPELINE`] on a verified block, fused into three walks.
pub fn optimize(block: &mut IrBlock) {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => optimize_with(block, &mut s),
        Err(_) => optimize_with(block, &mut Scratch::default()),
    });
    if cfg!(debug_assertions) {
        if let Err(e) = verify(block) {
            panic!("the IR optimizer produced an invalid block: {e}\n{block}");
        }
    }
}

fn optimize_with(block: &mut IrBlock, s: &mut Scratch) {
    let n = block.values.len();
    s.alias.clear();
    s.alias.extend((0..n as u32).map(Value));
    s.forward.reset();
    s.stores.reset();
    s.folder.reset(n);
    s.reach.reset(block.labels);
    s.flags.clear();
    s.flags.resize(block.ops.len(), 0);
    let Scratch {
        alias,
        forward,
        stores,
        folder,
        reach,
        flags,
        needed,
        renumber,
    } = s;
    // Walk 1, forward: globals, copy propagation, constant folding and reachability.
    for (i, op) in block.ops.iter_mut().enumerate() {
        let set_alias = |alias: &mut Vec<Value>, op: &Op| {
            if let Op::Mov { dst, src, .. } = *op {
                if let Some(a) = alias.get_mut(dst.0 as usize) {
                    *a = src;
                }
            }
        };
        let flag = match op {
            // Value ops touch no state and no control flow: the globals and reachability steps
            // would pass over them, so they are not dispatched on them (each dispatch on the op
            // kind is a likely branch miss, and they were most of this walk's time).
            Op::Const { .. }
            | Op::Mov { .. }
            | Op::Unary { .. }
            | Op::Binary { .. }
            | Op::Ext { .. }
            | Op::SetCond { .. }
            | Op::Select { .. } => {
                map_uses(op, |v| alias.get(v.0 as usize).copied().unwrap_or(v));
                set_alias(alias, op);
                folder.fold(op);
                set_alias(alias, op);
                if reach.live() {
                    dce::REACHABLE
                } else {
                    0
                }
            }
            _ => {
                map_uses(op, |v| alias.get(v.0 as usize).copied().unwrap_or(v));
                forward.step(op, &block.helpers);
                set_alias(alias, op);
                stores.step(i, op, &block.helpers, |j| {
                    if let Some(f) = flags.get_mut(j) {
                        *f |= dce::REMOVED;
                    }
                });
                if !folder.fold(op) {
                    dce::REMOVED
                } else {
                    set_alias(alias, op);
                    if reach.step(op) {
                        dce::REACHABLE
                    } else {
                        0
                    }
                }
            }
        };
        if let Some(f) = flags.get_mut(i) {
            *f |= flag;
        }
    }
    // Walk 2, backward: which ops stay.
    let defs = dce::mark_kept(&block.ops, flags, n, needed);
    // Walk 3, forward: drop the rest and renumber the values that remain.
    let dropped = if defs == n {
        dce::sweep(&mut block.ops, flags, |_| {})
    } else {
        renumber.reset(n);
        let types: &[Type] = &block.values;
        let dropped = dce::sweep(&mut block.ops, flags, |op| renumber.op(op, types));
        renumber.finish(&mut block.values);
        dropped
    };
    block.insn_count = block.insn_count.saturating_sub(dropped);
}

/// Rewrite every *used* value of `op` through `f` (definitions are left alone).
#[inline]
pub(crate) fn map_uses(
    op: &mut crate::ir::Op,
    mut f: impl FnMut(crate::ir::Value) -> crate::ir::Value,
) {
    use crate::ir::{Op, Terminal};
    match op {
        Op::InsnStart { .. }
        | Op::Const { .. }
        | Op::LoadGlobal { .. }
        | Op::Label(_)
        | Op::Br(_) => {}
        Op::Mov { src, .. }
        | Op::StoreGlobal { src, .. }
        | Op::Unary { src, .. }
        | Op::Ext { src, .. } => *src = f(*src),
        Op::Binary { a, b, .. } | Op::SetCond { a, b, .. } | Op::BrCond { a, b, .. } => {
            *a = f(*a);
            *b = f(*b);
        }
        Op::Select { cond_val, a, b, .. } => {
            *cond_val = f(*cond_val);
            *a = f(*a);
            *b = f(*b);
        }
        Op::Load { addr, .. } => *addr = f(*addr),
        Op::Store { src, addr, .. } => {
            *src = f(*src);
            *addr = f(*addr);
        }
        Op::Call { args, .. } => {
            for a in args.iter_mut() {
                *a = f(*a);
            }
        }
        Op::Exit(t) => match t {
            Terminal::Goto { .. } | Terminal::Exit { .. } => {}
            Terminal::Indirect { pc } | Terminal::ExitDynamic { pc, .. } => *pc = f(*pc),
        },
    }
}

/// Call `f` on every value `op` uses.
#[inline]
pub(crate) fn for_each_use(op: &crate::ir::Op, mut f: impl FnMut(crate::ir::Value)) {
    use crate::ir::{Op, Terminal};
    match op {
        Op::InsnStart { .. }
        | Op::Const { .. }
        | Op::LoadGlobal { .. }
        | Op::Label(_)
        | Op::Br(_) => {}
        Op::Mov { src, .. }
        | Op::StoreGlobal { src, .. }
        | Op::Unary { src, .. }
        | Op::Ext { src, .. } => f(*src),
        Op::Binary { a, b, .. } | Op::SetCond { a, b, .. } | Op::BrCond { a, b, .. } => {
            f(*a);
            f(*b);
        }
        Op::Select { cond_val, a, b, .. } => {
            f(*cond_val);
            f(*a);
            f(*b);
        }
        Op::Load { addr, .. } => f(*addr),
        Op::Store { src, addr, .. } => {
            f(*src);
            f(*addr);
        }
        Op::Call { args, .. } => args.iter().copied().for_each(f),
        Op::Exit(t) => match t {
            Terminal::Goto { .. } | Terminal::Exit { .. } => {}
            Terminal::Indirect { pc } | Terminal::ExitDynamic { pc, .. } => f(*pc),
        },
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::ir::parse::parse_block;
    use crate::ir::verify::verify;
    use crate::ir::IrBlock;
    use crate::testing::test_helpers;

    /// Parse and verify a block body under a default header.
    pub fn block(body: &str) -> IrBlock {
        let b = parse_block(&format!("block pc=0x1000\n{body}"), &test_helpers())
            .unwrap_or_else(|e| panic!("{e}"));
        verify(&b).unwrap_or_else(|e| panic!("{e}"));
        b
    }

    /// The op lines of a block's text form, trimmed, for comparisons.
    pub fn ops_text(b: &IrBlock) -> Vec<String> {
        b.ops
            .iter()
            .map(|o| crate::ir::print::op_to_string(b, o))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::*;
    use super::*;

    #[test]
    fn pipeline_folds_forwards_and_cleans_up() {
        let mut b = block(
            " insn 0x1000 0\n v0:i64 = load_global 0x200\n v1:i64 = const 0\n v2:i64 = add v0, v1\n \
             store_global.i64 0x208, v2\n v3:i64 = load_global 0x208\n v4:i64 = const 3\n \
             v5:i64 = const 4\n v6:i64 = mul v4, v5\n v7:i64 = add v3, v6\n \
             store_global.i64 0x208, v7\n brcond.i64 eq v4, v5, L0\n goto 0x1004\nL0:\n goto 0x2000\n",
        );
        optimize(&mut b);
        assert_eq!(
            ops_text(&b),
            [
                "insn 0x1000 0x00000000",
                "v0:i64 = load_global 0x200",
                "v1:i64 = const 0xc",
                "v2:i64 = add v0, v1",
                "store_global.i64 0x208, v2",
                "goto 0x1004",
            ]
        );
        assert_eq!(b.values.len(), 3);
    }
}
