//! Constant folding: ops whose operands are constants become constants, algebraic identities
//! (`x + 0`, `x & 0`, `x ^ x`, ...) become moves or constants, and conditional branches on
//! constants become unconditional branches or disappear. Values are computed by the
//! interpreter's own semantics ([`crate::interp`]), so folding cannot change a result.

use super::map_uses;
use crate::interp::{eval_binary, eval_cond, eval_ext, eval_unary};
use crate::ir::{BinOp, Cond, IrBlock, Op, Type, UnOp, Value};

/// Fold constants in `block` in place. Moves it creates (and finds) are propagated to later
/// uses as it goes, so one run folds through them.
pub fn const_fold(block: &mut IrBlock) {
    let mut folder = Folder::default();
    folder.reset(block.values.len());
    let mut alias: Vec<Value> = (0..block.values.len() as u32).map(Value).collect();
    // Branches that are never taken, removed at the end.
    let mut dead: Vec<usize> = Vec::new();
    for (i, op) in block.ops.iter_mut().enumerate() {
        map_uses(op, |v| alias.get(v.0 as usize).copied().unwrap_or(v));
        if !folder.fold(op) {
            dead.push(i);
        } else if let Op::Mov { dst, src, .. } = *op {
            if let Some(a) = alias.get_mut(dst.0 as usize) {
                *a = src;
            }
        }
    }
    if !dead.is_empty() {
        let mut i = 0;
        block.ops.retain(|_| {
            let keep = dead.binary_search(&i).is_err();
            i += 1;
            keep
        });
    }
}

/// The folding state of one block: the constants known so far (values are defined once,
/// before use in linear order, so a constant stays one). [`super::optimize`] drives it op by
/// op together with the other forward passes.
#[derive(Default)]
pub(crate) struct Folder {
    known: Vec<Option<u128>>,
}

impl Folder {
    /// Start a block of `values` values.
    pub(crate) fn reset(&mut self, values: usize) {
        self.known.clear();
        self.known.resize(values, None);
    }

    /// Fold `op` in place, whose uses are already rewritten through earlier moves; `false`
    /// for a conditional branch that is never taken (to be removed).
    ///
    /// Ops are rewritten in place, field by field, and only when they change: copying a whole
    /// op just after writing some of its fields stalls on store forwarding, which was most of
    /// the optimizer's time.
    #[inline]
    pub(crate) fn fold(&mut self, slot: &mut Op) -> bool {
        let known = &mut self.known;
        let get = |known: &[Option<u128>], v: Value| known.get(v.0 as usize).copied().flatten();
        let new = match *slot {
            Op::Const { dst, ty, imm } => {
                set(known, dst, u128::from(imm) & ty.mask());
                None
            }
            Op::Mov { dst, ty, src } => match get(known, src) {
                Some(c) => constant(known, dst, ty, c),
                None => None,
            },
            Op::Binary {
                op: bop,
                ty,
                dst,
                a,
                b,
            } => match (get(known, a), get(known, b)) {
                (Some(x), Some(y)) => constant(known, dst, ty, eval_binary(bop, ty, x, y)),
                (ca, cb) => identity(known, bop, ty, dst, a, b, ca, cb),
            },
            // A bitcast result may be a float; keep it an op (backends may not take float
            // constants).
            Op::Unary {
                op: uop,
                ty,
                dst,
                src,
            } if uop != UnOp::Bitcast => match get(known, src) {
                Some(x) => constant(known, dst, ty, eval_unary(uop, ty, x)),
                None => None,
            },
            Op::Ext {
                kind,
                from,
                to,
                dst,
                src,
            } => match get(known, src) {
                Some(x) => constant(known, dst, to, eval_ext(kind, from, to, x)),
                None => None,
            },
            Op::SetCond {
                cond,
                ty,
                dst,
                a,
                b,
            } => match decide(known, cond, ty, a, b) {
                Some(t) => constant(known, dst, Type::I8, u128::from(t)),
                None => None,
            },
            Op::Select {
                ty,
                dst,
                cond_val,
                a,
                b,
            } => {
                let pick = if a == b {
                    Some(a)
                } else {
                    get(known, cond_val).map(|c| if c & 0xff != 0 { a } else { b })
                };
                match pick {
                    Some(src) => match get(known, src) {
                        Some(c) => {
                            Some(constant(known, dst, ty, c).unwrap_or(Op::Mov { dst, ty, src }))
                        }
                        None => Some(Op::Mov { dst, ty, src }),
                    },
                    None => None,
                }
            }
            Op::BrCond {
                cond,
                ty,
                a,
                b,
                label,
            } => match decide(known, cond, ty, a, b) {
                Some(true) => Some(Op::Br(label)),
                Some(false) => return false,
                None => None,
            },
            _ => None,
        };
        if let Some(new) = new {
            *slot = new;
        }
        true
    }
}

fn set(known: &mut [Option<u128>], v: Value, c: u128) {
    if let Some(k) = known.get_mut(v.0 as usize) {
        *k = Some(c);
    }
}

/// `dst = c` as a `Const` op, if `c` is representable (I128 constants are 64-bit immediates)
/// and the type is an integer.
fn constant(known: &mut [Option<u128>], dst: Value, ty: Type, c: u128) -> Option<Op> {
    let imm = u64::try_from(c).ok()?;
    if !ty.is_int() {
        return None;
    }
    set(known, dst, c);
    Some(Op::Const { dst, ty, imm })
}

/// The outcome of `a cond b` if known: both constant, or the same value.
fn decide(known: &[Option<u128>], cond: Cond, ty: Type, a: Value, b: Value) -> Option<bool> {
    let get = |v: Value| known.get(v.0 as usize).copied().flatten();
    if let (Some(x), Some(y)) = (get(a), get(b)) {
        return Some(eval_cond(cond, ty, x, y));
    }
    (a == b).then_some(matches!(
        cond,
        Cond::Eq | Cond::Ge | Cond::Geu | Cond::Le | Cond::Leu
    ))
}

/// Algebraic identities with one constant operand (or two equal operands).
#[allow(clippy::too_many_arguments)]
fn identity(
    known: &mut [Option<u128>],
    op: BinOp,
    ty: Type,
    dst: Value,
    a: Value,
    b: Value,
    ca: Option<u128>,
    cb: Option<u128>,
) -> Option<Op> {
    let ones = ty.mask();
    let mov = |src| Some(Op::Mov { dst, ty, src });
    let commutative = matches!(
        op,
        BinOp::Add | BinOp::Mul | BinOp::And | BinOp::Or | BinOp::Xor
    );
    // Put a constant left operand of a commutative op on the right.
    let (x, c) = match (ca, cb) {
        (_, Some(c)) => (a, Some(c)),
        (Some(c), None) if commutative => (b, Some(c)),
        _ => (a, None),
    };
    if let Some(c) = c {
        let zero = c == 0;
        let one = c == 1;
        let all = c == ones;
        match op {
            BinOp::Add
            | BinOp::Sub
            | BinOp::Or
            | BinOp::Xor
            | BinOp::AndNot
            | BinOp::Shl
            | BinOp::Shr
            | BinOp::Sar
            | BinOp::Rotl
            | BinOp::Rotr
                if zero =>
            {
                return mov(x)
            }
            BinOp::Mul | BinOp::DivU | BinOp::DivS if one => return mov(x),
            BinOp::And | BinOp::OrNot | BinOp::XorNot if all => return mov(x),
            BinOp::Mul | BinOp::And if zero => return constant(known, dst, ty, 0),
            BinOp::AndNot if all => return constant(known, dst, ty, 0),
            BinOp::RemU | BinOp::RemS if one => return constant(known, dst, ty, 0),
            BinOp::Or if all => return constant(known, dst, ty, ones),
            BinOp::OrNot if zero => return constant(known, dst, ty, ones),
            _ => {}
        }
    }
    if a == b {
        match op {
            BinOp::Sub | BinOp::Xor => return constant(known, dst, ty, 0),
            BinOp::XorNot => return constant(known, dst, ty, ones),
            BinOp::And | BinOp::Or | BinOp::MinS | BinOp::MaxS | BinOp::MinU | BinOp::MaxU => {
                return mov(a)
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opt::test_util::{block, ops_text};

    #[test]
    fn folds_constants_with_interpreter_semantics() {
        let mut b = block(
            " v0:i32 = const 0x80000000\n v1:i32 = const -1\n v2:i32 = divs v0, v1\n \
             v3:i64 = sext.i32 v2\n v4:i8 = setcond.i64 lt v3, v3\n v5:i64 = clz v3\n \
             v6:i128 = const -1\n v7:i128 = add v6, v6\n goto 0\n",
        );
        const_fold(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[2], "v2:i32 = const 0x80000000");
        assert_eq!(t[3], "v3:i64 = const 0xffffffff80000000");
        assert_eq!(t[4], "v4:i8 = const 0x0");
        assert_eq!(t[5], "v5:i64 = const 0x0");
        // The I128 sum needs more than 64 bits: it stays an op.
        assert_eq!(t[7], "v7:i128 = add v6, v6");
    }

    #[test]
    fn identities_become_moves_or_constants() {
        let mut b = block(
            " v0:i64 = load_global 0x100\n v1:i64 = const 0\n v2:i64 = const -1\n \
             v3:i64 = add v1, v0\n v4:i64 = and v0, v2\n v5:i64 = mul v0, v1\n v6:i64 = xor v0, v0\n \
             v7:i64 = shl v0, v1\n v8:i64 = sub v1, v0\n v9:i64 = or v0, v2\n v10:i64 = ornot v0, v1\n \
             goto 0\n",
        );
        const_fold(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[3], "v3:i64 = mov v0");
        assert_eq!(t[4], "v4:i64 = mov v0");
        assert_eq!(t[5], "v5:i64 = const 0x0");
        assert_eq!(t[6], "v6:i64 = const 0x0");
        assert_eq!(t[7], "v7:i64 = mov v0");
        assert_eq!(t[8], "v8:i64 = sub v1, v0"); // 0 - x is not an identity
        assert_eq!(t[9], "v9:i64 = const 0xffffffffffffffff");
        assert_eq!(t[10], "v10:i64 = const 0xffffffffffffffff");
    }

    #[test]
    fn folds_branches_and_selects() {
        let mut b = block(
            " v0:i64 = const 1\n v1:i64 = const 2\n v2:i64 = load_global 0x100\n \
             brcond.i64 gtu v0, v1, L0\n brcond.i64 le v2, v2, L1\n v3:i8 = setcond.i64 ltu v0, v1\n \
             v4:i64 = select v3, v2, v0\n goto 0\nL0:\n goto 1\nL1:\n goto 2\n",
        );
        const_fold(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[3], "br L1");
        assert_eq!(t[4], "v3:i8 = const 0x1");
        assert_eq!(t[5], "v4:i64 = mov v2");
        assert_eq!(t.len(), 11);
    }

    #[test]
    fn folds_through_the_moves_it_makes() {
        let mut b = block(
            " v0:i64 = load_global 0x100\n v1:i64 = const 0\n v2:i64 = add v0, v1\n \
             v3:i64 = xor v2, v0\n v4:i64 = const 5\n v5:i64 = add v3, v4\n \
             brcond.i64 eq v5, v4, L0\n goto 0\nL0:\n indirect v2\n",
        );
        const_fold(&mut b);
        let t = ops_text(&b);
        assert_eq!(t[2], "v2:i64 = mov v0");
        assert_eq!(t[3], "v3:i64 = const 0x0");
        assert_eq!(t[5], "v5:i64 = const 0x5");
        assert_eq!(t[6], "br L0");
        assert_eq!(t[9], "indirect v0");
    }
}
