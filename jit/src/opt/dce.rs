//! Dead-code elimination: ops that cannot run (after an unconditional branch or exit, until a
//! label some reachable branch targets), side-effect-free ops whose result nobody uses, and
//! branches to the label right after them.
//!
//! Instruction accounting is preserved: an unreachable `insn` op is kept while reachable code
//! follows it, because executors number instructions by their position in the block; only an
//! unreachable tail is dropped whole (with `insn_count` adjusted).

use super::for_each_use;
use crate::ir::{IrBlock, Op};

/// Flags of one op in [`mark_kept`] and [`sweep`].
/// The op is already deleted by an earlier pass (a dead store, a branch never taken): it
/// neither runs nor uses anything.
pub(crate) const REMOVED: u8 = 1;
/// Control can reach the op ([`Reach`]).
pub(crate) const REACHABLE: u8 = 2;
/// The op stays.
pub(crate) const KEEP: u8 = 4;

/// Remove dead code from `block` in place.
pub fn dead_code(block: &mut IrBlock) {
    let mut flags = vec![0u8; block.ops.len()];
    let mut reach = Reach::default();
    reach.reset(block.labels);
    for (op, f) in block.ops.iter().zip(flags.iter_mut()) {
        if reach.step(op) {
            *f |= REACHABLE;
        }
    }
    mark_kept(&block.ops, &mut flags, block.values.len(), &mut Vec::new());
    let dropped = sweep(&mut block.ops, &flags, |_| {});
    block.insn_count = block.insn_count.saturating_sub(dropped);
}

/// Whether each op can run, one op at a time in block order. Branches only go forward, so one
/// walk decides it: a label is reachable if control falls into it or a reachable branch
/// earlier targets it.
#[derive(Default)]
pub(crate) struct Reach {
    targeted: Vec<bool>,
    live: bool,
}

impl Reach {
    /// Start a block with `labels` labels.
    pub(crate) fn reset(&mut self, labels: u32) {
        self.targeted.clear();
        self.targeted.resize(labels as usize, false);
        self.live = true;
    }

    /// Whether the next op is reachable if it is not a label (nor does it change that itself).
    pub(crate) fn live(&self) -> bool {
        self.live
    }

    /// Whether `op`, the next op of the block, is reachable.
    #[inline]
    pub(crate) fn step(&mut self, op: &Op) -> bool {
        if let Op::Label(l) = op {
            self.live |= self.targeted.get(l.0 as usize).copied().unwrap_or(true);
        }
        let live = self.live;
        if live {
            match op {
                Op::Br(l) | Op::BrCond { label: l, .. } => {
                    if let Some(t) = self.targeted.get_mut(l.0 as usize) {
                        *t = true;
                    }
                    if matches!(op, Op::Br(_)) {
                        self.live = false;
                    }
                }
                Op::Exit(_) => self.live = false,
                _ => {}
            }
        }
        live
    }
}

/// Set [`KEEP`] on the ops that stay, given [`REACHABLE`] and [`REMOVED`] (`needed` is
/// scratch space). Returns the number of kept ops that define a value.
pub(crate) fn mark_kept(
    ops: &[Op],
    flags: &mut [u8],
    values: usize,
    needed: &mut Vec<bool>,
) -> usize {
    let last_reachable = flags
        .iter()
        .rposition(|&f| f & (REACHABLE | REMOVED) == REACHABLE);
    needed.clear();
    needed.resize(values, false);
    let mut defs = 0;
    for (i, (op, f)) in ops.iter().zip(flags.iter_mut()).enumerate().rev() {
        if *f & REMOVED != 0 {
            continue;
        }
        let dst = crate::ir::print::op_dst(op);
        let dst_needed = dst.is_some_and(|d| needed.get(d.0 as usize).copied().unwrap_or(true));
        let k = if *f & REACHABLE != 0 {
            !is_pure(op) || dst_needed
        } else {
            // Unreachable: keep instruction numbering for reachable code after it, and any
            // definition reachable code (strangely) still names, so the block stays valid.
            (matches!(op, Op::InsnStart { .. }) && last_reachable.is_some_and(|l| l > i))
                || dst_needed
        };
        if k {
            *f |= KEEP;
            defs += usize::from(dst.is_some());
            for_each_use(op, |v| {
                if let Some(n) = needed.get_mut(v.0 as usize) {
                    *n = true;
                }
            });
        }
    }
    defs
}

/// Keep the ops marked [`KEEP`] (passing each through `f`), in place, and drop a `br L`
/// straight into `L:` (a fallthrough). Returns the number of `insn` ops dropped.
pub(crate) fn sweep(ops: &mut Vec<Op>, flags: &[u8], mut f: impl FnMut(&mut Op)) -> u32 {
    let mut dropped_insns = 0u32;
    let mut w = 0usize;
    for r in 0..ops.len() {
        let (Some(op), Some(&fl)) = (ops.get(r), flags.get(r)) else {
            break;
        };
        if fl & KEEP == 0 {
            if fl & REMOVED == 0 && matches!(op, Op::InsnStart { .. }) {
                dropped_insns += 1;
            }
            continue;
        }
        if let Op::Label(l) = *op {
            if w > 0 && ops.get(w - 1) == Some(&Op::Br(l)) {
                w -= 1;
            }
        }
        // Move the op, then rewrite it in place (not the other way round: a copy of an op
        // whose fields were just written stalls on store forwarding).
        if w != r {
            ops.swap(w, r);
        }
        if let Some(slot) = ops.get_mut(w) {
            f(slot);
        }
        w += 1;
    }
    ops.truncate(w);
    dropped_insns
}

/// Ops with no effect but their result. Loads may fault and calls may do anything, so they
/// stay even when their result is unused.
fn is_pure(op: &Op) -> bool {
    matches!(
        op,
        Op::Const { .. }
            | Op::Mov { .. }
            | Op::LoadGlobal { .. }
            | Op::Unary { .. }
            | Op::Binary { .. }
            | Op::Ext { .. }
            | Op::SetCond { .. }
            | Op::Select { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::test_util::{block, ops_text};

    #[test]
    fn removes_unused_pure_ops_but_keeps_effects() {
        let mut b = block(
            " insn 0x1000 0\n v0:i64 = const 0x10\n v1:i64 = add v0, v0\n v2:i64 = load u8 v0\n \
             v3:i64 = call test.add3 v0, v0, v0\n v4:i64 = mul v0, v0\n store_global.i64 0x100, v4\n \
             goto 0x1004\n",
        );
        dead_code(&mut b);
        assert_eq!(
            ops_text(&b),
            [
                "insn 0x1000 0x00000000",
                "v0:i64 = const 0x10",
                "v2:i64 = load u8 v0",
                "v3:i64 = call test.add3 v0, v0, v0",
                "v4:i64 = mul v0, v0",
                "store_global.i64 0x100, v4",
                "goto 0x1004",
            ]
        );
    }

    #[test]
    fn removes_unreachable_code_and_keeps_numbering() {
        let mut b = block(
            " insn 0x1000 0\n br L0\n v0:i64 = const 1\n store_global.i64 0x100, v0\nL1:\n \
             goto 0\nL0:\n insn 0x1004 0\n br L2\nL2:\n exit halt 0x1008\n insn 0x1008 0\n goto 0\n",
        );
        dead_code(&mut b);
        assert_eq!(
            ops_text(&b),
            [
                "insn 0x1000 0x00000000",
                "L0:",
                "insn 0x1004 0x00000000",
                "L2:",
                "exit halt 0x1008",
            ]
        );
        assert_eq!(b.insn_count, 2);
        crate::ir::verify::verify(&b).unwrap();
    }

    #[test]
    fn keeps_unreachable_insn_before_reachable_code() {
        let mut b = block(
            " insn 0x1000 0\n v0:i64 = load_global 0x100\n brcond.i64 eq v0, v0, L0\n goto 0\n \
             insn 0x1004 0\nL0:\n goto 4\n",
        );
        dead_code(&mut b);
        assert_eq!(ops_text(&b)[4], "insn 0x1004 0x00000000");
        assert_eq!(b.insn_count, 2);
    }
}
