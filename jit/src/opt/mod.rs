//! Optimizer passes over one [`IrBlock`] (DESIGN.md §2): small free functions, one per file,
//! each preserving the block's observable behaviour exactly (guest state, memory, exits,
//! instruction counts). [`optimize`] runs them all; in debug builds the verifier runs after
//! every pass, and a failure is a bug in that pass (never a guest fault), so it panics.

pub mod compact;
pub mod const_fold;
pub mod copy_prop;
pub mod dce;
pub mod globals;
#[cfg(test)]
mod random_tests;

use crate::ir::verify::verify;
use crate::ir::IrBlock;

/// A pass: rewrites a verified block into an equivalent verified block.
pub type Pass = fn(&mut IrBlock);

/// The pipeline, in order, with each pass's name for debug-build verifier failures.
/// Forwarding globals creates `Mov`s for copy propagation; folding propagates the moves it
/// makes itself; dead-code elimination removes what the others made unused, and compaction
/// renumbers what is left.
const PIPELINE: [(&str, Pass); 5] = [
    ("globals", globals::redundant_globals),
    ("copy_prop", copy_prop::copy_propagate),
    ("const_fold", const_fold::const_fold),
    ("dce", dce::dead_code),
    ("compact", compact::compact_values),
];

/// Run every pass on a verified block.
pub fn optimize(block: &mut IrBlock) {
    for (name, pass) in PIPELINE {
        pass(block);
        if cfg!(debug_assertions) {
            if let Err(e) = verify(block) {
                panic!("IR pass `{name}` produced an invalid block: {e}\n{block}");
            }
        }
    }
}

/// Rewrite every *used* value of `op` through `f` (definitions are left alone).
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
