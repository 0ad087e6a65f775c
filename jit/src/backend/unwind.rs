//! x86-64: the entry into compiled code and the memory slow path's `preserve_all` thunks, in
//! assembly, so that a guest fault in the slow path leaves compiled code at once.
//!
//! Compiled code stores its dirty globals before it calls the slow path (lower.rs), and the
//! slow path's entry sets the pc and instruction count of the access (site.rs), so when the
//! slow path records a guest exception nothing of the block is left to do but return `Fault`.
//! The thunk does that itself: it puts the stack pointer back
//! to what [`emu_enter_compiled`] saved in the state (`CpuCommon::unwind_sp`) and returns
//! `Fault` from the entry, which restores the caller's callee-saved registers. Only
//! compiled-code frames are dropped (the slow path, a Rust function, has returned normally), and
//! a chain of blocks is one frame deep (tail calls). Generated code then needs no test of
//! `exception_pending` and no fault branch after each slow-path call: Cranelift compile time
//! per block −14 to −21 % (`micro -- cranelift_compile`, medians of three runs alternated with
//! `EMU_FAULT_CHECKS=1`: block/32 1.17–1.25 → 0.92–0.99 ms, block/64 2.31–2.60 → 2.01–2.17 ms).
//! `EMU_FAULT_CHECKS=1` keeps the checked form (Cranelift-built thunks) for comparison.
//!
//! Register use follows Cranelift: a block takes the state in `rdi` (its `tail` convention
//! passes the first argument as System V does) and keeps System V's callee-saved registers;
//! a `preserve_all` callee preserves every general-purpose and XMM register.

use crate::env::{OFFSET_EXCEPTION_PENDING, OFFSET_UNWIND_SP};

/// The low byte of a compiled block's result for a fault (`encode_exit(BlockExit::Fault, 0)`).
const FAULT_EXIT: u64 = super::KIND_FAULT;

// The thunks save rax, rcx, rdx, rsi, rdi, r8–r11 at 0x00–0x40 and xmm0–15 at 0x50–0x140 of a
// 0x150-byte area (a multiple of 16: the call from there is aligned).
std::arch::global_asm!(
    // Save and restore what a `preserve_all` callee must keep that the System V slow path may
    // clobber.
    ".macro emu_thunk_save",
    "push rbp",
    "mov rbp, rsp",
    "sub rsp, 0x150",
    "mov qword ptr [rsp], rax",
    "mov qword ptr [rsp + 0x8], rcx",
    "mov qword ptr [rsp + 0x10], rdx",
    "mov qword ptr [rsp + 0x18], rsi",
    "mov qword ptr [rsp + 0x20], rdi",
    "mov qword ptr [rsp + 0x28], r8",
    "mov qword ptr [rsp + 0x30], r9",
    "mov qword ptr [rsp + 0x38], r10",
    "mov qword ptr [rsp + 0x40], r11",
    "movdqu xmmword ptr [rsp + 0x50], xmm0",
    "movdqu xmmword ptr [rsp + 0x60], xmm1",
    "movdqu xmmword ptr [rsp + 0x70], xmm2",
    "movdqu xmmword ptr [rsp + 0x80], xmm3",
    "movdqu xmmword ptr [rsp + 0x90], xmm4",
    "movdqu xmmword ptr [rsp + 0xa0], xmm5",
    "movdqu xmmword ptr [rsp + 0xb0], xmm6",
    "movdqu xmmword ptr [rsp + 0xc0], xmm7",
    "movdqu xmmword ptr [rsp + 0xd0], xmm8",
    "movdqu xmmword ptr [rsp + 0xe0], xmm9",
    "movdqu xmmword ptr [rsp + 0xf0], xmm10",
    "movdqu xmmword ptr [rsp + 0x100], xmm11",
    "movdqu xmmword ptr [rsp + 0x110], xmm12",
    "movdqu xmmword ptr [rsp + 0x120], xmm13",
    "movdqu xmmword ptr [rsp + 0x130], xmm14",
    "movdqu xmmword ptr [rsp + 0x140], xmm15",
    ".endm",
    ".macro emu_thunk_restore",
    "mov rax, qword ptr [rsp]",
    "mov rcx, qword ptr [rsp + 0x8]",
    "mov rdx, qword ptr [rsp + 0x10]",
    "mov rsi, qword ptr [rsp + 0x18]",
    "mov rdi, qword ptr [rsp + 0x20]",
    "mov r8, qword ptr [rsp + 0x28]",
    "mov r9, qword ptr [rsp + 0x30]",
    "mov r10, qword ptr [rsp + 0x38]",
    "mov r11, qword ptr [rsp + 0x40]",
    "movdqu xmm0, xmmword ptr [rsp + 0x50]",
    "movdqu xmm1, xmmword ptr [rsp + 0x60]",
    "movdqu xmm2, xmmword ptr [rsp + 0x70]",
    "movdqu xmm3, xmmword ptr [rsp + 0x80]",
    "movdqu xmm4, xmmword ptr [rsp + 0x90]",
    "movdqu xmm5, xmmword ptr [rsp + 0xa0]",
    "movdqu xmm6, xmmword ptr [rsp + 0xb0]",
    "movdqu xmm7, xmmword ptr [rsp + 0xc0]",
    "movdqu xmm8, xmmword ptr [rsp + 0xd0]",
    "movdqu xmm9, xmmword ptr [rsp + 0xe0]",
    "movdqu xmm10, xmmword ptr [rsp + 0xf0]",
    "movdqu xmm11, xmmword ptr [rsp + 0x100]",
    "movdqu xmm12, xmmword ptr [rsp + 0x110]",
    "movdqu xmm13, xmmword ptr [rsp + 0x120]",
    "movdqu xmm14, xmmword ptr [rsp + 0x130]",
    "movdqu xmm15, xmmword ptr [rsp + 0x140]",
    ".endm",
    ".text",
    ".p2align 4",
    ".globl emu_enter_compiled",
    "emu_enter_compiled:",
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "mov qword ptr [rdi + {unwind}], rsp",
    "call rsi",
    ".Lemu_enter_leave:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    // Reached from a thunk with the state in rdi.
    ".Lemu_enter_fault:",
    "mov rsp, qword ptr [rdi + {unwind}]",
    "mov eax, {fault}",
    "jmp .Lemu_enter_leave",
    //
    ".p2align 4",
    ".globl emu_slow_load_unwinding",
    "emu_slow_load_unwinding:",
    "emu_thunk_save",
    "lock add qword ptr [rip + {calls}], 1",
    // emu_slow_load_site(state, addr, site): the arguments are in place; the fourth, where
    // the value goes, was saved from rcx.
    "call {load_site}",
    "mov rcx, qword ptr [rsp + 0x8]",
    "mov qword ptr [rcx], rax",
    "mov rdi, qword ptr [rsp + 0x20]",
    "cmp qword ptr [rdi + {pending}], 0",
    "jne .Lemu_enter_fault",
    "jmp .Lemu_thunk_restore",
    //
    ".p2align 4",
    ".globl emu_slow_store_unwinding",
    "emu_slow_store_unwinding:",
    "emu_thunk_save",
    "lock add qword ptr [rip + {calls}], 1",
    // emu_slow_store_site(state, addr, value, site): the arguments are in place.
    "call {store_site}",
    "mov rdi, qword ptr [rsp + 0x20]",
    "cmp qword ptr [rdi + {pending}], 0",
    "jne .Lemu_enter_fault",
    ".Lemu_thunk_restore:",
    "emu_thunk_restore",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    unwind = const OFFSET_UNWIND_SP,
    pending = const OFFSET_EXCEPTION_PENDING,
    load_site = sym super::site::emu_slow_load_site,
    store_site = sym super::site::emu_slow_store_site,
    fault = const FAULT_EXIT,
    calls = sym super::SLOW_PATH_CALLS,
);

unsafe extern "C" {
    /// `fn(state, entry) -> u64`: run compiled code at `entry` (a `tail` function of one
    /// argument) on `state` (a `CpuCommon`); its result, or `Fault` when a slow-path thunk left
    /// on a fault.
    pub(super) fn emu_enter_compiled(state: *mut std::ffi::c_void, entry: *const u8) -> u64;
    /// The load and store thunks (`preserve_all`; see the module docs); never called from
    /// Rust, only by address from compiled code.
    pub(super) fn emu_slow_load_unwinding();
    pub(super) fn emu_slow_store_unwinding();
}
