//! emu's built-in SBI: the Supervisor Binary Interface (RISC-V SBI specification v2.0) as pure
//! logic over a host trait the board implements.
//!
//! The board intercepts an `ecall` from S-mode, calls [`handle_ecall`] with the calling hart and
//! its `a0`–`a7`, writes the [`SbiReturn`] back (`a0` = error, `a1` = value; legacy calls write
//! `a0` only) and resumes at `sepc + 4`. Everything with a side effect outside the hart's
//! registers goes through [`SbiHost`], so this module has no state and is tested with a fake host.
//!
//! Hart IDs are hart indices `0..hart_count()` (the `virt` board numbers its harts so).
//!
//! Extensions (§ numbers of SBI v2.0):
//! - Base (§4) — spec version 2.0, implementation ID [`SBI_IMPL_ID_EMU`], `probe_extension`,
//!   `mvendorid`/`marchid`/`mimpid` = 0 (always legal values, §4.5–4.7).
//! - Legacy 0x00–0x08 (§5).
//! - TIME (§6), IPI (§7), RFENCE (§8; the hypervisor fences are NOT_SUPPORTED), HSM (§9),
//!   SRST (§10), DBCN (§12).
//! - Everything else is SBI_ERR_NOT_SUPPORTED (§3 "Binary encoding").

use std::fmt;

/// `SBI_SUCCESS` (Table 1).
pub const SBI_SUCCESS: i64 = 0;

/// Standard SBI errors (SBI v2.0 §3, Table 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum SbiError {
    Failed = -1,
    NotSupported = -2,
    InvalidParam = -3,
    Denied = -4,
    InvalidAddress = -5,
    AlreadyAvailable = -6,
    AlreadyStarted = -7,
    AlreadyStopped = -8,
    NoShmem = -9,
}

impl SbiError {
    /// The value returned in `a0`.
    pub fn code(self) -> i64 {
        self as i64
    }
}

impl fmt::Display for SbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SbiError::Failed => "SBI_ERR_FAILED",
            SbiError::NotSupported => "SBI_ERR_NOT_SUPPORTED",
            SbiError::InvalidParam => "SBI_ERR_INVALID_PARAM",
            SbiError::Denied => "SBI_ERR_DENIED",
            SbiError::InvalidAddress => "SBI_ERR_INVALID_ADDRESS",
            SbiError::AlreadyAvailable => "SBI_ERR_ALREADY_AVAILABLE",
            SbiError::AlreadyStarted => "SBI_ERR_ALREADY_STARTED",
            SbiError::AlreadyStopped => "SBI_ERR_ALREADY_STOPPED",
            SbiError::NoShmem => "SBI_ERR_NO_SHMEM",
        };
        f.write_str(name)
    }
}

impl std::error::Error for SbiError {}

/// Extension IDs (SBI v2.0 §4–§12).
pub const EID_LEGACY_SET_TIMER: u64 = 0x00;
pub const EID_LEGACY_CONSOLE_PUTCHAR: u64 = 0x01;
pub const EID_LEGACY_CONSOLE_GETCHAR: u64 = 0x02;
pub const EID_LEGACY_CLEAR_IPI: u64 = 0x03;
pub const EID_LEGACY_SEND_IPI: u64 = 0x04;
pub const EID_LEGACY_REMOTE_FENCE_I: u64 = 0x05;
pub const EID_LEGACY_REMOTE_SFENCE_VMA: u64 = 0x06;
pub const EID_LEGACY_REMOTE_SFENCE_VMA_ASID: u64 = 0x07;
pub const EID_LEGACY_SHUTDOWN: u64 = 0x08;
pub const EID_BASE: u64 = 0x10;
pub const EID_TIME: u64 = 0x5449_4D45;
pub const EID_IPI: u64 = 0x73_5049;
pub const EID_RFENCE: u64 = 0x5246_4E43;
pub const EID_HSM: u64 = 0x48_534D;
pub const EID_SRST: u64 = 0x5352_5354;
pub const EID_DBCN: u64 = 0x4442_434E;

/// `sbi_get_spec_version`: major 2 in bits 30:24, minor 0 in bits 23:0 (§4.1).
pub const SBI_SPEC_VERSION: u64 = 2 << 24;
/// Implementation ID of emu's SBI: ASCII "EMU". The registered IDs (§4.9, Table 2) are small
/// numbers (0 BBL, 1 OpenSBI, ... 11 bhyve); this one cannot collide with them.
pub const SBI_IMPL_ID_EMU: u64 = 0x45_4D55;
/// Implementation version: emu's SBI revision 1.
pub const SBI_IMPL_VERSION: u64 = 1;

/// Largest number of bytes one DBCN read or write moves; the spec lets an implementation move
/// fewer bytes than asked and report how many (§12.1).
pub const DBCN_MAX_CHUNK: usize = 4096;

/// HSM hart states (§9, Table 21).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub enum HartState {
    Started = 0,
    Stopped = 1,
    StartPending = 2,
    StopPending = 3,
    Suspended = 4,
    SuspendPending = 5,
    ResumePending = 6,
}

/// `sbi_system_reset` reset types (§10.1, Table 24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetType {
    Shutdown,
    ColdReboot,
    WarmReboot,
}

/// `sbi_system_reset` reset reasons (§10.1, Table 25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    NoReason,
    SystemFailure,
}

/// `sbi_hart_suspend` (§9.4, Table 22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HartSuspend {
    /// Default retentive suspend (0x0000_0000): returns to the caller like `wfi`.
    Retentive,
    /// Default non-retentive suspend (0x8000_0000): on resume the hart starts at `resume_addr`
    /// in S-mode with `a0 = hartid`, `a1 = opaque`, as after `sbi_hart_start`.
    NonRetentive { resume_addr: u64, opaque: u64 },
}

/// What the built-in SBI needs from the board. `hart` is always a valid index
/// (`< hart_count()`), checked before the call.
pub trait SbiHost {
    /// Number of harts; hart IDs are `0..hart_count()`.
    fn hart_count(&self) -> usize;
    /// Program the S-mode timer of `hart` to fire when `time >= stime`, and clear its pending
    /// supervisor timer interrupt (mip.STIP) (§6.1).
    fn set_timer(&mut self, hart: usize, stime: u64);
    /// Set mip.SSIP of `hart` (§7.1).
    fn send_ipi(&mut self, hart: usize);
    /// Clear mip.SSIP of `hart` (legacy `sbi_clear_ipi`, §5.5).
    fn clear_ipi(&mut self, hart: usize);
    /// Make `hart` execute `fence.i` (flush its translated code) (§8.1).
    fn remote_fence_i(&mut self, hart: usize);
    /// Make `hart` execute `sfence.vma` for `[start, start + size)` (or everything when `size`
    /// is `u64::MAX`) and the given ASID (`None`: all ASIDs) (§8.2, §8.3).
    fn remote_sfence_vma(&mut self, hart: usize, start: u64, size: u64, asid: Option<u64>);
    /// Start the STOPPED `hart` at `start_addr` in S-mode with `a0 = hart`, `a1 = opaque`,
    /// `satp = 0`, `sstatus.SIE = 0` (§9.1).
    fn hart_start(&mut self, hart: usize, start_addr: u64, opaque: u64) -> Result<(), SbiError>;
    /// Stop the calling `hart` (§9.2); on success it never returns to the caller.
    fn hart_stop(&mut self, hart: usize) -> Result<(), SbiError>;
    /// The HSM state of `hart` (§9.3).
    fn hart_status(&self, hart: usize) -> HartState;
    /// Suspend the calling `hart` (§9.4).
    fn hart_suspend(&mut self, hart: usize, suspend: HartSuspend) -> Result<(), SbiError>;
    /// Shut down or reboot the machine (§10.1). The call does not return to the guest.
    fn system_reset(&mut self, reset_type: ResetType, reason: ResetReason);
    /// Send bytes to the console.
    fn console_write(&mut self, bytes: &[u8]);
    /// Take up to `buf.len()` bytes of pending console input; returns how many (0 if none).
    fn console_read(&mut self, buf: &mut [u8]) -> usize;
    /// Read guest physical memory (RAM only); false if any byte is not RAM.
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> bool;
    /// Write guest physical memory (RAM only); false if any byte is not RAM.
    fn write_phys(&mut self, addr: u64, buf: &[u8]) -> bool;
    /// Read a 64-bit value at the S-mode virtual address `vaddr` through `hart`'s current
    /// translation (legacy calls pass hart masks by pointer, §5); `None` on a fault.
    fn read_virt_u64(&mut self, hart: usize, vaddr: u64) -> Option<u64>;
}

/// The result of an SBI call (§3: `struct sbiret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SbiReturn {
    /// `a0`: [`SBI_SUCCESS`] or an [`SbiError`] code; for a legacy call, its whole result.
    pub error: i64,
    /// `a1`.
    pub value: u64,
    /// A legacy call (EID 0x00–0x08): only `a0` is written, `a1` keeps its value (§5).
    pub legacy: bool,
}

impl SbiReturn {
    fn ok(value: u64) -> Self {
        SbiReturn {
            error: SBI_SUCCESS,
            value,
            legacy: false,
        }
    }

    fn err(e: SbiError) -> Self {
        SbiReturn {
            error: e.code(),
            value: 0,
            legacy: false,
        }
    }

    fn from(r: Result<u64, SbiError>) -> Self {
        match r {
            Ok(v) => Self::ok(v),
            Err(e) => Self::err(e),
        }
    }

    fn legacy(a0: i64) -> Self {
        SbiReturn {
            error: a0,
            value: 0,
            legacy: true,
        }
    }
}

/// Handle one SBI call from `hart` with registers `a = [a0, ..., a7]` (`a6` = FID, `a7` = EID).
pub fn handle_ecall(host: &mut dyn SbiHost, hart: usize, a: [u64; 8]) -> SbiReturn {
    let [a0, a1, a2, a3, a4, _a5, fid, eid] = a;
    match eid {
        EID_LEGACY_SET_TIMER..=EID_LEGACY_SHUTDOWN => legacy(host, hart, eid, a),
        EID_BASE => SbiReturn::from(base(fid, a0)),
        EID_TIME => SbiReturn::from(match fid {
            0 => {
                host.set_timer(hart, a0);
                Ok(0)
            }
            _ => Err(SbiError::NotSupported),
        }),
        EID_IPI => SbiReturn::from(match fid {
            0 => harts_in_mask(host, a0, a1).map(|harts| {
                for h in harts {
                    host.send_ipi(h);
                }
                0
            }),
            _ => Err(SbiError::NotSupported),
        }),
        EID_RFENCE => SbiReturn::from(rfence(host, fid, [a0, a1, a2, a3, a4])),
        EID_HSM => SbiReturn::from(hsm(host, hart, fid, [a0, a1, a2])),
        EID_SRST => SbiReturn::from(match fid {
            0 => system_reset(host, a0, a1),
            _ => Err(SbiError::NotSupported),
        }),
        EID_DBCN => SbiReturn::from(dbcn(host, fid, [a0, a1, a2])),
        _ => SbiReturn::err(SbiError::NotSupported),
    }
}

/// Whether `eid` is implemented (for `sbi_probe_extension`, §4.4).
pub fn extension_available(eid: u64) -> bool {
    matches!(
        eid,
        EID_LEGACY_SET_TIMER
            ..=EID_LEGACY_SHUTDOWN
                | EID_BASE
                | EID_TIME
                | EID_IPI
                | EID_RFENCE
                | EID_HSM
                | EID_SRST
                | EID_DBCN
    )
}

/// Base extension (§4).
fn base(fid: u64, a0: u64) -> Result<u64, SbiError> {
    match fid {
        0 => Ok(SBI_SPEC_VERSION),
        1 => Ok(SBI_IMPL_ID_EMU),
        2 => Ok(SBI_IMPL_VERSION),
        3 => Ok(u64::from(extension_available(a0))),
        // mvendorid, marchid, mimpid: 0 is always legal.
        4..=6 => Ok(0),
        _ => Err(SbiError::NotSupported),
    }
}

/// The harts named by `hart_mask` and `hart_mask_base` (§3 "Hart list parameter"):
/// `hart_mask_base == -1` means every hart. An invalid hart is SBI_ERR_INVALID_PARAM, checked
/// before any hart is acted on.
fn harts_in_mask(
    host: &dyn SbiHost,
    hart_mask: u64,
    hart_mask_base: u64,
) -> Result<Vec<usize>, SbiError> {
    let count = host.hart_count();
    if hart_mask_base == u64::MAX {
        return Ok((0..count).collect());
    }
    let mut harts = Vec::new();
    for bit in 0..64u64 {
        if hart_mask & (1 << bit) == 0 {
            continue;
        }
        let hart = hart_mask_base
            .checked_add(bit)
            .and_then(|h| usize::try_from(h).ok())
            .filter(|&h| h < count)
            .ok_or(SbiError::InvalidParam)?;
        harts.push(hart);
    }
    Ok(harts)
}

/// RFENCE extension (§8).
fn rfence(host: &mut dyn SbiHost, fid: u64, a: [u64; 5]) -> Result<u64, SbiError> {
    let [mask, mask_base, start, size, asid] = a;
    // §8: start 0 and size 0, or size 2^XLEN - 1, mean the whole address space.
    let (start, size) = if (start == 0 && size == 0) || size == u64::MAX {
        (0, u64::MAX)
    } else {
        (start, size)
    };
    match fid {
        0 => {
            for h in harts_in_mask(host, mask, mask_base)? {
                host.remote_fence_i(h);
            }
        }
        1 | 2 => {
            let asid = if fid == 2 {
                // ASIDLEN is at most 16 (Sv57 satp.ASID); anything wider is not an ASID.
                if asid > 0xffff {
                    return Err(SbiError::InvalidParam);
                }
                Some(asid)
            } else {
                None
            };
            if size != u64::MAX && start.checked_add(size).is_none() {
                return Err(SbiError::InvalidAddress);
            }
            for h in harts_in_mask(host, mask, mask_base)? {
                host.remote_sfence_vma(h, start, size, asid);
            }
        }
        // HFENCE.GVMA/VVMA: emu's harts have no H extension.
        _ => return Err(SbiError::NotSupported),
    }
    Ok(0)
}

/// Whether `addr` is RAM the hart could execute from.
fn valid_code_addr(host: &dyn SbiHost, addr: u64) -> bool {
    let mut probe = [0u8; 2];
    addr.is_multiple_of(2) && host.read_phys(addr, &mut probe)
}

/// HSM extension (§9).
fn hsm(host: &mut dyn SbiHost, hart: usize, fid: u64, a: [u64; 3]) -> Result<u64, SbiError> {
    let target = |host: &dyn SbiHost, id: u64| {
        usize::try_from(id)
            .ok()
            .filter(|&h| h < host.hart_count())
            .ok_or(SbiError::InvalidParam)
    };
    match fid {
        0 => {
            let [hartid, start_addr, opaque] = a;
            let h = target(host, hartid)?;
            if host.hart_status(h) != HartState::Stopped {
                return Err(SbiError::AlreadyAvailable);
            }
            if !valid_code_addr(host, start_addr) {
                return Err(SbiError::InvalidAddress);
            }
            host.hart_start(h, start_addr, opaque).map(|()| 0)
        }
        1 => {
            if host.hart_status(hart) != HartState::Started {
                return Err(SbiError::Failed);
            }
            host.hart_stop(hart).map(|()| 0)
        }
        2 => {
            let h = target(host, a[0])?;
            Ok(host.hart_status(h) as u64)
        }
        3 => {
            let [suspend_type, resume_addr, opaque] = a;
            let suspend = match suspend_type {
                0 => HartSuspend::Retentive,
                0x8000_0000 => {
                    if !valid_code_addr(host, resume_addr) {
                        return Err(SbiError::InvalidAddress);
                    }
                    HartSuspend::NonRetentive {
                        resume_addr,
                        opaque,
                    }
                }
                // Reserved and platform-specific types (Table 22): none implemented.
                _ => return Err(SbiError::InvalidParam),
            };
            host.hart_suspend(hart, suspend).map(|()| 0)
        }
        _ => Err(SbiError::NotSupported),
    }
}

/// SRST extension (§10).
fn system_reset(host: &mut dyn SbiHost, reset_type: u64, reason: u64) -> Result<u64, SbiError> {
    let reset_type = match reset_type {
        0 => ResetType::Shutdown,
        1 => ResetType::ColdReboot,
        2 => ResetType::WarmReboot,
        _ => return Err(SbiError::InvalidParam),
    };
    let reason = match reason {
        0 => ResetReason::NoReason,
        1 => ResetReason::SystemFailure,
        _ => return Err(SbiError::InvalidParam),
    };
    host.system_reset(reset_type, reason);
    Ok(0)
}

/// DBCN extension (§12). On RV64 `base_addr_hi` holds address bits 127:64, so it must be 0.
fn dbcn(host: &mut dyn SbiHost, fid: u64, a: [u64; 3]) -> Result<u64, SbiError> {
    let [num_bytes, lo, hi] = a;
    let chunk = || -> Result<(u64, usize), SbiError> {
        if hi != 0 {
            return Err(SbiError::InvalidParam);
        }
        let n = usize::try_from(num_bytes).map_or(DBCN_MAX_CHUNK, |n| n.min(DBCN_MAX_CHUNK));
        if lo.checked_add(n as u64).is_none() {
            return Err(SbiError::InvalidParam);
        }
        Ok((lo, n))
    };
    match fid {
        0 => {
            let (addr, n) = chunk()?;
            let mut buf = vec![0u8; n];
            if !host.read_phys(addr, &mut buf) {
                return Err(SbiError::InvalidParam);
            }
            host.console_write(&buf);
            Ok(n as u64)
        }
        1 => {
            let (addr, n) = chunk()?;
            let mut buf = vec![0u8; n];
            // Check the destination before taking input, so that no input is lost.
            if !host.read_phys(addr, &mut buf) {
                return Err(SbiError::InvalidParam);
            }
            let got = host.console_read(&mut buf).min(n);
            let data = buf.get(..got).unwrap_or(&[]);
            if !host.write_phys(addr, data) {
                return Err(SbiError::InvalidParam);
            }
            Ok(got as u64)
        }
        2 => {
            host.console_write(&[num_bytes as u8]);
            Ok(0)
        }
        _ => Err(SbiError::NotSupported),
    }
}

/// Legacy extensions (§5): the result is `a0` only.
fn legacy(host: &mut dyn SbiHost, hart: usize, eid: u64, a: [u64; 8]) -> SbiReturn {
    let [a0, a1, a2, a3, ..] = a;
    // A hart mask passed by S-mode virtual address; 0 means all harts (§5.6).
    let mask = |host: &mut dyn SbiHost| -> Result<Vec<usize>, SbiError> {
        if a0 == 0 {
            return Ok((0..host.hart_count()).collect());
        }
        let bits = host
            .read_virt_u64(hart, a0)
            .ok_or(SbiError::InvalidAddress)?;
        harts_in_mask(host, bits, 0)
    };
    let result = match eid {
        EID_LEGACY_SET_TIMER => {
            host.set_timer(hart, a0);
            Ok(())
        }
        EID_LEGACY_CONSOLE_PUTCHAR => {
            host.console_write(&[a0 as u8]);
            Ok(())
        }
        EID_LEGACY_CONSOLE_GETCHAR => {
            let mut b = [0u8];
            let c = if host.console_read(&mut b) == 1 {
                i64::from(b[0])
            } else {
                -1
            };
            return SbiReturn::legacy(c);
        }
        EID_LEGACY_CLEAR_IPI => {
            host.clear_ipi(hart);
            Ok(())
        }
        EID_LEGACY_SEND_IPI => mask(host).map(|harts| {
            for h in harts {
                host.send_ipi(h);
            }
        }),
        EID_LEGACY_REMOTE_FENCE_I => mask(host).map(|harts| {
            for h in harts {
                host.remote_fence_i(h);
            }
        }),
        EID_LEGACY_REMOTE_SFENCE_VMA | EID_LEGACY_REMOTE_SFENCE_VMA_ASID => {
            let asid = (eid == EID_LEGACY_REMOTE_SFENCE_VMA_ASID).then_some(a3);
            let (start, size) = if a1 == 0 && a2 == 0 {
                (0, u64::MAX)
            } else {
                (a1, a2)
            };
            mask(host).map(|harts| {
                for h in harts {
                    host.remote_sfence_vma(h, start, size, asid);
                }
            })
        }
        _ => {
            // EID_LEGACY_SHUTDOWN, the only one left in 0x00..=0x08.
            host.system_reset(ResetType::Shutdown, ResetReason::NoReason);
            Ok(())
        }
    };
    SbiReturn::legacy(match result {
        Ok(()) => SBI_SUCCESS,
        Err(e) => e.code(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x8000_0000;
    const RAM_SIZE: usize = 0x1_0000;

    #[derive(Debug, PartialEq, Eq, Clone)]
    enum Call {
        Timer(usize, u64),
        Ipi(usize),
        ClearIpi(usize),
        FenceI(usize),
        Sfence(usize, u64, u64, Option<u64>),
        Start(usize, u64, u64),
        Stop(usize),
        Suspend(usize, HartSuspend),
        Reset(ResetType, ResetReason),
    }

    struct Fake {
        harts: Vec<HartState>,
        calls: Vec<Call>,
        out: Vec<u8>,
        input: Vec<u8>,
        ram: Vec<u8>,
        /// (vaddr, value) readable through the hart's "translation".
        virt: Vec<(u64, u64)>,
    }

    impl Fake {
        fn new(n: usize) -> Self {
            let mut harts = vec![HartState::Stopped; n];
            harts[0] = HartState::Started;
            Fake {
                harts,
                calls: Vec::new(),
                out: Vec::new(),
                input: Vec::new(),
                ram: vec![0; RAM_SIZE],
                virt: Vec::new(),
            }
        }

        fn range(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
            let off = usize::try_from(addr.checked_sub(RAM)?).ok()?;
            let end = off.checked_add(len)?;
            (end <= self.ram.len()).then_some(off..end)
        }
    }

    impl SbiHost for Fake {
        fn hart_count(&self) -> usize {
            self.harts.len()
        }
        fn set_timer(&mut self, hart: usize, stime: u64) {
            self.calls.push(Call::Timer(hart, stime));
        }
        fn send_ipi(&mut self, hart: usize) {
            self.calls.push(Call::Ipi(hart));
        }
        fn clear_ipi(&mut self, hart: usize) {
            self.calls.push(Call::ClearIpi(hart));
        }
        fn remote_fence_i(&mut self, hart: usize) {
            self.calls.push(Call::FenceI(hart));
        }
        fn remote_sfence_vma(&mut self, hart: usize, start: u64, size: u64, asid: Option<u64>) {
            self.calls.push(Call::Sfence(hart, start, size, asid));
        }
        fn hart_start(&mut self, hart: usize, start: u64, opaque: u64) -> Result<(), SbiError> {
            self.harts[hart] = HartState::StartPending;
            self.calls.push(Call::Start(hart, start, opaque));
            Ok(())
        }
        fn hart_stop(&mut self, hart: usize) -> Result<(), SbiError> {
            self.harts[hart] = HartState::Stopped;
            self.calls.push(Call::Stop(hart));
            Ok(())
        }
        fn hart_status(&self, hart: usize) -> HartState {
            self.harts[hart]
        }
        fn hart_suspend(&mut self, hart: usize, s: HartSuspend) -> Result<(), SbiError> {
            self.calls.push(Call::Suspend(hart, s));
            Ok(())
        }
        fn system_reset(&mut self, t: ResetType, r: ResetReason) {
            self.calls.push(Call::Reset(t, r));
        }
        fn console_write(&mut self, bytes: &[u8]) {
            self.out.extend_from_slice(bytes);
        }
        fn console_read(&mut self, buf: &mut [u8]) -> usize {
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            n
        }
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> bool {
            match self.range(addr, buf.len()) {
                Some(r) => {
                    buf.copy_from_slice(&self.ram[r]);
                    true
                }
                None => false,
            }
        }
        fn write_phys(&mut self, addr: u64, buf: &[u8]) -> bool {
            match self.range(addr, buf.len()) {
                Some(r) => {
                    self.ram[r].copy_from_slice(buf);
                    true
                }
                None => false,
            }
        }
        fn read_virt_u64(&mut self, _hart: usize, vaddr: u64) -> Option<u64> {
            self.virt.iter().find(|(a, _)| *a == vaddr).map(|(_, v)| *v)
        }
    }

    fn call(h: &mut Fake, hart: usize, eid: u64, fid: u64, args: &[u64]) -> SbiReturn {
        let mut a = [0u64; 8];
        a[..args.len()].copy_from_slice(args);
        a[6] = fid;
        a[7] = eid;
        handle_ecall(h, hart, a)
    }

    fn ok(v: u64) -> SbiReturn {
        SbiReturn::ok(v)
    }

    fn err(e: SbiError) -> SbiReturn {
        SbiReturn::err(e)
    }

    #[test]
    fn base_extension() {
        let mut h = Fake::new(1);
        assert_eq!(call(&mut h, 0, EID_BASE, 0, &[]), ok(0x0200_0000));
        assert_eq!(call(&mut h, 0, EID_BASE, 1, &[]), ok(SBI_IMPL_ID_EMU));
        assert_eq!(call(&mut h, 0, EID_BASE, 2, &[]), ok(SBI_IMPL_VERSION));
        for eid in [
            EID_TIME, EID_IPI, EID_RFENCE, EID_HSM, EID_SRST, EID_DBCN, EID_BASE, 0, 8,
        ] {
            assert_eq!(call(&mut h, 0, EID_BASE, 3, &[eid]), ok(1), "{eid:#x}");
        }
        // PMU, SUSP, CPPC, an unknown one.
        for eid in [0x504D55, 0x5355_5350, 0x4350_5043, 9, 0x1234_5678] {
            assert_eq!(call(&mut h, 0, EID_BASE, 3, &[eid]), ok(0), "{eid:#x}");
        }
        for fid in 4..=6 {
            assert_eq!(call(&mut h, 0, EID_BASE, fid, &[]), ok(0));
        }
        assert_eq!(
            call(&mut h, 0, EID_BASE, 7, &[]),
            err(SbiError::NotSupported)
        );
        assert_eq!(
            call(&mut h, 0, 0x0A00_0000, 0, &[]),
            err(SbiError::NotSupported),
            "unknown extension"
        );
        assert!(h.calls.is_empty());
    }

    #[test]
    fn time_extension() {
        let mut h = Fake::new(2);
        assert_eq!(call(&mut h, 1, EID_TIME, 0, &[12345]), ok(0));
        assert_eq!(h.calls, vec![Call::Timer(1, 12345)]);
        assert_eq!(
            call(&mut h, 1, EID_TIME, 1, &[1]),
            err(SbiError::NotSupported)
        );
    }

    #[test]
    fn ipi_masks() {
        let mut h = Fake::new(4);
        assert_eq!(call(&mut h, 0, EID_IPI, 0, &[0b101, 0]), ok(0));
        assert_eq!(h.calls, vec![Call::Ipi(0), Call::Ipi(2)]);
        h.calls.clear();
        assert_eq!(call(&mut h, 0, EID_IPI, 0, &[0b11, 2]), ok(0));
        assert_eq!(h.calls, vec![Call::Ipi(2), Call::Ipi(3)]);
        h.calls.clear();
        assert_eq!(call(&mut h, 0, EID_IPI, 0, &[0, u64::MAX]), ok(0), "all");
        assert_eq!(h.calls.len(), 4);
        h.calls.clear();
        // Hart 4 does not exist: nothing is sent.
        assert_eq!(
            call(&mut h, 0, EID_IPI, 0, &[0b111, 2]),
            err(SbiError::InvalidParam)
        );
        assert_eq!(
            call(&mut h, 0, EID_IPI, 0, &[1 << 63, u64::MAX - 1]),
            err(SbiError::InvalidParam),
            "base + bit overflows"
        );
        assert!(h.calls.is_empty());
        assert_eq!(call(&mut h, 0, EID_IPI, 0, &[0, 0]), ok(0), "empty mask");
        assert_eq!(
            call(&mut h, 0, EID_IPI, 1, &[]),
            err(SbiError::NotSupported)
        );
    }

    #[test]
    fn rfence_extension() {
        let mut h = Fake::new(2);
        assert_eq!(call(&mut h, 0, EID_RFENCE, 0, &[0b11, 0]), ok(0));
        assert_eq!(h.calls, vec![Call::FenceI(0), Call::FenceI(1)]);
        h.calls.clear();
        assert_eq!(
            call(&mut h, 0, EID_RFENCE, 1, &[0b10, 0, 0x1000, 0x2000]),
            ok(0)
        );
        assert_eq!(call(&mut h, 0, EID_RFENCE, 1, &[0b10, 0, 0, 0]), ok(0));
        assert_eq!(
            call(&mut h, 0, EID_RFENCE, 2, &[0b1, 0, 5, u64::MAX, 7]),
            ok(0)
        );
        assert_eq!(
            h.calls,
            vec![
                Call::Sfence(1, 0x1000, 0x2000, None),
                Call::Sfence(1, 0, u64::MAX, None),
                Call::Sfence(0, 0, u64::MAX, Some(7)),
            ]
        );
        h.calls.clear();
        assert_eq!(
            call(&mut h, 0, EID_RFENCE, 2, &[1, 0, 0, 0, 0x1_0000]),
            err(SbiError::InvalidParam),
            "ASID wider than 16 bits"
        );
        assert_eq!(
            call(&mut h, 0, EID_RFENCE, 1, &[1, 0, u64::MAX - 1, 4]),
            err(SbiError::InvalidAddress)
        );
        assert_eq!(
            call(&mut h, 0, EID_RFENCE, 0, &[0b100, 0]),
            err(SbiError::InvalidParam)
        );
        for fid in 3..=6 {
            assert_eq!(
                call(&mut h, 0, EID_RFENCE, fid, &[1, 0]),
                err(SbiError::NotSupported),
                "hfence {fid}"
            );
        }
        assert!(h.calls.is_empty());
    }

    #[test]
    fn hsm_start_stop_status() {
        let mut h = Fake::new(2);
        assert_eq!(
            call(&mut h, 0, EID_HSM, 2, &[1]),
            ok(HartState::Stopped as u64)
        );
        assert_eq!(call(&mut h, 0, EID_HSM, 2, &[0]), ok(0));
        assert_eq!(
            call(&mut h, 0, EID_HSM, 2, &[2]),
            err(SbiError::InvalidParam)
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 0, &[1, 0x1000, 9]),
            err(SbiError::InvalidAddress),
            "not RAM"
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 0, &[1, RAM + 1, 9]),
            err(SbiError::InvalidAddress),
            "misaligned"
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 0, &[7, RAM, 9]),
            err(SbiError::InvalidParam)
        );
        assert_eq!(call(&mut h, 0, EID_HSM, 0, &[1, RAM + 0x100, 9]), ok(0));
        assert_eq!(h.calls, vec![Call::Start(1, RAM + 0x100, 9)]);
        assert_eq!(
            call(&mut h, 0, EID_HSM, 2, &[1]),
            ok(HartState::StartPending as u64)
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 0, &[1, RAM, 9]),
            err(SbiError::AlreadyAvailable)
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 0, &[0, RAM, 9]),
            err(SbiError::AlreadyAvailable)
        );
        h.harts[1] = HartState::Started;
        h.calls.clear();
        assert_eq!(call(&mut h, 1, EID_HSM, 1, &[]), ok(0));
        assert_eq!(h.calls, vec![Call::Stop(1)]);
        assert_eq!(
            call(&mut h, 1, EID_HSM, 1, &[]),
            err(SbiError::Failed),
            "a stopped hart cannot stop"
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 4, &[]),
            err(SbiError::NotSupported)
        );
    }

    #[test]
    fn hsm_suspend() {
        let mut h = Fake::new(1);
        assert_eq!(call(&mut h, 0, EID_HSM, 3, &[0, 0, 0]), ok(0));
        assert_eq!(
            call(&mut h, 0, EID_HSM, 3, &[0x8000_0000, RAM + 4, 3]),
            ok(0)
        );
        assert_eq!(
            h.calls,
            vec![
                Call::Suspend(0, HartSuspend::Retentive),
                Call::Suspend(
                    0,
                    HartSuspend::NonRetentive {
                        resume_addr: RAM + 4,
                        opaque: 3
                    }
                )
            ]
        );
        assert_eq!(
            call(&mut h, 0, EID_HSM, 3, &[0x8000_0000, 0x10, 3]),
            err(SbiError::InvalidAddress)
        );
        for t in [1, 0x1000_0000, 0x8000_0001, 0x9000_0000, 1 << 32] {
            assert_eq!(
                call(&mut h, 0, EID_HSM, 3, &[t, RAM, 0]),
                err(SbiError::InvalidParam),
                "{t:#x}"
            );
        }
        assert_eq!(h.calls.len(), 2);
    }

    #[test]
    fn srst() {
        let mut h = Fake::new(1);
        assert_eq!(call(&mut h, 0, EID_SRST, 0, &[0, 0]), ok(0));
        assert_eq!(call(&mut h, 0, EID_SRST, 0, &[1, 1]), ok(0));
        assert_eq!(call(&mut h, 0, EID_SRST, 0, &[2, 0]), ok(0));
        assert_eq!(
            h.calls,
            vec![
                Call::Reset(ResetType::Shutdown, ResetReason::NoReason),
                Call::Reset(ResetType::ColdReboot, ResetReason::SystemFailure),
                Call::Reset(ResetType::WarmReboot, ResetReason::NoReason),
            ]
        );
        h.calls.clear();
        for (t, r) in [
            (3, 0),
            (0xF000_0000, 0),
            (0, 2),
            (0, 0xE000_0000),
            (1 << 32, 0),
        ] {
            assert_eq!(
                call(&mut h, 0, EID_SRST, 0, &[t, r]),
                err(SbiError::InvalidParam)
            );
        }
        assert_eq!(
            call(&mut h, 0, EID_SRST, 1, &[0, 0]),
            err(SbiError::NotSupported)
        );
        assert!(h.calls.is_empty());
    }

    #[test]
    fn dbcn_write_read_byte() {
        let mut h = Fake::new(1);
        h.ram[0x10..0x15].copy_from_slice(b"hello");
        assert_eq!(call(&mut h, 0, EID_DBCN, 0, &[5, RAM + 0x10, 0]), ok(5));
        assert_eq!(h.out, b"hello");
        assert_eq!(call(&mut h, 0, EID_DBCN, 2, &[b'!' as u64 | 0x100]), ok(0));
        assert_eq!(h.out, b"hello!");
        // Larger than a chunk: partial write, the count says how much.
        assert_eq!(
            call(&mut h, 0, EID_DBCN, 0, &[10_000, RAM, 0]),
            ok(DBCN_MAX_CHUNK as u64)
        );
        // Bad addresses: outside RAM, straddling its end, upper half set, wrapping.
        for (n, lo, hi) in [
            (4, 0x1000, 0),
            (0x20, RAM + RAM_SIZE as u64 - 0x10, 0),
            (1, RAM, 1),
            (8, u64::MAX - 2, 0),
        ] {
            assert_eq!(
                call(&mut h, 0, EID_DBCN, 0, &[n, lo, hi]),
                err(SbiError::InvalidParam)
            );
            assert_eq!(
                call(&mut h, 0, EID_DBCN, 1, &[n, lo, hi]),
                err(SbiError::InvalidParam)
            );
        }
        // Read: nothing pending, then some.
        assert_eq!(call(&mut h, 0, EID_DBCN, 1, &[8, RAM + 0x100, 0]), ok(0));
        h.input = b"ls\n".to_vec();
        assert_eq!(call(&mut h, 0, EID_DBCN, 1, &[2, RAM + 0x100, 0]), ok(2));
        assert_eq!(&h.ram[0x100..0x102], b"ls");
        assert_eq!(h.input, b"\n", "input beyond num_bytes stays pending");
        assert_eq!(
            call(&mut h, 0, EID_DBCN, 3, &[]),
            err(SbiError::NotSupported)
        );
    }

    #[test]
    fn legacy_calls() {
        let mut h = Fake::new(3);
        let l = |a0| SbiReturn::legacy(a0);
        assert_eq!(call(&mut h, 1, 0x00, 0, &[99]), l(0));
        assert_eq!(call(&mut h, 0, 0x01, 0, &[b'x' as u64]), l(0));
        assert_eq!(h.out, b"x");
        assert_eq!(call(&mut h, 0, 0x02, 0, &[]), l(-1), "no input");
        h.input = vec![0xff];
        assert_eq!(call(&mut h, 0, 0x02, 0, &[]), l(0xff));
        assert_eq!(call(&mut h, 2, 0x03, 0, &[]), l(0));
        h.virt = vec![(0xffff_ffff_8000_0000, 0b110)];
        assert_eq!(call(&mut h, 0, 0x04, 0, &[0xffff_ffff_8000_0000]), l(0));
        assert_eq!(call(&mut h, 0, 0x05, 0, &[0]), l(0), "NULL mask = all");
        assert_eq!(
            call(&mut h, 0, 0x06, 0, &[0xffff_ffff_8000_0000, 0x4000, 0x1000]),
            l(0)
        );
        assert_eq!(
            call(&mut h, 0, 0x07, 0, &[0xffff_ffff_8000_0000, 0, 0, 3]),
            l(0)
        );
        assert_eq!(
            h.calls,
            vec![
                Call::Timer(1, 99),
                Call::ClearIpi(2),
                Call::Ipi(1),
                Call::Ipi(2),
                Call::FenceI(0),
                Call::FenceI(1),
                Call::FenceI(2),
                Call::Sfence(1, 0x4000, 0x1000, None),
                Call::Sfence(2, 0x4000, 0x1000, None),
                Call::Sfence(1, 0, u64::MAX, Some(3)),
                Call::Sfence(2, 0, u64::MAX, Some(3)),
            ]
        );
        h.calls.clear();
        assert_eq!(
            call(&mut h, 0, 0x04, 0, &[0x1234]),
            l(SbiError::InvalidAddress.code()),
            "unmapped mask pointer"
        );
        h.virt = vec![(0x8, 0b1000)];
        assert_eq!(
            call(&mut h, 0, 0x04, 0, &[0x8]),
            l(SbiError::InvalidParam.code()),
            "hart 3 does not exist"
        );
        assert!(h.calls.is_empty());
        assert_eq!(call(&mut h, 0, 0x08, 0, &[]), l(0));
        assert_eq!(
            h.calls,
            vec![Call::Reset(ResetType::Shutdown, ResetReason::NoReason)]
        );
    }

    #[test]
    fn random_calls_never_panic() {
        let mut h = Fake::new(2);
        let eids = [
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, EID_BASE, EID_TIME, EID_IPI, EID_RFENCE, EID_HSM,
            EID_SRST, EID_DBCN,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut a = [0u64; 8];
            for r in a.iter_mut() {
                let v = next();
                *r = match v % 4 {
                    0 => v >> 60,
                    1 => RAM + (v >> 52),
                    2 => u64::MAX - (v >> 60),
                    _ => v,
                };
            }
            a[6] = next() % 8;
            a[7] = eids[(next() % eids.len() as u64) as usize];
            let r = handle_ecall(&mut h, 0, a);
            assert!(r.error <= 0 && r.error >= -9 || r.legacy);
            h.harts[0] = HartState::Started;
        }
    }
}
