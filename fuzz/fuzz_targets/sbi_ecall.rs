//! emu's built-in SBI (firmware/src/sbi.rs) on arbitrary ecalls: any hart, EID, FID and
//! `a0`–`a5` (hart masks, physical addresses and lengths for the debug console, fence ranges).
//!
//! A fake board checks the `SbiHost` contract from the other side: every hart index it is
//! given is below `hart_count()`, and console writes are no longer than what the guest's RAM
//! can hold. Every return is `SBI_SUCCESS` or a standard error code (SBI v2.0 §3, Table 1), and
//! only the legacy extensions (EID 0x00–0x08, §5) return legacy-style.
#![no_main]

use emu_firmware::sbi::*;
use emu_fuzz::Input;
use libfuzzer_sys::fuzz_target;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 0x4000;
const MAX_CALLS: usize = 64;

struct FakeBoard {
    harts: Vec<HartState>,
    ram: Vec<u8>,
    console_in: Vec<u8>,
}

impl FakeBoard {
    fn hart(&self, hart: usize) {
        assert!(
            hart < self.harts.len(),
            "hart {hart} of {}",
            self.harts.len()
        );
    }

    fn range(&self, addr: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let off = usize::try_from(addr.checked_sub(RAM_BASE)?).ok()?;
        let end = off.checked_add(len)?;
        (end <= RAM_SIZE).then_some(off..end)
    }
}

impl SbiHost for FakeBoard {
    fn hart_count(&self) -> usize {
        self.harts.len()
    }
    fn set_timer(&mut self, hart: usize, _stime: u64) {
        self.hart(hart);
    }
    fn send_ipi(&mut self, hart: usize) {
        self.hart(hart);
    }
    fn clear_ipi(&mut self, hart: usize) {
        self.hart(hart);
    }
    fn remote_fence_i(&mut self, hart: usize) {
        self.hart(hart);
    }
    fn remote_sfence_vma(&mut self, hart: usize, _start: u64, _size: u64, _asid: Option<u64>) {
        self.hart(hart);
    }
    fn hart_start(&mut self, hart: usize, _start_addr: u64, _opaque: u64) -> Result<(), SbiError> {
        self.hart(hart);
        match self.harts.get_mut(hart) {
            Some(s @ HartState::Stopped) => {
                *s = HartState::Started;
                Ok(())
            }
            _ => Err(SbiError::AlreadyAvailable),
        }
    }
    fn hart_stop(&mut self, hart: usize) -> Result<(), SbiError> {
        self.hart(hart);
        if let Some(s) = self.harts.get_mut(hart) {
            *s = HartState::Stopped;
        }
        Ok(())
    }
    fn hart_status(&self, hart: usize) -> HartState {
        self.hart(hart);
        self.harts.get(hart).copied().unwrap_or(HartState::Stopped)
    }
    fn hart_suspend(&mut self, hart: usize, _suspend: HartSuspend) -> Result<(), SbiError> {
        self.hart(hart);
        Ok(())
    }
    fn system_reset(&mut self, _reset_type: ResetType, _reason: ResetReason) {}
    fn console_write(&mut self, bytes: &[u8]) {
        assert!(
            bytes.len() <= RAM_SIZE,
            "console write of {} bytes",
            bytes.len()
        );
    }
    fn console_read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.console_in.len());
        buf[..n].copy_from_slice(&self.console_in[..n]);
        self.console_in.drain(..n);
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
    fn read_virt_u64(&mut self, hart: usize, vaddr: u64) -> Option<u64> {
        self.hart(hart);
        let mut b = [0u8; 8];
        self.read_phys(vaddr, &mut b).then(|| u64::from_le_bytes(b))
    }
}

const EIDS: [u64; 16] = [
    EID_LEGACY_SET_TIMER,
    EID_LEGACY_CONSOLE_PUTCHAR,
    EID_LEGACY_CONSOLE_GETCHAR,
    EID_LEGACY_CLEAR_IPI,
    EID_LEGACY_SEND_IPI,
    EID_LEGACY_REMOTE_FENCE_I,
    EID_LEGACY_REMOTE_SFENCE_VMA,
    EID_LEGACY_REMOTE_SFENCE_VMA_ASID,
    EID_LEGACY_SHUTDOWN,
    EID_BASE,
    EID_TIME,
    EID_IPI,
    EID_RFENCE,
    EID_HSM,
    EID_SRST,
    EID_DBCN,
];

/// An argument: small numbers, RAM addresses (with lengths that may run past RAM) or anything.
fn arg(input: &mut Input) -> u64 {
    let sel = input.u8();
    match sel & 3 {
        0 => u64::from(sel >> 2),
        1 => RAM_BASE + u64::from(input.u16()) % (RAM_SIZE as u64 + 0x100),
        2 => u64::from(input.u16()),
        _ => input.u64(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let nharts = usize::from(input.u8() % 4) + 1;
    let mut board = FakeBoard {
        harts: (0..nharts)
            .map(|h| {
                if h == 0 {
                    HartState::Started
                } else {
                    HartState::Stopped
                }
            })
            .collect(),
        ram: vec![0x41; RAM_SIZE],
        console_in: b"typed ahead\n".to_vec(),
    };
    for _ in 0..MAX_CALLS {
        if input.is_empty() {
            break;
        }
        let hart = usize::from(input.u8()) % nharts;
        let e = input.u8();
        let eid = match EIDS.get(usize::from(e & 0x1f)) {
            Some(&eid) => eid,
            None => u64::from(input.u32()),
        };
        let fid = u64::from(input.u8() % 8);
        let mut a = [0u64; 8];
        for slot in a.iter_mut().take(6) {
            *slot = arg(&mut input);
        }
        a[6] = fid;
        a[7] = eid;
        let r = handle_ecall(&mut board, hart, a);
        assert!(
            r.legacy || r.error == SBI_SUCCESS || (-9..=-1).contains(&r.error),
            "EID {eid:#x} FID {fid}: error {}",
            r.error
        );
        assert_eq!(
            r.legacy,
            eid <= EID_LEGACY_SHUTDOWN,
            "legacy return for EID {eid:#x}"
        );
    }
});
