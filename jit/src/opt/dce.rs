//! Dead-code elimination: ops that cannot run (after an unconditional branch or exit, until a
//! label some reachable branch targets), side-effect-free ops whose result nobody uses, and
//! branches to the label right after them.
//!
//! Instruction accounting is preserved: an unreachable `insn` op is kept while reachable code
//! follows it, because executors number instructions by their position in the block; only an
//! unreachable tail is dropped whole (with `insn_count` adjusted).

use super::for_each_use;
use crate::ir::{IrBlock, Op};

/// Remove dead code from `block` in place.
pub fn dead_code(block: &mut IrBlock) {
    let reachable = reachability(block);
    let last_reachable = reachable.iter().rposition(|&r| r);
    let mut needed = vec![false; block.values.len()];
    let mut keep = vec![false; block.ops.len()];
    for (i, op) in block.ops.iter().enumerate().rev() {
        let dst = crate::ir::print::op_dst(op);
        let dst_needed = dst.is_some_and(|d| needed.get(d.0 as usize).copied().unwrap_or(true));
        let k = if reachable.get(i).copied().unwrap_or(true) {
            !is_pure(op) || dst_needed
        } else {
            // Unreachable: keep instruction numbering for reachable code after it, and any
            // definition reachable code (strangely) still names, so the block stays valid.
            (matches!(op, Op::InsnStart { .. }) && last_reachable.is_some_and(|l| l > i))
                || dst_needed
        };
        if let Some(slot) = keep.get_mut(i) {
            *slot = k;
        }
        if k {
            for_each_use(op, |v| {
                if let Some(n) = needed.get_mut(v.0 as usize) {
                    *n = true;
                }
            });
        }
    }
    let mut dropped_insns = 0u32;
    let mut out = Vec::with_capacity(block.ops.len());
    for (op, k) in std::mem::take(&mut block.ops).into_iter().zip(keep) {
        if k {
            out.push(op);
        } else if matches!(op, Op::InsnStart { .. }) {
            dropped_insns += 1;
        }
    }
    // `br L` straight into `L:` is a fallthrough.
    let mut i = 0;
    while i + 1 < out.len() {
        if let (Some(Op::Br(a)), Some(Op::Label(b))) = (out.get(i), out.get(i + 1)) {
            if a == b {
                out.remove(i);
                continue;
            }
        }
        i += 1;
    }
    block.ops = out;
    block.insn_count = block.insn_count.saturating_sub(dropped_insns);
}

/// Whether each op can run. Branches only go forward, so one pass decides it: a label is
/// reachable if control falls into it or a reachable branch earlier targets it.
fn reachability(block: &IrBlock) -> Vec<bool> {
    let mut targeted = vec![false; block.labels as usize];
    let mut live = true;
    let mut out = Vec::with_capacity(block.ops.len());
    for op in &block.ops {
        if let Op::Label(l) = op {
            live |= targeted.get(l.0 as usize).copied().unwrap_or(true);
        }
        out.push(live);
        if live {
            match op {
                Op::Br(l) | Op::BrCond { label: l, .. } => {
                    if let Some(t) = targeted.get_mut(l.0 as usize) {
                        *t = true;
                    }
                    if matches!(op, Op::Br(_)) {
                        live = false;
                    }
                }
                Op::Exit(_) => live = false,
                _ => {}
            }
        }
    }
    out
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
