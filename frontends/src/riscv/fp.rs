//! IEEE-754 binary32/binary64 arithmetic with exact RISC-V fflags (Unprivileged ISA ch. 20
//! "F", ch. 21 "D"), and the helpers the F/D lifters (`lift/rvfd.rs`) call.
//!
//! The arithmetic is a small unpacked-float core: an operand is unpacked to sign, exponent and
//! an integer significand (`value = sig * 2^exp`), the operation is carried out exactly (or with
//! a sticky bit far below the rounding position), and one [`round_pack`] per format rounds the
//! result, detecting tininess *after* rounding as RISC-V does (§20.2 / IEEE 754-2019 §7.5).
//! Every NaN result is the canonical NaN (§20.3). Round-to-nearest-even add/sub/mul/div/sqrt
//! of moderate magnitudes take a host fast path whose only flag, NX, is decided exactly
//! (`host_fast`). Berkeley SoftFloat with its RISC-V specialization is the differential
//! oracle (`frontends/tests/fp_oracle.rs`).

use std::cmp::Ordering;

use emu_jit::env::CpuCommon;
use emu_jit::helper::{state_of, HelperDef};
use emu_jit::ir::HelperEffects;

use super::cpu::RiscvCpu;
use super::trap::Exception;

/// fflags bits (§20.2, Table 20.2).
pub const FLAG_NV: u32 = 0x10;
pub const FLAG_DZ: u32 = 0x08;
pub const FLAG_OF: u32 = 0x04;
pub const FLAG_UF: u32 = 0x02;
pub const FLAG_NX: u32 = 0x01;

/// Rounding modes as encoded in the `rm` field and `frm` (§20.2, Table 20.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rm {
    /// Round to nearest, ties to even.
    Rne = 0,
    /// Round towards zero.
    Rtz = 1,
    /// Round down (towards −∞).
    Rdn = 2,
    /// Round up (towards +∞).
    Rup = 3,
    /// Round to nearest, ties to max magnitude.
    Rmm = 4,
}

impl Rm {
    /// The static rounding mode `bits` names; `None` for the reserved encodings 5 and 6 and for
    /// 7 (DYN), which the caller resolves through `frm`.
    pub fn from_bits(bits: u64) -> Option<Rm> {
        Some(match bits {
            0 => Rm::Rne,
            1 => Rm::Rtz,
            2 => Rm::Rdn,
            3 => Rm::Rup,
            4 => Rm::Rmm,
            _ => return None,
        })
    }

    pub const ALL: [Rm; 5] = [Rm::Rne, Rm::Rtz, Rm::Rdn, Rm::Rup, Rm::Rmm];
}

/// An IEEE-754 binary interchange format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    pub exp_bits: u32,
    pub frac_bits: u32,
}

pub const BINARY32: Format = Format {
    exp_bits: 8,
    frac_bits: 23,
};
pub const BINARY64: Format = Format {
    exp_bits: 11,
    frac_bits: 52,
};

impl Format {
    const fn bias(self) -> i32 {
        (1 << (self.exp_bits - 1)) - 1
    }
    /// Exponent of the smallest normal number.
    const fn emin(self) -> i32 {
        1 - self.bias()
    }
    /// Precision in bits, including the hidden bit.
    const fn prec(self) -> i32 {
        self.frac_bits as i32 + 1
    }
    const fn exp_field_max(self) -> u64 {
        (1 << self.exp_bits) - 1
    }
    const fn frac_mask(self) -> u64 {
        (1 << self.frac_bits) - 1
    }
    const fn sign_bit(self) -> u64 {
        1 << (self.exp_bits + self.frac_bits)
    }
    const fn quiet_bit(self) -> u64 {
        1 << (self.frac_bits - 1)
    }
    /// The canonical NaN (§20.3): positive, quiet, zero payload.
    pub const fn canonical_nan(self) -> u64 {
        (self.exp_field_max() << self.frac_bits) | self.quiet_bit()
    }
    fn sign_of(self, sign: bool) -> u64 {
        if sign {
            self.sign_bit()
        } else {
            0
        }
    }
    fn zero(self, sign: bool) -> u64 {
        self.sign_of(sign)
    }
    fn inf(self, sign: bool) -> u64 {
        self.sign_of(sign) | (self.exp_field_max() << self.frac_bits)
    }
    fn max_finite(self, sign: bool) -> u64 {
        self.sign_of(sign) | ((self.exp_field_max() - 1) << self.frac_bits) | self.frac_mask()
    }
}

/// What an encoding holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Zero,
    /// Normal or subnormal: `sig * 2^exp`, `sig != 0`.
    Finite,
    Inf,
    QNaN,
    SNaN,
}

#[derive(Clone, Copy, Debug)]
struct Unpacked {
    sign: bool,
    kind: Kind,
    exp: i32,
    sig: u128,
}

impl Unpacked {
    fn is_nan(self) -> bool {
        matches!(self.kind, Kind::QNaN | Kind::SNaN)
    }
    fn is_snan(self) -> bool {
        self.kind == Kind::SNaN
    }
}

fn unpack(fmt: Format, bits: u64) -> Unpacked {
    let sign = bits & fmt.sign_bit() != 0;
    let e = (bits >> fmt.frac_bits) & fmt.exp_field_max();
    let f = bits & fmt.frac_mask();
    let (kind, exp, sig) = if e == fmt.exp_field_max() {
        let kind = if f == 0 {
            Kind::Inf
        } else if f & fmt.quiet_bit() != 0 {
            Kind::QNaN
        } else {
            Kind::SNaN
        };
        (kind, 0, 0)
    } else if e == 0 {
        if f == 0 {
            (Kind::Zero, 0, 0)
        } else {
            (
                Kind::Finite,
                fmt.emin() - fmt.frac_bits as i32,
                u128::from(f),
            )
        }
    } else {
        (
            Kind::Finite,
            e as i32 - fmt.bias() - fmt.frac_bits as i32,
            u128::from(f | (1 << fmt.frac_bits)),
        )
    };
    Unpacked {
        sign,
        kind,
        exp,
        sig,
    }
}

/// Index of the most significant set bit of a nonzero `x`.
fn msb(x: u128) -> i32 {
    127 - x.leading_zeros() as i32
}

/// `sig / 2^shift` rounded to an integer per `rm` for a number of sign `sign`; also whether
/// bits were lost. A non-positive shift is exact (the caller keeps the result below 2^128).
fn round_shift(sig: u128, shift: i32, rm: Rm, sign: bool) -> (u128, bool) {
    if shift <= 0 {
        return (sig << (-shift).min(127), false);
    }
    let (q, vs_half, inexact) = if shift > 128 {
        (0, Ordering::Less, sig != 0)
    } else if shift == 128 {
        (0, sig.cmp(&(1 << 127)), sig != 0)
    } else {
        let rem = sig & ((1u128 << shift) - 1);
        (sig >> shift, rem.cmp(&(1u128 << (shift - 1))), rem != 0)
    };
    let up = match rm {
        Rm::Rne => vs_half == Ordering::Greater || (vs_half == Ordering::Equal && q & 1 == 1),
        Rm::Rmm => vs_half != Ordering::Less,
        Rm::Rtz => false,
        Rm::Rdn => inexact && sign,
        Rm::Rup => inexact && !sign,
    };
    (q + u128::from(up), inexact)
}

/// Round `(-1)^sign * sig * 2^exp` to `fmt` and encode it, raising OF/UF/NX. `sig` may carry
/// a sticky bit in its least significant bit as long as that bit lies at least two bits below
/// the rounding position.
pub fn round_pack(fmt: Format, sign: bool, exp: i32, sig: u128, rm: Rm, fl: &mut u32) -> u64 {
    if sig == 0 {
        return fmt.zero(sign);
    }
    let p = fmt.prec();
    let e = exp + msb(sig);
    let mut lsb = e.max(fmt.emin()) - (p - 1);
    let (mut m, inexact) = round_shift(sig, lsb - exp, rm, sign);
    if m >> p != 0 {
        // Rounding carried into a new bit: m == 2^p, shifting it loses nothing.
        m >>= 1;
        lsb += 1;
    }
    let normal = m >> (p - 1) != 0;
    let top = lsb + p - 1;
    if normal && top > fmt.bias() {
        *fl |= FLAG_OF | FLAG_NX;
        let to_inf = match rm {
            Rm::Rne | Rm::Rmm => true,
            Rm::Rtz => false,
            Rm::Rdn => sign,
            Rm::Rup => !sign,
        };
        return if to_inf {
            fmt.inf(sign)
        } else {
            fmt.max_finite(sign)
        };
    }
    if inexact {
        *fl |= FLAG_NX;
        // Tininess after rounding: the result rounded to p bits with an unbounded exponent
        // range lies below 2^emin.
        let tiny = if e < fmt.emin() - 1 {
            true
        } else if e == fmt.emin() - 1 {
            let (m2, _) = round_shift(sig, e - (p - 1) - exp, rm, sign);
            m2 >> p == 0
        } else {
            false
        };
        if tiny {
            *fl |= FLAG_UF;
        }
    }
    let m = m as u64;
    if normal {
        let biased = (top + fmt.bias()) as u64;
        fmt.sign_of(sign) | (biased << fmt.frac_bits) | (m & fmt.frac_mask())
    } else {
        fmt.sign_of(sign) | m
    }
}

/// The canonical NaN, raising NV if either operand is signaling.
fn nan_result(fmt: Format, ops: &[Unpacked], fl: &mut u32) -> u64 {
    if ops.iter().any(|u| u.is_snan()) {
        *fl |= FLAG_NV;
    }
    fmt.canonical_nan()
}

fn invalid(fmt: Format, fl: &mut u32) -> u64 {
    *fl |= FLAG_NV;
    fmt.canonical_nan()
}

/// Exact zero result of an effective subtraction: +0, or −0 when rounding down (IEEE 754 §6.3).
fn cancel_zero(fmt: Format, rm: Rm) -> u64 {
    fmt.zero(rm == Rm::Rdn)
}

/// `x + y` for finite nonzero operands with significands below 2^108: exact except for a
/// sticky bit at bit 0 of a significand whose MSB is at bit 125 or 126 (so far below any
/// rounding position). Returns sign, exponent, significand (0 for an exact zero).
fn add_exact(sa: bool, ea: i32, ma: u128, sb: bool, eb: i32, mb: u128) -> (bool, i32, u128) {
    let (sa, ea, ma) = (sa, ea - (125 - msb(ma)), ma << (125 - msb(ma)));
    let (sb, eb, mb) = (sb, eb - (125 - msb(mb)), mb << (125 - msb(mb)));
    let ((sa, ea, ma), (sb, eb, mb)) = if (eb, mb) > (ea, ma) {
        ((sb, eb, mb), (sa, ea, ma))
    } else {
        ((sa, ea, ma), (sb, eb, mb))
    };
    let d = ea - eb;
    // Shift right with jamming: both significands have at least 18 low zero bits, so shifts
    // by 0 or 1 are exact; larger shifts leave the difference above 2^124.
    let mb = if d >= 127 {
        1
    } else {
        let lost = mb & ((1u128 << d) - 1);
        (mb >> d) | u128::from(lost != 0)
    };
    if sa == sb {
        (sa, ea, ma + mb)
    } else {
        (sa, ea, ma - mb)
    }
}

/// The operations with a host fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HostOp {
    Add,
    Mul,
    Div,
    Sqrt,
}

/// The exponent field lies within `radius` binades of 1.0 (500 for binary64, 60 for binary32):
/// operands and results there are normal, and neither overflow nor tininess is possible, nor
/// underflow in the error terms below.
fn moderate(fmt: Format, bits: u64) -> bool {
    let e = ((bits >> fmt.frac_bits) & fmt.exp_field_max()) as i32;
    let radius = if fmt == BINARY64 { 500 } else { 60 };
    (e - fmt.bias()).abs() <= radius
}

/// Host floating point for the common case: round to nearest even (the host's mode), operands
/// and result of moderate magnitude. The only possible flag is then NX, decided exactly by an
/// error-free transformation (TwoSum for addition; an fma residual, which is exact without
/// underflow, for multiplication, division and square root). binary32 is computed in binary64
/// and rounded once more, which is innocuous for +, ×, ÷ and √ since 53 ≥ 2·24 + 2 (Figueroa,
/// "When is double rounding innocuous?", 1995); exactness is checked in binary64, where the
/// products of two binary32 values are exact. `None`: use the software path.
fn host_fast(fmt: Format, op: HostOp, a: u64, b: u64, rm: Rm, fl: &mut u32) -> Option<u64> {
    if rm != Rm::Rne || !moderate(fmt, a) || (op != HostOp::Sqrt && !moderate(fmt, b)) {
        return None;
    }
    let (r, exact) = if fmt == BINARY64 {
        let (x, y) = (f64::from_bits(a), f64::from_bits(b));
        let (r, exact) = match op {
            HostOp::Add => {
                let (s, err) = two_sum(x, y);
                (s, err == 0.0)
            }
            HostOp::Mul => {
                let p = x * y;
                (p, x.mul_add(y, -p) == 0.0)
            }
            HostOp::Div => {
                let q = x / y;
                (q, (-q).mul_add(y, x) == 0.0)
            }
            HostOp::Sqrt if x < 0.0 => return None,
            HostOp::Sqrt => {
                let r = x.sqrt();
                (r, (-r).mul_add(r, x) == 0.0)
            }
        };
        (r.to_bits(), exact)
    } else {
        let x = f64::from(f32::from_bits(a as u32));
        let y = f64::from(f32::from_bits(b as u32));
        let (r, exact) = match op {
            HostOp::Add => {
                let (w, err) = two_sum(x, y);
                let r = w as f32;
                (r, err == 0.0 && f64::from(r) == w)
            }
            HostOp::Mul => {
                let w = x * y;
                let r = w as f32;
                (r, f64::from(r) == w)
            }
            HostOp::Div => {
                let r = (x / y) as f32;
                (r, f64::from(r) * y == x)
            }
            HostOp::Sqrt if x < 0.0 => return None,
            HostOp::Sqrt => {
                let r = x.sqrt() as f32;
                (r, f64::from(r) * f64::from(r) == x)
            }
        };
        (u64::from(r.to_bits()), exact)
    };
    // Zero (cancellation), huge and tiny results take the software path.
    if !moderate(fmt, r) {
        return None;
    }
    if !exact {
        *fl |= FLAG_NX;
    }
    Some(r)
}

/// `x + y` rounded, and its rounding error, exactly (Knuth's TwoSum; exact without overflow).
fn two_sum(x: f64, y: f64) -> (f64, f64) {
    let s = x + y;
    let yy = s - x;
    (s, (x - (s - yy)) + (y - yy))
}

/// Whether `t[0] + t[1] + ... ` is exactly zero: the terms are accumulated into a
/// nonoverlapping expansion with zero elimination (Shewchuk's Grow-Expansion, 1997), whose
/// sum is zero only if no component remains.
fn sum_is_zero(terms: [f64; 4]) -> bool {
    let mut e = [0f64; 4];
    let mut n = 0;
    for t in terms {
        let mut q = t;
        let mut m = 0;
        for i in 0..n {
            let (sum, err) = two_sum(q, e[i]);
            if err != 0.0 {
                e[m] = err;
                m += 1;
            }
            q = sum;
        }
        if q != 0.0 && m < e.len() {
            e[m] = q;
            m += 1;
        }
        n = m;
    }
    n == 0
}

/// The fused multiply-add counterpart of [`host_fast`], for `a*b + c` (signs already applied).
/// binary64: the host's correctly rounded fma; it is exact iff `p + pe + c - r == 0` with
/// `p + pe` the exact product (pe from an fma, exact as long as the product's last bit is
/// representable: hence the narrower range for `a` and `b`). binary32: the product is exact in
/// binary64 and the sum's error is known from TwoSum; the binary64 sum rounded to binary32 is
/// the correctly rounded result unless it is inexact *and* lies on a binary32 midpoint.
fn host_fast_fma(fmt: Format, a: u64, b: u64, c: u64, rm: Rm, fl: &mut u32) -> Option<u64> {
    let narrow = |bits: u64| {
        let e = ((bits >> fmt.frac_bits) & fmt.exp_field_max()) as i32;
        (e - fmt.bias()).abs() <= if fmt == BINARY64 { 250 } else { 60 }
    };
    if rm != Rm::Rne || !narrow(a) || !narrow(b) || !moderate(fmt, c) {
        return None;
    }
    let (r, exact) = if fmt == BINARY64 {
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        let r = x.mul_add(y, z);
        let p = x * y;
        let pe = x.mul_add(y, -p);
        (r.to_bits(), sum_is_zero([p, pe, z, -r]))
    } else {
        let x = f64::from(f32::from_bits(a as u32));
        let y = f64::from(f32::from_bits(b as u32));
        let z = f64::from(f32::from_bits(c as u32));
        let (sum, err) = two_sum(x * y, z);
        // The 29 bits below binary32 precision are exactly one half: a midpoint.
        const BELOW: u64 = (1 << 29) - 1;
        if err != 0.0 && sum.to_bits() & BELOW == 1 << 28 {
            return None;
        }
        let r = sum as f32;
        (u64::from(r.to_bits()), err == 0.0 && f64::from(r) == sum)
    };
    if !moderate(fmt, r) {
        return None;
    }
    if !exact {
        *fl |= FLAG_NX;
    }
    Some(r)
}

/// fadd (§20.6).
pub fn add(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    host_fast(fmt, HostOp::Add, a, b, rm, fl).unwrap_or_else(|| soft_add(fmt, a, b, rm, fl))
}

fn soft_add(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (x, y) = (unpack(fmt, a), unpack(fmt, b));
    if x.is_nan() || y.is_nan() {
        return nan_result(fmt, &[x, y], fl);
    }
    match (x.kind, y.kind) {
        (Kind::Inf, Kind::Inf) if x.sign != y.sign => invalid(fmt, fl),
        (Kind::Inf, _) => a,
        (_, Kind::Inf) => b,
        (Kind::Zero, Kind::Zero) if x.sign != y.sign => cancel_zero(fmt, rm),
        (Kind::Zero, _) => b,
        (_, Kind::Zero) => a,
        _ => {
            let (s, e, m) = add_exact(x.sign, x.exp, x.sig, y.sign, y.exp, y.sig);
            if m == 0 {
                cancel_zero(fmt, rm)
            } else {
                round_pack(fmt, s, e, m, rm, fl)
            }
        }
    }
}

/// fsub (§20.6).
pub fn sub(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    add(fmt, a, b ^ fmt.sign_bit(), rm, fl)
}

/// fmul (§20.6).
pub fn mul(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    host_fast(fmt, HostOp::Mul, a, b, rm, fl).unwrap_or_else(|| soft_mul(fmt, a, b, rm, fl))
}

fn soft_mul(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (x, y) = (unpack(fmt, a), unpack(fmt, b));
    if x.is_nan() || y.is_nan() {
        return nan_result(fmt, &[x, y], fl);
    }
    let sign = x.sign ^ y.sign;
    match (x.kind, y.kind) {
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => invalid(fmt, fl),
        (Kind::Inf, _) | (_, Kind::Inf) => fmt.inf(sign),
        (Kind::Zero, _) | (_, Kind::Zero) => fmt.zero(sign),
        _ => round_pack(fmt, sign, x.exp + y.exp, x.sig * y.sig, rm, fl),
    }
}

/// fdiv (§20.6).
pub fn div(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    host_fast(fmt, HostOp::Div, a, b, rm, fl).unwrap_or_else(|| soft_div(fmt, a, b, rm, fl))
}

fn soft_div(fmt: Format, a: u64, b: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (x, y) = (unpack(fmt, a), unpack(fmt, b));
    if x.is_nan() || y.is_nan() {
        return nan_result(fmt, &[x, y], fl);
    }
    let sign = x.sign ^ y.sign;
    match (x.kind, y.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => invalid(fmt, fl),
        (Kind::Inf, _) => fmt.inf(sign),
        (_, Kind::Inf) | (Kind::Zero, _) => fmt.zero(sign),
        (_, Kind::Zero) => {
            *fl |= FLAG_DZ;
            fmt.inf(sign)
        }
        _ => {
            // Both significands normalized to [2^63, 2^64): the quotient has 64 or 65 bits,
            // and a nonzero remainder becomes a sticky bit.
            let (sa, sb) = (63 - msb(x.sig), 63 - msb(y.sig));
            let (ma, mb) = (x.sig << sa, y.sig << sb);
            let num = ma << 64;
            let q = num / mb;
            let q = q | u128::from(num % mb != 0);
            round_pack(fmt, sign, (x.exp - sa) - (y.exp - sb) - 64, q, rm, fl)
        }
    }
}

/// Integer square root (floor) of a u128, bit by bit.
fn isqrt(n: u128) -> u128 {
    let mut x = n;
    let mut res: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > n {
        bit >>= 2;
    }
    while bit != 0 {
        if x >= res + bit {
            x -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    res
}

/// fsqrt (§20.6).
pub fn sqrt(fmt: Format, a: u64, rm: Rm, fl: &mut u32) -> u64 {
    host_fast(fmt, HostOp::Sqrt, a, 0, rm, fl).unwrap_or_else(|| soft_sqrt(fmt, a, rm, fl))
}

fn soft_sqrt(fmt: Format, a: u64, rm: Rm, fl: &mut u32) -> u64 {
    let x = unpack(fmt, a);
    if x.is_nan() {
        return nan_result(fmt, &[x], fl);
    }
    match x.kind {
        Kind::Zero => a,
        _ if x.sign => invalid(fmt, fl),
        Kind::Inf => a,
        _ => {
            let (mut e, mut m) = (x.exp, x.sig);
            if e & 1 != 0 {
                m <<= 1;
                e -= 1;
            }
            // Scale to about 120 bits (an even shift keeps the exponent even) so the root has
            // about 60 bits; a nonzero remainder becomes a sticky bit.
            let s = (120 - msb(m)) & !1;
            m <<= s;
            e -= s;
            let r = isqrt(m);
            let r = r | u128::from(r * r != m);
            round_pack(fmt, false, e / 2, r, rm, fl)
        }
    }
}

/// Which fused multiply-add (§20.6): the signs negated before the single rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FmaOp {
    /// `a*b + c`
    Madd,
    /// `a*b - c`
    Msub,
    /// `-(a*b) + c`
    Nmsub,
    /// `-(a*b) - c`
    Nmadd,
}

/// fmadd/fmsub/fnmsub/fnmadd: `±(a*b) ± c` with a single rounding (§20.6).
pub fn fma(fmt: Format, op: FmaOp, a: u64, b: u64, c: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (neg_prod, neg_c) = match op {
        FmaOp::Madd => (false, false),
        FmaOp::Msub => (false, true),
        FmaOp::Nmsub => (true, false),
        FmaOp::Nmadd => (true, true),
    };
    let a = if neg_prod { a ^ fmt.sign_bit() } else { a };
    let c = if neg_c { c ^ fmt.sign_bit() } else { c };
    host_fast_fma(fmt, a, b, c, rm, fl).unwrap_or_else(|| soft_fma(fmt, a, b, c, rm, fl))
}

/// `a*b + c` with one rounding, in software.
fn soft_fma(fmt: Format, a: u64, b: u64, c: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (x, y, z) = (unpack(fmt, a), unpack(fmt, b), unpack(fmt, c));
    let inf_times_zero = matches!(
        (x.kind, y.kind),
        (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf)
    );
    // The spec (§20.6) makes inf*0 + qNaN invalid too, as SoftFloat does.
    if inf_times_zero {
        return invalid(fmt, fl);
    }
    if x.is_nan() || y.is_nan() || z.is_nan() {
        return nan_result(fmt, &[x, y, z], fl);
    }
    let ps = x.sign ^ y.sign;
    if x.kind == Kind::Inf || y.kind == Kind::Inf {
        if z.kind == Kind::Inf && z.sign != ps {
            return invalid(fmt, fl);
        }
        return fmt.inf(ps);
    }
    if z.kind == Kind::Inf {
        return c;
    }
    if x.kind == Kind::Zero || y.kind == Kind::Zero {
        return match z.kind {
            Kind::Zero if z.sign != ps => cancel_zero(fmt, rm),
            Kind::Zero => fmt.zero(ps),
            _ => c,
        };
    }
    let (pe, pm) = (x.exp + y.exp, x.sig * y.sig);
    if z.kind == Kind::Zero {
        return round_pack(fmt, ps, pe, pm, rm, fl);
    }
    let (s, e, m) = add_exact(ps, pe, pm, z.sign, z.exp, z.sig);
    if m == 0 {
        cancel_zero(fmt, rm)
    } else {
        round_pack(fmt, s, e, m, rm, fl)
    }
}

/// An ordering key where −0 < +0 and larger magnitudes of negative numbers sort lower
/// (for non-NaN encodings).
fn order_key(fmt: Format, bits: u64) -> i128 {
    let mag = i128::from(bits & (fmt.sign_bit() - 1));
    if bits & fmt.sign_bit() != 0 {
        -mag - 1
    } else {
        mag
    }
}

/// fmin/fmax (§20.7, IEEE 754-2019 minimumNumber/maximumNumber since F 2.2): −0 < +0, NV only
/// for a signaling NaN, the canonical NaN only if both operands are NaN.
pub fn min_max(fmt: Format, a: u64, b: u64, max: bool, fl: &mut u32) -> u64 {
    let (x, y) = (unpack(fmt, a), unpack(fmt, b));
    if x.is_snan() || y.is_snan() {
        *fl |= FLAG_NV;
    }
    match (x.is_nan(), y.is_nan()) {
        (true, true) => fmt.canonical_nan(),
        (true, false) => b,
        (false, true) => a,
        (false, false) => {
            let a_lt_b = order_key(fmt, a) < order_key(fmt, b);
            if a_lt_b != max {
                a
            } else {
                b
            }
        }
    }
}

/// Comparisons (§20.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// feq: quiet, NV only for a signaling NaN.
    Eq,
    /// flt: signaling, NV for any NaN.
    Lt,
    /// fle: signaling, NV for any NaN.
    Le,
}

/// feq/flt/fle: 1 if the relation holds, else 0 (always 0 with a NaN operand).
pub fn compare(fmt: Format, op: CmpOp, a: u64, b: u64, fl: &mut u32) -> u64 {
    let (x, y) = (unpack(fmt, a), unpack(fmt, b));
    if x.is_nan() || y.is_nan() {
        if op != CmpOp::Eq || x.is_snan() || y.is_snan() {
            *fl |= FLAG_NV;
        }
        return 0;
    }
    // ±0 compare equal.
    let norm = |u: Unpacked, bits: u64| if u.kind == Kind::Zero { 0 } else { bits };
    let (ka, kb) = (order_key(fmt, norm(x, a)), order_key(fmt, norm(y, b)));
    u64::from(match op {
        CmpOp::Eq => ka == kb,
        CmpOp::Lt => ka < kb,
        CmpOp::Le => ka <= kb,
    })
}

/// fclass (§20.9, Table 20.5): a one-hot mask.
pub fn classify(fmt: Format, a: u64) -> u64 {
    let x = unpack(fmt, a);
    let subnormal = (a >> fmt.frac_bits) & fmt.exp_field_max() == 0;
    let bit = match (x.kind, x.sign) {
        (Kind::Inf, true) => 0,
        (Kind::Finite, true) if !subnormal => 1,
        (Kind::Finite, true) => 2,
        (Kind::Zero, true) => 3,
        (Kind::Zero, false) => 4,
        (Kind::Finite, false) if subnormal => 5,
        (Kind::Finite, false) => 6,
        (Kind::Inf, false) => 7,
        (Kind::SNaN, _) => 8,
        (Kind::QNaN, _) => 9,
    };
    1 << bit
}

/// Sign injection (§20.7): fsgnj, fsgnjn, fsgnjx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgnjOp {
    Sgnj,
    Sgnjn,
    Sgnjx,
}

pub fn sign_inject(fmt: Format, op: SgnjOp, a: u64, b: u64) -> u64 {
    let sb = fmt.sign_bit();
    let sign = match op {
        SgnjOp::Sgnj => b & sb,
        SgnjOp::Sgnjn => !b & sb,
        SgnjOp::Sgnjx => (a ^ b) & sb,
    };
    (a & !sb) | sign
}

/// Integer formats of fcvt (§20.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntFmt {
    W,
    Wu,
    L,
    Lu,
}

impl IntFmt {
    fn range(self) -> (i128, i128) {
        match self {
            IntFmt::W => (i128::from(i32::MIN), i128::from(i32::MAX)),
            IntFmt::Wu => (0, i128::from(u32::MAX)),
            IntFmt::L => (i128::from(i64::MIN), i128::from(i64::MAX)),
            IntFmt::Lu => (0, i128::from(u64::MAX)),
        }
    }

    /// The value as an x register holds it: 32-bit results sign-extended (§20.7, RV64).
    fn to_xreg(self, v: i128) -> u64 {
        match self {
            IntFmt::W | IntFmt::Wu => i64::from(v as u32 as i32) as u64,
            IntFmt::L | IntFmt::Lu => v as u64,
        }
    }

    pub const ALL: [IntFmt; 4] = [IntFmt::W, IntFmt::Wu, IntFmt::L, IntFmt::Lu];
}

/// fcvt.{w,wu,l,lu}.{s,d}: round to an integer; NaN, infinities and out-of-range values raise
/// NV (only) and saturate as Table 20.4 says (NaN → the largest positive value).
pub fn to_int(fmt: Format, ifmt: IntFmt, a: u64, rm: Rm, fl: &mut u32) -> u64 {
    let x = unpack(fmt, a);
    let (min, max) = ifmt.range();
    let saturate = |fl: &mut u32, neg: bool| {
        *fl |= FLAG_NV;
        ifmt.to_xreg(if neg { min } else { max })
    };
    let (mag, inexact) = match x.kind {
        Kind::QNaN | Kind::SNaN => return saturate(fl, false),
        Kind::Inf => return saturate(fl, x.sign),
        Kind::Zero => return 0,
        Kind::Finite if x.exp > 70 => return saturate(fl, x.sign),
        Kind::Finite => round_shift(x.sig, -x.exp, rm, x.sign),
    };
    // mag < 2^124 here, so the negation cannot overflow.
    let v = if x.sign { -(mag as i128) } else { mag as i128 };
    if v < min || v > max {
        return saturate(fl, x.sign);
    }
    if inexact {
        *fl |= FLAG_NX;
    }
    ifmt.to_xreg(v)
}

/// fcvt.{s,d}.{w,wu,l,lu}: the integer in the low bits of `v` (per `ifmt`) to `fmt`.
pub fn from_int(fmt: Format, ifmt: IntFmt, v: u64, rm: Rm, fl: &mut u32) -> u64 {
    let (sign, mag) = match ifmt {
        IntFmt::W => ((v as i32) < 0, u64::from((v as i32).unsigned_abs())),
        IntFmt::Wu => (false, u64::from(v as u32)),
        IntFmt::L => ((v as i64) < 0, (v as i64).unsigned_abs()),
        IntFmt::Lu => (false, v),
    };
    round_pack(fmt, sign, 0, u128::from(mag), rm, fl)
}

/// fcvt.s.d / fcvt.d.s (§21.5): format conversion; NaNs become the canonical NaN (NV if
/// signaling).
pub fn convert(from: Format, to: Format, a: u64, rm: Rm, fl: &mut u32) -> u64 {
    let x = unpack(from, a);
    match x.kind {
        Kind::QNaN | Kind::SNaN => nan_result(to, &[x], fl),
        Kind::Inf => to.inf(x.sign),
        Kind::Zero => to.zero(x.sign),
        Kind::Finite => round_pack(to, x.sign, x.exp, x.sig, rm, fl),
    }
}

/// NaN-boxing (§21.2): an f32 in a 64-bit register must have all-ones upper bits, otherwise it
/// reads as the canonical NaN.
pub fn unbox_s(v: u64) -> u64 {
    if v >> 32 == 0xffff_ffff {
        v & 0xffff_ffff
    } else {
        BINARY32.canonical_nan()
    }
}

/// An f32 result as a register holds it (§21.2).
pub fn box_s(v: u64) -> u64 {
    0xffff_ffff_0000_0000 | (v & 0xffff_ffff)
}

// ---------------------------------------------------------------------------------------------
// Helpers (the helper ABI of `emu_jit::helper`). S helpers take NaN-boxed register values and
// return boxed results; D helpers take and return raw binary64 patterns. Integer results are
// returned as the x register receives them. `insn` is the raw 32-bit instruction: its rm field
// (bits 14:12) selects the rounding mode, and it is the trap value of the illegal-instruction
// exception for a dynamic rm with a reserved `frm` (§20.2).
// ---------------------------------------------------------------------------------------------

fn cpu<'a>(env: *mut CpuCommon) -> &'a mut RiscvCpu {
    state_of::<RiscvCpu>(env)
}

/// The rounding mode of `insn` (DYN reads `frm`); records an illegal-instruction exception and
/// returns `None` if it is reserved.
fn rounding_mode(cpu: &mut RiscvCpu, insn: u64) -> Option<Rm> {
    let rm = (insn >> 12) & 7;
    let rm = if rm == 7 { cpu.frm } else { rm };
    let r = Rm::from_bits(rm);
    if r.is_none() {
        cpu.raise(Exception::IllegalInstruction(insn & 0xffff_ffff));
    }
    r
}

fn fmt_of(double: bool) -> Format {
    if double {
        BINARY64
    } else {
        BINARY32
    }
}

fn get(double: bool, v: u64) -> u64 {
    if double {
        v
    } else {
        unbox_s(v)
    }
}

fn put(double: bool, v: u64) -> u64 {
    if double {
        v
    } else {
        box_s(v)
    }
}

fn accrue(cpu: &mut RiscvCpu, fl: u32) {
    cpu.fflags |= u64::from(fl);
}

const OP_ADD: u8 = 0;
const OP_SUB: u8 = 1;
const OP_MUL: u8 = 2;
const OP_DIV: u8 = 3;

extern "C" fn h_arith<const OP: u8, const D: bool>(
    env: *mut CpuCommon,
    a: u64,
    b: u64,
    insn: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let (f, a, b) = (fmt_of(D), get(D, a), get(D, b));
    let mut fl = 0;
    let r = match OP {
        OP_ADD => add(f, a, b, rm, &mut fl),
        OP_SUB => sub(f, a, b, rm, &mut fl),
        OP_MUL => mul(f, a, b, rm, &mut fl),
        _ => div(f, a, b, rm, &mut fl),
    };
    accrue(cpu, fl);
    put(D, r)
}

extern "C" fn h_sqrt<const D: bool>(env: *mut CpuCommon, a: u64, insn: u64, _: u64, _: u64) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let mut fl = 0;
    let r = sqrt(fmt_of(D), get(D, a), rm, &mut fl);
    accrue(cpu, fl);
    put(D, r)
}

const FMA_OPS: [FmaOp; 4] = [FmaOp::Madd, FmaOp::Msub, FmaOp::Nmsub, FmaOp::Nmadd];

extern "C" fn h_fma<const OP: usize, const D: bool>(
    env: *mut CpuCommon,
    a: u64,
    b: u64,
    c: u64,
    insn: u64,
) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let op = FMA_OPS[OP % 4];
    let mut fl = 0;
    let r = fma(fmt_of(D), op, get(D, a), get(D, b), get(D, c), rm, &mut fl);
    accrue(cpu, fl);
    put(D, r)
}

const SGNJ_OPS: [SgnjOp; 3] = [SgnjOp::Sgnj, SgnjOp::Sgnjn, SgnjOp::Sgnjx];

extern "C" fn h_sgnj<const OP: usize, const D: bool>(
    _env: *mut CpuCommon,
    a: u64,
    b: u64,
    _: u64,
    _: u64,
) -> u64 {
    put(
        D,
        sign_inject(fmt_of(D), SGNJ_OPS[OP % 3], get(D, a), get(D, b)),
    )
}

extern "C" fn h_minmax<const MAX: bool, const D: bool>(
    env: *mut CpuCommon,
    a: u64,
    b: u64,
    _: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let mut fl = 0;
    let r = min_max(fmt_of(D), get(D, a), get(D, b), MAX, &mut fl);
    accrue(cpu, fl);
    put(D, r)
}

const CMP_OPS: [CmpOp; 3] = [CmpOp::Eq, CmpOp::Lt, CmpOp::Le];

extern "C" fn h_cmp<const OP: usize, const D: bool>(
    env: *mut CpuCommon,
    a: u64,
    b: u64,
    _: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let mut fl = 0;
    let r = compare(fmt_of(D), CMP_OPS[OP % 3], get(D, a), get(D, b), &mut fl);
    accrue(cpu, fl);
    r
}

extern "C" fn h_class<const D: bool>(_env: *mut CpuCommon, a: u64, _: u64, _: u64, _: u64) -> u64 {
    classify(fmt_of(D), get(D, a))
}

extern "C" fn h_to_int<const I: usize, const D: bool>(
    env: *mut CpuCommon,
    a: u64,
    insn: u64,
    _: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let mut fl = 0;
    let r = to_int(fmt_of(D), IntFmt::ALL[I % 4], get(D, a), rm, &mut fl);
    accrue(cpu, fl);
    r
}

extern "C" fn h_from_int<const I: usize, const D: bool>(
    env: *mut CpuCommon,
    v: u64,
    insn: u64,
    _: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let mut fl = 0;
    let r = from_int(fmt_of(D), IntFmt::ALL[I % 4], v, rm, &mut fl);
    accrue(cpu, fl);
    put(D, r)
}

/// fcvt.s.d (`TO_D` false) and fcvt.d.s (`TO_D` true).
extern "C" fn h_cvt_fmt<const TO_D: bool>(
    env: *mut CpuCommon,
    a: u64,
    insn: u64,
    _: u64,
    _: u64,
) -> u64 {
    let cpu = cpu(env);
    let Some(rm) = rounding_mode(cpu, insn) else {
        return 0;
    };
    let mut fl = 0;
    let r = convert(fmt_of(!TO_D), fmt_of(TO_D), get(!TO_D, a), rm, &mut fl);
    accrue(cpu, fl);
    put(TO_D, r)
}

/// Helpers with a rounding mode may raise illegal instruction (DYN with a reserved `frm`);
/// they touch only `fflags`/`frm`, which no IR op caches, so they neither read nor write
/// guest-register state.
const RAISES: HelperEffects = HelperEffects {
    reads_state: false,
    writes_state: false,
    may_raise: true,
};
const PURE: HelperEffects = HelperEffects {
    reads_state: false,
    writes_state: false,
    may_raise: false,
};

macro_rules! helper {
    ($(#[$m:meta])* $id:ident, $name:literal, $func:expr, $args:literal, $eff:expr) => {
        $(#[$m])*
        pub static $id: HelperDef = HelperDef {
            name: $name,
            func: $func,
            args: $args,
            ret: true,
            effects: $eff,
        };
    };
}

// Arithmetic (a, b, insn).
helper!(
    HELPER_FADD_S,
    "rv.fadd.s",
    h_arith::<OP_ADD, false>,
    3,
    RAISES
);
helper!(
    HELPER_FSUB_S,
    "rv.fsub.s",
    h_arith::<OP_SUB, false>,
    3,
    RAISES
);
helper!(
    HELPER_FMUL_S,
    "rv.fmul.s",
    h_arith::<OP_MUL, false>,
    3,
    RAISES
);
helper!(
    HELPER_FDIV_S,
    "rv.fdiv.s",
    h_arith::<OP_DIV, false>,
    3,
    RAISES
);
helper!(
    HELPER_FADD_D,
    "rv.fadd.d",
    h_arith::<OP_ADD, true>,
    3,
    RAISES
);
helper!(
    HELPER_FSUB_D,
    "rv.fsub.d",
    h_arith::<OP_SUB, true>,
    3,
    RAISES
);
helper!(
    HELPER_FMUL_D,
    "rv.fmul.d",
    h_arith::<OP_MUL, true>,
    3,
    RAISES
);
helper!(
    HELPER_FDIV_D,
    "rv.fdiv.d",
    h_arith::<OP_DIV, true>,
    3,
    RAISES
);
// (a, insn).
helper!(HELPER_FSQRT_S, "rv.fsqrt.s", h_sqrt::<false>, 2, RAISES);
helper!(HELPER_FSQRT_D, "rv.fsqrt.d", h_sqrt::<true>, 2, RAISES);
// (a, b, c, insn).
helper!(HELPER_FMADD_S, "rv.fmadd.s", h_fma::<0, false>, 4, RAISES);
helper!(HELPER_FMSUB_S, "rv.fmsub.s", h_fma::<1, false>, 4, RAISES);
helper!(HELPER_FNMSUB_S, "rv.fnmsub.s", h_fma::<2, false>, 4, RAISES);
helper!(HELPER_FNMADD_S, "rv.fnmadd.s", h_fma::<3, false>, 4, RAISES);
helper!(HELPER_FMADD_D, "rv.fmadd.d", h_fma::<0, true>, 4, RAISES);
helper!(HELPER_FMSUB_D, "rv.fmsub.d", h_fma::<1, true>, 4, RAISES);
helper!(HELPER_FNMSUB_D, "rv.fnmsub.d", h_fma::<2, true>, 4, RAISES);
helper!(HELPER_FNMADD_D, "rv.fnmadd.d", h_fma::<3, true>, 4, RAISES);
// (a, b): no rounding, no trap.
helper!(HELPER_FSGNJ_S, "rv.fsgnj.s", h_sgnj::<0, false>, 2, PURE);
helper!(HELPER_FSGNJN_S, "rv.fsgnjn.s", h_sgnj::<1, false>, 2, PURE);
helper!(HELPER_FSGNJX_S, "rv.fsgnjx.s", h_sgnj::<2, false>, 2, PURE);
helper!(HELPER_FSGNJ_D, "rv.fsgnj.d", h_sgnj::<0, true>, 2, PURE);
helper!(HELPER_FSGNJN_D, "rv.fsgnjn.d", h_sgnj::<1, true>, 2, PURE);
helper!(HELPER_FSGNJX_D, "rv.fsgnjx.d", h_sgnj::<2, true>, 2, PURE);
helper!(
    HELPER_FMIN_S,
    "rv.fmin.s",
    h_minmax::<false, false>,
    2,
    PURE
);
helper!(HELPER_FMAX_S, "rv.fmax.s", h_minmax::<true, false>, 2, PURE);
helper!(HELPER_FMIN_D, "rv.fmin.d", h_minmax::<false, true>, 2, PURE);
helper!(HELPER_FMAX_D, "rv.fmax.d", h_minmax::<true, true>, 2, PURE);
helper!(HELPER_FEQ_S, "rv.feq.s", h_cmp::<0, false>, 2, PURE);
helper!(HELPER_FLT_S, "rv.flt.s", h_cmp::<1, false>, 2, PURE);
helper!(HELPER_FLE_S, "rv.fle.s", h_cmp::<2, false>, 2, PURE);
helper!(HELPER_FEQ_D, "rv.feq.d", h_cmp::<0, true>, 2, PURE);
helper!(HELPER_FLT_D, "rv.flt.d", h_cmp::<1, true>, 2, PURE);
helper!(HELPER_FLE_D, "rv.fle.d", h_cmp::<2, true>, 2, PURE);
// (a).
helper!(HELPER_FCLASS_S, "rv.fclass.s", h_class::<false>, 1, PURE);
helper!(HELPER_FCLASS_D, "rv.fclass.d", h_class::<true>, 1, PURE);
// (a, insn).
helper!(
    HELPER_FCVT_W_S,
    "rv.fcvt.w.s",
    h_to_int::<0, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_WU_S,
    "rv.fcvt.wu.s",
    h_to_int::<1, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_L_S,
    "rv.fcvt.l.s",
    h_to_int::<2, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_LU_S,
    "rv.fcvt.lu.s",
    h_to_int::<3, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_W_D,
    "rv.fcvt.w.d",
    h_to_int::<0, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_WU_D,
    "rv.fcvt.wu.d",
    h_to_int::<1, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_L_D,
    "rv.fcvt.l.d",
    h_to_int::<2, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_LU_D,
    "rv.fcvt.lu.d",
    h_to_int::<3, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_S_W,
    "rv.fcvt.s.w",
    h_from_int::<0, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_S_WU,
    "rv.fcvt.s.wu",
    h_from_int::<1, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_S_L,
    "rv.fcvt.s.l",
    h_from_int::<2, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_S_LU,
    "rv.fcvt.s.lu",
    h_from_int::<3, false>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_D_W,
    "rv.fcvt.d.w",
    h_from_int::<0, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_D_WU,
    "rv.fcvt.d.wu",
    h_from_int::<1, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_D_L,
    "rv.fcvt.d.l",
    h_from_int::<2, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_D_LU,
    "rv.fcvt.d.lu",
    h_from_int::<3, true>,
    2,
    RAISES
);
helper!(
    HELPER_FCVT_S_D,
    "rv.fcvt.s.d",
    h_cvt_fmt::<false>,
    2,
    RAISES
);
helper!(HELPER_FCVT_D_S, "rv.fcvt.d.s", h_cvt_fmt::<true>, 2, RAISES);

/// Every helper of this module, for the guest's helper table (IR text parsing).
pub static HELPERS: &[&HelperDef] = &[
    &HELPER_FADD_S,
    &HELPER_FSUB_S,
    &HELPER_FMUL_S,
    &HELPER_FDIV_S,
    &HELPER_FADD_D,
    &HELPER_FSUB_D,
    &HELPER_FMUL_D,
    &HELPER_FDIV_D,
    &HELPER_FSQRT_S,
    &HELPER_FSQRT_D,
    &HELPER_FMADD_S,
    &HELPER_FMSUB_S,
    &HELPER_FNMSUB_S,
    &HELPER_FNMADD_S,
    &HELPER_FMADD_D,
    &HELPER_FMSUB_D,
    &HELPER_FNMSUB_D,
    &HELPER_FNMADD_D,
    &HELPER_FSGNJ_S,
    &HELPER_FSGNJN_S,
    &HELPER_FSGNJX_S,
    &HELPER_FSGNJ_D,
    &HELPER_FSGNJN_D,
    &HELPER_FSGNJX_D,
    &HELPER_FMIN_S,
    &HELPER_FMAX_S,
    &HELPER_FMIN_D,
    &HELPER_FMAX_D,
    &HELPER_FEQ_S,
    &HELPER_FLT_S,
    &HELPER_FLE_S,
    &HELPER_FEQ_D,
    &HELPER_FLT_D,
    &HELPER_FLE_D,
    &HELPER_FCLASS_S,
    &HELPER_FCLASS_D,
    &HELPER_FCVT_W_S,
    &HELPER_FCVT_WU_S,
    &HELPER_FCVT_L_S,
    &HELPER_FCVT_LU_S,
    &HELPER_FCVT_W_D,
    &HELPER_FCVT_WU_D,
    &HELPER_FCVT_L_D,
    &HELPER_FCVT_LU_D,
    &HELPER_FCVT_S_W,
    &HELPER_FCVT_S_WU,
    &HELPER_FCVT_S_L,
    &HELPER_FCVT_S_LU,
    &HELPER_FCVT_D_W,
    &HELPER_FCVT_D_WU,
    &HELPER_FCVT_D_L,
    &HELPER_FCVT_D_LU,
    &HELPER_FCVT_S_D,
    &HELPER_FCVT_D_S,
];

#[cfg(test)]
mod tests {
    use super::*;

    const S_QNAN: u64 = 0x7fc0_0000;
    const S_SNAN: u64 = 0x7f80_0001;
    const S_ONE: u64 = 0x3f80_0000;
    const S_NEG_ZERO: u64 = 0x8000_0000;
    const D_ONE: u64 = 0x3ff0_0000_0000_0000;

    fn s(x: f32) -> u64 {
        u64::from(x.to_bits())
    }

    /// fcvt saturation (Unprivileged ISA §20.7, Table 20.4).
    #[test]
    fn fcvt_saturation_table() {
        let inf = s(f32::INFINITY);
        let ninf = s(f32::NEG_INFINITY);
        let big = s(3e10);
        let cases: [(IntFmt, u64, u64, u64); 16] = [
            // (format, input, expected, with NaN / +inf / -inf / out-of-range)
            (IntFmt::W, S_QNAN, 0x7fff_ffff, 0),
            (IntFmt::W, inf, 0x7fff_ffff, 0),
            (IntFmt::W, ninf, 0xffff_ffff_8000_0000, 0),
            (IntFmt::W, big, 0x7fff_ffff, 0),
            (IntFmt::Wu, S_QNAN, u64::MAX, 0),
            (IntFmt::Wu, inf, u64::MAX, 0),
            (IntFmt::Wu, ninf, 0, 0),
            (IntFmt::Wu, s(-1.0), 0, 0),
            (IntFmt::L, S_QNAN, i64::MAX as u64, 0),
            (IntFmt::L, inf, i64::MAX as u64, 0),
            (IntFmt::L, ninf, i64::MIN as u64, 0),
            (IntFmt::L, s(-1e19), i64::MIN as u64, 0),
            (IntFmt::Lu, S_QNAN, u64::MAX, 0),
            (IntFmt::Lu, inf, u64::MAX, 0),
            (IntFmt::Lu, ninf, 0, 0),
            (IntFmt::Lu, s(2e19), u64::MAX, 0),
        ];
        for (ifmt, a, want, _) in cases {
            let mut fl = 0;
            assert_eq!(
                to_int(BINARY32, ifmt, a, Rm::Rne, &mut fl),
                want,
                "{ifmt:?} {a:#x}"
            );
            assert_eq!(fl, FLAG_NV, "{ifmt:?} {a:#x}");
        }
        // In range: exact, inexact (NX only), and a negative value rounding to 0 for wu.
        let mut fl = 0;
        assert_eq!(
            to_int(BINARY32, IntFmt::W, s(-7.0), Rm::Rne, &mut fl),
            -7i64 as u64
        );
        assert_eq!(fl, 0);
        assert_eq!(to_int(BINARY32, IntFmt::W, s(2.5), Rm::Rne, &mut fl), 2);
        assert_eq!(to_int(BINARY32, IntFmt::W, s(2.5), Rm::Rmm, &mut fl), 3);
        assert_eq!(
            to_int(BINARY32, IntFmt::W, s(-2.5), Rm::Rdn, &mut fl),
            -3i64 as u64
        );
        assert_eq!(fl, FLAG_NX);
        let mut fl = 0;
        assert_eq!(to_int(BINARY32, IntFmt::Wu, s(-0.25), Rm::Rtz, &mut fl), 0);
        assert_eq!(fl, FLAG_NX);
        // fcvt.wu results are sign-extended from 32 bits on RV64.
        let mut fl = 0;
        assert_eq!(
            to_int(BINARY64, IntFmt::Wu, 3e9f64.to_bits(), Rm::Rne, &mut fl),
            0xffff_ffff_b2d0_5e00
        );
        assert_eq!(fl, 0);
    }

    /// fmin/fmax (§20.7, F 2.2): −0 < +0, a quiet NaN is ignored silently, a signaling NaN
    /// raises NV, two NaNs give the canonical NaN.
    #[test]
    fn fmin_fmax_zeros_and_nans() {
        let mut fl = 0;
        assert_eq!(min_max(BINARY32, 0, S_NEG_ZERO, false, &mut fl), S_NEG_ZERO);
        assert_eq!(min_max(BINARY32, S_NEG_ZERO, 0, true, &mut fl), 0);
        assert_eq!(min_max(BINARY32, S_QNAN, S_ONE, false, &mut fl), S_ONE);
        assert_eq!(fl, 0);
        assert_eq!(min_max(BINARY32, S_SNAN, S_ONE, true, &mut fl), S_ONE);
        assert_eq!(fl, FLAG_NV);
        let mut fl = 0;
        assert_eq!(
            min_max(BINARY32, 0xffc0_1234, S_QNAN | 5, false, &mut fl),
            S_QNAN
        );
        assert_eq!(fl, 0);
    }

    #[test]
    fn compare_signaling_and_quiet() {
        let mut fl = 0;
        assert_eq!(compare(BINARY32, CmpOp::Eq, S_QNAN, S_ONE, &mut fl), 0);
        assert_eq!(fl, 0, "feq is quiet");
        assert_eq!(compare(BINARY32, CmpOp::Eq, S_SNAN, S_ONE, &mut fl), 0);
        assert_eq!(fl, FLAG_NV);
        let mut fl = 0;
        assert_eq!(compare(BINARY32, CmpOp::Le, S_QNAN, S_ONE, &mut fl), 0);
        assert_eq!(fl, FLAG_NV, "fle signals on a quiet NaN");
        let mut fl = 0;
        assert_eq!(compare(BINARY32, CmpOp::Eq, 0, S_NEG_ZERO, &mut fl), 1);
        assert_eq!(compare(BINARY32, CmpOp::Lt, S_NEG_ZERO, 0, &mut fl), 0);
        assert_eq!(compare(BINARY32, CmpOp::Le, s(-1.0), s(-0.5), &mut fl), 1);
        assert_eq!(fl, 0);
    }

    /// fclass bits (§20.9, Table 20.5).
    #[test]
    fn fclass_bits() {
        let cases = [
            (s(f32::NEG_INFINITY), 0),
            (s(-1.0), 1),
            (0x8000_0001, 2),
            (S_NEG_ZERO, 3),
            (0, 4),
            (0x0000_0001, 5),
            (S_ONE, 6),
            (s(f32::INFINITY), 7),
            (S_SNAN, 8),
            (S_QNAN, 9),
        ];
        for (a, bit) in cases {
            assert_eq!(classify(BINARY32, a), 1 << bit, "{a:#x}");
        }
        assert_eq!(classify(BINARY64, 0x000f_ffff_ffff_ffff), 1 << 5);
        assert_eq!(classify(BINARY64, 0xfff0_0000_0000_0000), 1 << 0);
    }

    #[test]
    fn helper_table_is_complete_and_unique() {
        assert_eq!(HELPERS.len(), 54);
        let mut names: Vec<_> = HELPERS.iter().map(|h| h.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HELPERS.len());
        assert!(names.iter().all(|n| n.starts_with("rv.f")));
    }

    /// The host fast path agrees with the software path (result and flags) wherever it applies.
    #[test]
    fn host_fast_path_matches_software() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let mut hits = 0;
        for i in 0..200_000u32 {
            let fmt = if i % 2 == 0 { BINARY32 } else { BINARY64 };
            let (bias, fb) = (fmt.bias() as u64, fmt.frac_bits);
            let mut operand = |spread: u64| {
                let e = bias + next() % (2 * spread + 1) - spread;
                let f = if next() % 4 == 0 {
                    next() & 0xff
                } else {
                    next()
                };
                (next() & 1) << (fmt.exp_bits + fb) | e << fb | (f & fmt.frac_mask())
            };
            let (a, b) = (operand(70), operand(70));
            for op in [HostOp::Add, HostOp::Mul, HostOp::Div, HostOp::Sqrt] {
                let mut fast_fl = 0;
                let Some(fast) = host_fast(fmt, op, a, b, Rm::Rne, &mut fast_fl) else {
                    continue;
                };
                hits += 1;
                let mut fl = 0;
                let soft = match op {
                    HostOp::Add => soft_add(fmt, a, b, Rm::Rne, &mut fl),
                    HostOp::Mul => soft_mul(fmt, a, b, Rm::Rne, &mut fl),
                    HostOp::Div => soft_div(fmt, a, b, Rm::Rne, &mut fl),
                    HostOp::Sqrt => soft_sqrt(fmt, a, Rm::Rne, &mut fl),
                };
                assert_eq!((fast, fast_fl), (soft, fl), "{op:?} {a:#x} {b:#x}");
            }
        }
        assert!(hits > 300_000, "fast path taken {hits} times");
        // fma, with addends that often nearly cancel the product.
        let mut fma_hits = 0;
        for i in 0..200_000u32 {
            let fmt = if i % 2 == 0 { BINARY32 } else { BINARY64 };
            let (bias, fb) = (fmt.bias() as u64, fmt.frac_bits);
            let mut operand = |spread: u64| {
                let e = bias + next() % (2 * spread + 1) - spread;
                let f = if next() % 4 == 0 {
                    next() & 0xff
                } else {
                    next()
                };
                (next() & 1) << (fmt.exp_bits + fb) | e << fb | (f & fmt.frac_mask())
            };
            let (a, b, c) = (operand(40), operand(40), operand(40));
            let c = if next() % 2 == 0 {
                c
            } else {
                // -(a*b) rounded, give or take a few ulps.
                let p = mul(fmt, a, b, Rm::Rne, &mut 0) ^ fmt.sign_bit();
                p.wrapping_add(next() % 5).wrapping_sub(2)
            };
            let mut fast_fl = 0;
            let Some(fast) = host_fast_fma(fmt, a, b, c, Rm::Rne, &mut fast_fl) else {
                continue;
            };
            fma_hits += 1;
            let mut fl = 0;
            let soft = soft_fma(fmt, a, b, c, Rm::Rne, &mut fl);
            assert_eq!((fast, fast_fl), (soft, fl), "fma {a:#x} {b:#x} {c:#x}");
        }
        assert!(fma_hits > 100_000, "fma fast path taken {fma_hits} times");
        // A binary32 fma whose binary64 sum is inexact and rounds onto a binary32 midpoint:
        // -(1 + 2^-23) * (1 - 2^-23) * 2^-24 + (1 + 2^-22 + 2^-23) lies 2^-70 above the
        // midpoint between 1 + 2^-22 (even) and 1 + 2^-22 + 2^-23 (odd); rounding twice
        // would give the even one.
        let mut fl = 0;
        let r = fma(
            BINARY32,
            FmaOp::Madd,
            0xbf80_0001,
            0x337f_fffe,
            0x3f80_0003,
            Rm::Rne,
            &mut fl,
        );
        assert_eq!((r, fl), (0x3f80_0003, FLAG_NX));
        assert!(sum_is_zero([1.0, 2f64.powi(-80), -1.0, -(2f64.powi(-80))]));
        assert!(!sum_is_zero([1.0, 2f64.powi(-80), -1.0, 0.0]));
        // Exact and inexact results of each operation, in both formats.
        for (fmt, v) in [
            (BINARY32, [1.0f64, 2.0, 3.0, 4.0, 0.25].map(|x| s(x as f32))),
            (BINARY64, [1.0f64, 2.0, 3.0, 4.0, 0.25].map(f64::to_bits)),
        ] {
            let [one, two, three, four, quarter] = v;
            let cases = [
                (HostOp::Sqrt, four, 0, two, 0),
                (HostOp::Div, one, four, quarter, 0),
                (HostOp::Mul, two, quarter, host_fast_div(fmt, one, two), 0),
                (HostOp::Add, one, three, four, 0),
            ];
            for (op, a, b, want, want_fl) in cases {
                let mut fl = 0;
                assert_eq!(host_fast(fmt, op, a, b, Rm::Rne, &mut fl), Some(want));
                assert_eq!(fl, want_fl, "{op:?}");
            }
            let mut fl = 0;
            assert!(host_fast(fmt, HostOp::Sqrt, two, 0, Rm::Rne, &mut fl).is_some());
            assert_eq!(fl, FLAG_NX);
            let mut fl = 0;
            assert!(host_fast(fmt, HostOp::Div, one, three, Rm::Rne, &mut fl).is_some());
            assert_eq!(fl, FLAG_NX);
            let mut fl = 0;
            assert_eq!(
                host_fast(
                    fmt,
                    HostOp::Add,
                    one,
                    one ^ fmt.sign_bit(),
                    Rm::Rne,
                    &mut fl
                ),
                None
            );
            assert_eq!(
                host_fast(fmt, HostOp::Add, one, two, Rm::Rtz, &mut fl),
                None
            );
        }
    }

    fn host_fast_div(fmt: Format, a: u64, b: u64) -> u64 {
        div(fmt, a, b, Rm::Rne, &mut 0)
    }

    #[test]
    fn nan_boxing() {
        assert_eq!(unbox_s(0xffff_ffff_3f80_0000), S_ONE);
        assert_eq!(unbox_s(0x0000_0000_3f80_0000), S_QNAN);
        assert_eq!(unbox_s(0xfffe_ffff_3f80_0000), S_QNAN);
        assert_eq!(box_s(S_ONE), 0xffff_ffff_3f80_0000);
    }

    #[test]
    fn rounding_flags_and_canonical_nans() {
        let mut fl = 0;
        // 1 + 2^-24 ties to even (down) in binary32, rounds up in RMM / RUP.
        let tiny = s(f32::from_bits(0x3380_0000)); // 2^-24
        assert_eq!(add(BINARY32, S_ONE, tiny, Rm::Rne, &mut fl), S_ONE);
        assert_eq!(add(BINARY32, S_ONE, tiny, Rm::Rmm, &mut fl), S_ONE + 1);
        assert_eq!(add(BINARY32, S_ONE, tiny, Rm::Rup, &mut fl), S_ONE + 1);
        assert_eq!(fl, FLAG_NX);
        // x - x is +0, except −0 when rounding down.
        assert_eq!(sub(BINARY64, D_ONE, D_ONE, Rm::Rne, &mut fl), 0);
        assert_eq!(sub(BINARY64, D_ONE, D_ONE, Rm::Rdn, &mut fl), 1 << 63);
        // Overflow: inf or the largest finite number depending on the direction.
        let mut fl = 0;
        let max = s(f32::MAX);
        assert_eq!(mul(BINARY32, max, max, Rm::Rne, &mut fl), s(f32::INFINITY));
        assert_eq!(mul(BINARY32, max, max, Rm::Rtz, &mut fl), max);
        assert_eq!(fl, FLAG_OF | FLAG_NX);
        // Division by zero, invalid operations.
        let mut fl = 0;
        assert_eq!(div(BINARY32, S_ONE, 0, Rm::Rne, &mut fl), s(f32::INFINITY));
        assert_eq!(fl, FLAG_DZ);
        let mut fl = 0;
        assert_eq!(
            sqrt(BINARY64, D_ONE | 1 << 63, Rm::Rne, &mut fl),
            BINARY64.canonical_nan()
        );
        assert_eq!(fl, FLAG_NV);
        // A NaN operand's payload never propagates.
        let mut fl = 0;
        assert_eq!(add(BINARY32, 0xffc0_1234, S_ONE, Rm::Rne, &mut fl), S_QNAN);
        assert_eq!(fl, 0);
        // Underflow is detected after rounding: the largest subnormal times (1 + 2^-23)
        // rounds up to the smallest normal in RUP, tiny before rounding but not after.
        let mut fl = 0;
        let r = mul(BINARY32, 0x007f_ffff, 0x3f80_0001, Rm::Rup, &mut fl);
        assert_eq!(r, 0x0080_0000);
        assert_eq!(fl, FLAG_NX);
        // fma rounds once: (1 + 2^-12)^2 - 1 keeps the 2^-24 term that rounding the product
        // alone would drop (a tie to even).
        let mut fl = 0;
        let a = 0x3f80_0800;
        let r = fma(BINARY32, FmaOp::Msub, a, a, S_ONE, Rm::Rne, &mut fl);
        assert_eq!(r, s(2f32.powi(-11) + 2f32.powi(-24)));
        assert_eq!(fl, 0);
        // inf * 0 + qNaN is invalid.
        let mut fl = 0;
        let inf = s(f32::INFINITY);
        assert_eq!(
            fma(BINARY32, FmaOp::Madd, inf, 0, S_QNAN, Rm::Rne, &mut fl),
            S_QNAN
        );
        assert_eq!(fl, FLAG_NV);
    }

    #[test]
    fn conversions_between_formats_and_from_integers() {
        let mut fl = 0;
        assert_eq!(convert(BINARY32, BINARY64, S_ONE, Rm::Rne, &mut fl), D_ONE);
        assert_eq!(convert(BINARY64, BINARY32, D_ONE, Rm::Rne, &mut fl), S_ONE);
        assert_eq!(fl, 0);
        assert_eq!(
            convert(BINARY32, BINARY64, S_SNAN, Rm::Rne, &mut fl),
            BINARY64.canonical_nan()
        );
        assert_eq!(fl, FLAG_NV);
        let mut fl = 0;
        assert_eq!(
            from_int(BINARY32, IntFmt::W, u64::MAX, Rm::Rne, &mut fl),
            s(-1.0)
        );
        assert_eq!(
            from_int(BINARY64, IntFmt::Wu, u64::MAX, Rm::Rne, &mut fl),
            4294967295f64.to_bits()
        );
        assert_eq!(from_int(BINARY32, IntFmt::L, 0, Rm::Rne, &mut fl), 0);
        assert_eq!(fl, 0);
        assert_eq!(
            from_int(BINARY32, IntFmt::Lu, u64::MAX, Rm::Rtz, &mut fl),
            0x5f7f_ffff
        );
        assert_eq!(fl, FLAG_NX);
    }

    #[test]
    fn sign_injection() {
        assert_eq!(
            sign_inject(BINARY32, SgnjOp::Sgnj, S_ONE, S_NEG_ZERO),
            s(-1.0)
        );
        assert_eq!(
            sign_inject(BINARY32, SgnjOp::Sgnjn, S_ONE, S_NEG_ZERO),
            S_ONE
        );
        assert_eq!(
            sign_inject(BINARY32, SgnjOp::Sgnjx, s(-1.0), S_NEG_ZERO),
            S_ONE
        );
        assert_eq!(
            sign_inject(BINARY64, SgnjOp::Sgnjn, D_ONE, D_ONE),
            D_ONE | 1 << 63
        );
    }

    /// The helpers: boxing, fflags accrual, dynamic rounding mode and its illegal encodings.
    #[test]
    fn helpers_use_frm_box_and_accrue_flags() {
        let mut cpu = crate::riscv::cpu::test_cpu();
        let env = &mut cpu.common as *mut CpuCommon;
        // fadd.s ft1, ft1, ft2 with rm = DYN (funct3 7).
        let fadd_dyn = 0x0020_f0d3u64;
        let call = |h: &HelperDef, a: u64, b: u64, c: u64| (h.func)(env, a, b, c, 0);
        let one = box_s(S_ONE);
        let tiny = box_s(0x3380_0000);
        state_of::<RiscvCpu>(env).frm = Rm::Rup as u64;
        assert_eq!(call(&HELPER_FADD_S, one, tiny, fadd_dyn), box_s(S_ONE + 1));
        assert_eq!(state_of::<RiscvCpu>(env).fflags, u64::from(FLAG_NX));
        // An unboxed operand reads as the canonical NaN; a quiet NaN sets no flag.
        assert_eq!(call(&HELPER_FADD_S, S_ONE, one, fadd_dyn), box_s(S_QNAN));
        assert_eq!(state_of::<RiscvCpu>(env).common.exception_pending, 0);
        // frm = 5 is reserved: DYN raises illegal instruction with the encoding as tval.
        state_of::<RiscvCpu>(env).frm = 5;
        call(&HELPER_FADD_S, one, one, fadd_dyn);
        let cpu = state_of::<RiscvCpu>(env);
        assert_eq!(cpu.common.exception_pending, 1);
        assert_eq!((cpu.pending_cause, cpu.pending_tval), (2, fadd_dyn));
        cpu.common.exception_pending = 0;
        // A static rm ignores frm; integer results are sign-extended.
        let fcvt_w_d_rtz = 0xc200_1553u64;
        assert_eq!(
            call(&HELPER_FCVT_W_D, (-2.75f64).to_bits(), fcvt_w_d_rtz, 0),
            -2i64 as u64
        );
        assert_eq!(call(&HELPER_FCLASS_S, one, 0, 0), 1 << 6);
        assert_eq!(call(&HELPER_FEQ_D, D_ONE, D_ONE, 0), 1);
        assert_eq!(state_of::<RiscvCpu>(env).common.exception_pending, 0);
    }
}
