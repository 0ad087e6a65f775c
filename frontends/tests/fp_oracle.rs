//! Differential test of emu's RISC-V floating point (`riscv::fp`) against Berkeley SoftFloat 3
//! built with its RISC-V specialization (canonical NaNs, RISC-V integer saturation, tininess
//! after rounding), through `softfloat-wrapper`. Result bits and fflags must match exactly.
//!
//! Operands are random with a bias to edge cases: zeros, infinities, quiet and signaling NaNs,
//! subnormals, the normal range limits, values near integer limits and near rounding
//! boundaries, near-cancelling addends, and ordinary magnitudes (emu's host fast paths). Fixed
//! seed; `FP_ORACLE_CASES=<n>` sets the cases per operation and rounding mode (default 10,000,
//! i.e. 50,000 per operation), and `FP_ORACLE_SEED=<n>` another seed.
//!
//! SoftFloat has no minimumNumber/maximumNumber, class or sign injection; those are checked
//! against a reference built from SoftFloat's quiet comparisons and predicates.

use emu_frontends::riscv::fp::{self, CmpOp, FmaOp, Format, IntFmt, Rm, BINARY32, BINARY64};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use softfloat_wrapper::{ExceptionFlags, Float, RoundingMode, F32, F64};

fn cases() -> usize {
    std::env::var("FP_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn sf_rm(rm: Rm) -> RoundingMode {
    match rm {
        Rm::Rne => RoundingMode::TiesToEven,
        Rm::Rtz => RoundingMode::TowardZero,
        Rm::Rdn => RoundingMode::TowardNegative,
        Rm::Rup => RoundingMode::TowardPositive,
        Rm::Rmm => RoundingMode::TiesToAway,
    }
}

/// Run `f` with SoftFloat's flags cleared; return its result and the raised flags (SoftFloat's
/// flag bits equal RISC-V's fflags bits: NX 1, UF 2, OF 4, DZ/infinite 8, NV 16).
fn with_flags<T>(f: impl FnOnce() -> T) -> (T, u32) {
    ExceptionFlags::from_bits(0).set();
    let r = f();
    let mut fl = ExceptionFlags::default();
    fl.get();
    (r, u32::from(fl.to_bits()))
}

/// A random operand of `fmt`, biased to edge cases.
fn operand(rng: &mut StdRng, fmt: Format) -> u64 {
    let fb = fmt.frac_bits;
    let eb = fmt.exp_bits;
    let emax_field = (1u64 << eb) - 1;
    let bias = (1u64 << (eb - 1)) - 1;
    let sign = u64::from(rng.gen::<bool>()) << (eb + fb);
    let frac_mask = (1u64 << fb) - 1;
    let pack = |e: u64, f: u64| sign | (e << fb) | (f & frac_mask);
    // Significands near rounding boundaries: runs of ones or zeros at the low end.
    let edgy_frac = |rng: &mut StdRng| -> u64 {
        match rng.gen_range(0..6) {
            0 => 0,
            1 => frac_mask,
            2 => rng.gen::<u64>() & frac_mask & !((1 << rng.gen_range(0..fb)) - 1),
            3 => (rng.gen::<u64>() & frac_mask) | ((1 << rng.gen_range(0..fb)) - 1),
            4 => 1 << rng.gen_range(0..fb),
            _ => rng.gen::<u64>() & frac_mask,
        }
    };
    match rng.gen_range(0..20) {
        0 => pack(0, 0),
        1 => pack(emax_field, 0),
        // Quiet NaN with a random payload, signaling NaN with a nonzero payload.
        2 => pack(emax_field, (1 << (fb - 1)) | rng.gen::<u64>()),
        3 => pack(
            emax_field,
            (rng.gen::<u64>() & ((1 << (fb - 1)) - 1)).max(1),
        ),
        4 | 5 => pack(0, edgy_frac(rng).max(1)),
        6 => pack(1, edgy_frac(rng)),
        7 => pack(emax_field - 1, edgy_frac(rng)),
        8 => pack(rng.gen_range(1..4), edgy_frac(rng)),
        9 => pack(emax_field - rng.gen_range(1..4), edgy_frac(rng)),
        // Near 1 and around the 32/64-bit integer limits, with few fraction bits set (values at
        // and around .5 for conversions).
        10 | 11 => {
            let e = bias + [0u64, 1, 30, 31, 32, 62, 63, 64][rng.gen_range(0..8)];
            let e = (e + rng.gen_range(0..3)).saturating_sub(1);
            pack(e.min(emax_field - 1), edgy_frac(rng))
        }
        12 | 13 => pack(bias + rng.gen_range(0..70) - 8, edgy_frac(rng)),
        // Ordinary magnitudes with full random significands (the host fast paths).
        14..=16 => pack(bias + rng.gen_range(0..80) - 40, rng.gen()),
        _ => pack(rng.gen_range(0..=emax_field), edgy_frac(rng)),
    }
}

/// A second operand close in magnitude to `a` (cancellation, near-ties), or a fresh one.
fn partner(rng: &mut StdRng, fmt: Format, a: u64) -> u64 {
    if rng.gen_range(0..4) == 0 {
        let delta = rng.gen_range(0..4u64);
        let b = if rng.gen() {
            a.wrapping_add(delta)
        } else {
            a.wrapping_sub(delta)
        };
        let b = b ^ (u64::from(rng.gen::<bool>()) << (fmt.exp_bits + fmt.frac_bits));
        b & fmt_mask(fmt)
    } else {
        operand(rng, fmt)
    }
}

struct Failures {
    count: usize,
    first: Vec<String>,
}

impl Failures {
    fn new() -> Self {
        Failures {
            count: 0,
            first: Vec::new(),
        }
    }

    fn check(&mut self, what: impl FnOnce() -> String, got: (u64, u32), want: (u64, u32)) {
        if got != want {
            self.count += 1;
            if self.first.len() < 20 {
                self.first.push(format!(
                    "{}: got {:#x} flags {:#x}, want {:#x} flags {:#x}",
                    what(),
                    got.0,
                    got.1,
                    want.0,
                    want.1
                ));
            }
        }
    }

    fn assert_none(&self, op: &str) {
        assert!(
            self.count == 0,
            "{op}: {} mismatches; first:\n{}",
            self.count,
            self.first.join("\n")
        );
    }
}

/// The binary32 or binary64 operations SoftFloat provides, by format.
trait Oracle {
    const FMT: Format;
    fn arith(op: &str, a: u64, b: u64, c: u64, rm: RoundingMode) -> u64;
    fn lt_quiet(a: u64, b: u64) -> bool;
    fn eq(a: u64, b: u64) -> bool;
    fn lt(a: u64, b: u64) -> bool;
    fn le(a: u64, b: u64) -> bool;
    fn is_snan(a: u64) -> bool;
    fn to_int(ifmt: IntFmt, a: u64, rm: RoundingMode) -> u64;
    fn from_int(ifmt: IntFmt, v: u64, rm: RoundingMode) -> u64;
}

macro_rules! oracle {
    ($ty:ident, $t:ident, $bits:ty, $fmt:expr) => {
        struct $t;
        impl Oracle for $t {
            const FMT: Format = $fmt;
            fn arith(op: &str, a: u64, b: u64, c: u64, rm: RoundingMode) -> u64 {
                let (a, b, c) = (
                    $ty::from_bits(a as $bits),
                    $ty::from_bits(b as $bits),
                    $ty::from_bits(c as $bits),
                );
                let r = match op {
                    "add" => a.add(b, rm),
                    "sub" => a.sub(b, rm),
                    "mul" => a.mul(b, rm),
                    "div" => a.div(b, rm),
                    "sqrt" => a.sqrt(rm),
                    "fma" => a.fused_mul_add(b, c, rm),
                    _ => unreachable!("unknown op {op}"),
                };
                u64::from(r.to_bits())
            }
            fn lt_quiet(a: u64, b: u64) -> bool {
                $ty::from_bits(a as $bits).lt_quiet($ty::from_bits(b as $bits))
            }
            fn eq(a: u64, b: u64) -> bool {
                $ty::from_bits(a as $bits).eq($ty::from_bits(b as $bits))
            }
            fn lt(a: u64, b: u64) -> bool {
                $ty::from_bits(a as $bits).lt($ty::from_bits(b as $bits))
            }
            fn le(a: u64, b: u64) -> bool {
                $ty::from_bits(a as $bits).le($ty::from_bits(b as $bits))
            }
            fn is_snan(a: u64) -> bool {
                $ty::from_bits(a as $bits).is_signaling_nan()
            }
            fn to_int(ifmt: IntFmt, a: u64, rm: RoundingMode) -> u64 {
                let a = $ty::from_bits(a as $bits);
                match ifmt {
                    IntFmt::W => i64::from(a.to_i32(rm, true)) as u64,
                    IntFmt::Wu => i64::from(a.to_u32(rm, true) as i32) as u64,
                    IntFmt::L => a.to_i64(rm, true) as u64,
                    IntFmt::Lu => a.to_u64(rm, true),
                }
            }
            fn from_int(ifmt: IntFmt, v: u64, rm: RoundingMode) -> u64 {
                let r = match ifmt {
                    IntFmt::W => $ty::from_i32(v as i32, rm),
                    IntFmt::Wu => $ty::from_u32(v as u32, rm),
                    IntFmt::L => $ty::from_i64(v as i64, rm),
                    IntFmt::Lu => $ty::from_u64(v, rm),
                };
                u64::from(r.to_bits())
            }
        }
    };
}

oracle!(F32, Single, u32, BINARY32);
oracle!(F64, Double, u64, BINARY64);

fn rng_for(name: &str) -> StdRng {
    let base = std::env::var("FP_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_f00d_u64);
    let seed = name
        .bytes()
        .fold(base, |h, c| h.wrapping_mul(31).wrapping_add(u64::from(c)));
    StdRng::seed_from_u64(seed)
}

fn check_arith<O: Oracle>(op: &str) {
    let fmt = O::FMT;
    let mut rng = rng_for(&format!("{op}{}", fmt.frac_bits));
    let mut fails = Failures::new();
    for rm in Rm::ALL {
        for _ in 0..cases() {
            let a = operand(&mut rng, fmt);
            let b = partner(&mut rng, fmt, a);
            let mut fl = 0;
            let got = match op {
                "add" => fp::add(fmt, a, b, rm, &mut fl),
                "sub" => fp::sub(fmt, a, b, rm, &mut fl),
                "mul" => fp::mul(fmt, a, b, rm, &mut fl),
                "div" => fp::div(fmt, a, b, rm, &mut fl),
                _ => fp::sqrt(fmt, a, rm, &mut fl),
            };
            let want = with_flags(|| O::arith(op, a, b, 0, sf_rm(rm)));
            fails.check(|| format!("{op} {a:#x} {b:#x} {rm:?}"), (got, fl), want);
        }
    }
    fails.assert_none(op);
}

/// A third fma operand that often nearly cancels the product `a*b` (computed on the host,
/// then perturbed by a few ulps).
fn addend(rng: &mut StdRng, fmt: Format, a: u64, b: u64) -> u64 {
    if rng.gen_range(0..3) != 0 {
        return operand(rng, fmt);
    }
    let p = if fmt == BINARY32 {
        let p = f32::from_bits(a as u32) * f32::from_bits(b as u32);
        u64::from((-p).to_bits())
    } else {
        (-(f64::from_bits(a) * f64::from_bits(b))).to_bits()
    };
    p.wrapping_add(rng.gen_range(0..5)).wrapping_sub(2) & fmt_mask(fmt)
}

/// All the bits of an encoding of `fmt`.
fn fmt_mask(fmt: Format) -> u64 {
    u64::MAX >> (63 - (fmt.exp_bits + fmt.frac_bits))
}

fn fmt_sign(fmt: Format) -> u64 {
    1 << (fmt.exp_bits + fmt.frac_bits)
}

fn check_fma<O: Oracle>() {
    let fmt = O::FMT;
    let mut rng = rng_for(&format!("fma{}", fmt.frac_bits));
    let mut fails = Failures::new();
    let sign = fmt_sign(fmt);
    for rm in Rm::ALL {
        for i in 0..cases() {
            let a = operand(&mut rng, fmt);
            let b = partner(&mut rng, fmt, a);
            let c = addend(&mut rng, fmt, a, b);
            let op = [FmaOp::Madd, FmaOp::Msub, FmaOp::Nmsub, FmaOp::Nmadd][i % 4];
            let mut fl = 0;
            let got = fp::fma(fmt, op, a, b, c, rm, &mut fl);
            // SoftFloat's mulAdd computes a*b + c; the sign changes are exact negations.
            let (sa, sc) = match op {
                FmaOp::Madd => (0, 0),
                FmaOp::Msub => (0, sign),
                FmaOp::Nmsub => (sign, 0),
                FmaOp::Nmadd => (sign, sign),
            };
            let want = with_flags(|| O::arith("fma", a ^ sa, b, c ^ sc, sf_rm(rm)));
            fails.check(
                || format!("{op:?} {a:#x} {b:#x} {c:#x} {rm:?}"),
                (got, fl),
                want,
            );
        }
    }
    fails.assert_none("fma");
}

fn check_compare_minmax_class<O: Oracle>() {
    let fmt = O::FMT;
    let mut rng = rng_for(&format!("cmp{}", fmt.frac_bits));
    let mut fails = Failures::new();
    let canonical = fmt.canonical_nan();
    let is_nan = |x: u64| {
        let e = (x >> fmt.frac_bits) & ((1 << fmt.exp_bits) - 1);
        e == (1 << fmt.exp_bits) - 1 && x & ((1 << fmt.frac_bits) - 1) != 0
    };
    for _ in 0..cases() * 5 {
        let a = operand(&mut rng, fmt);
        let b = partner(&mut rng, fmt, a);
        for (op, oracle) in [
            (CmpOp::Eq, O::eq as fn(u64, u64) -> bool),
            (CmpOp::Lt, O::lt),
            (CmpOp::Le, O::le),
        ] {
            let mut fl = 0;
            let got = fp::compare(fmt, op, a, b, &mut fl);
            let want = with_flags(|| u64::from(oracle(a, b)));
            fails.check(|| format!("{op:?} {a:#x} {b:#x}"), (got, fl), want);
        }
        // minimumNumber/maximumNumber from SoftFloat's quiet compare; -0 < +0.
        let nv = if O::is_snan(a) || O::is_snan(b) {
            fp::FLAG_NV
        } else {
            0
        };
        let sign = fmt_sign(fmt);
        let a_lt_b = O::lt_quiet(a, b) || (O::eq(a, b) && a & sign != 0 && b & sign == 0);
        for max in [false, true] {
            let want = match (is_nan(a), is_nan(b)) {
                (true, true) => canonical,
                (true, false) => b,
                (false, true) => a,
                _ if a_lt_b != max => a,
                _ => b,
            };
            let mut fl = 0;
            let got = fp::min_max(fmt, a, b, max, &mut fl);
            fails.check(
                || format!("min/max({max}) {a:#x} {b:#x}"),
                (got, fl),
                (want, nv),
            );
        }
        // fclass from the wrapper's predicates.
        let x = if fmt == BINARY32 {
            Classes::of(F32::from_bits(a as u32))
        } else {
            Classes::of(F64::from_bits(a))
        };
        fails.check(
            || format!("fclass {a:#x}"),
            (fp::classify(fmt, a), 0),
            (x.0, 0),
        );
    }
    fails.assert_none("compare/min/max/class");
}

struct Classes(u64);

impl Classes {
    fn of<T: Float>(x: T) -> Classes {
        let preds = [
            x.is_negative_infinity(),
            x.is_negative_normal(),
            x.is_negative_subnormal(),
            x.is_negative_zero(),
            x.is_positive_zero(),
            x.is_positive_subnormal(),
            x.is_positive_normal(),
            x.is_positive_infinity(),
            x.is_signaling_nan(),
            x.is_nan() && !x.is_signaling_nan(),
        ];
        Classes(
            preds
                .iter()
                .enumerate()
                .fold(0, |m, (i, &p)| m | (u64::from(p) << i)),
        )
    }
}

fn check_conversions<O: Oracle>() {
    let fmt = O::FMT;
    let mut rng = rng_for(&format!("cvt{}", fmt.frac_bits));
    let mut fails = Failures::new();
    for rm in Rm::ALL {
        for i in 0..cases() {
            let ifmt = IntFmt::ALL[i % 4];
            let a = operand(&mut rng, fmt);
            let mut fl = 0;
            let got = fp::to_int(fmt, ifmt, a, rm, &mut fl);
            let want = with_flags(|| O::to_int(ifmt, a, sf_rm(rm)));
            fails.check(|| format!("fcvt.{ifmt:?} {a:#x} {rm:?}"), (got, fl), want);

            // Integers: random, small, and near powers of two and the limits.
            let v = match rng.gen_range(0..4) {
                0 => rng.gen::<u64>(),
                1 => rng.gen_range(0..64u64).wrapping_sub(32),
                _ => (1u64 << rng.gen_range(0..64))
                    .wrapping_add(rng.gen_range(0..8))
                    .wrapping_sub(4),
            };
            let mut fl = 0;
            let got = fp::from_int(fmt, ifmt, v, rm, &mut fl);
            let want = with_flags(|| O::from_int(ifmt, v, sf_rm(rm)));
            fails.check(
                || format!("fcvt.from.{ifmt:?} {v:#x} {rm:?}"),
                (got, fl),
                want,
            );
        }
    }
    fails.assert_none("int conversions");
}

#[test]
fn add_sub_mul_div_sqrt_s() {
    for op in ["add", "sub", "mul", "div", "sqrt"] {
        check_arith::<Single>(op);
    }
}

#[test]
fn add_sub_mul_div_sqrt_d() {
    for op in ["add", "sub", "mul", "div", "sqrt"] {
        check_arith::<Double>(op);
    }
}

#[test]
fn fused_multiply_add() {
    check_fma::<Single>();
    check_fma::<Double>();
}

#[test]
fn compare_min_max_class() {
    check_compare_minmax_class::<Single>();
    check_compare_minmax_class::<Double>();
}

#[test]
fn integer_conversions() {
    check_conversions::<Single>();
    check_conversions::<Double>();
}

#[test]
fn format_conversions() {
    let mut rng = rng_for("fcvt.s.d");
    let mut fails = Failures::new();
    for rm in Rm::ALL {
        for _ in 0..cases() {
            let a = operand(&mut rng, BINARY64);
            let mut fl = 0;
            let got = fp::convert(BINARY64, BINARY32, a, rm, &mut fl);
            let want = with_flags(|| u64::from(F64::from_bits(a).to_f32(sf_rm(rm)).to_bits()));
            fails.check(|| format!("fcvt.s.d {a:#x} {rm:?}"), (got, fl), want);

            let a = operand(&mut rng, BINARY32);
            let mut fl = 0;
            let got = fp::convert(BINARY32, BINARY64, a, rm, &mut fl);
            let want = with_flags(|| F32::from_bits(a as u32).to_f64(sf_rm(rm)).to_bits());
            fails.check(|| format!("fcvt.d.s {a:#x} {rm:?}"), (got, fl), want);
        }
    }
    fails.assert_none("fcvt.s.d/fcvt.d.s");
}
