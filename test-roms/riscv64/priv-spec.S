# qemu: skip -- expected values from the privileged specification 1.12; QEMU 7.2 differs.
# - An AMO to an address with nothing behind it raises store/AMO access fault (cause 7, Table
#   3.6); QEMU 7.2 reports a load access fault.
# - mret/sret to a mode below M clear mstatus.MPRV (3.1.6.3); QEMU 7.2 leaves it set.
# - mepc[0] and sepc[0] are always zero with IALIGN = 16 (3.1.14); QEMU 7.2 keeps the bit.
# - Pending S-level interrupts are taken in the order SEI > SSI > STI (3.1.9); QEMU 7.2 takes
#   SSI before SEI.
# - A 32-bit instruction in the last two bytes of RAM raises an instruction access fault with
#   mtval = the end of RAM (the part that faulted) and mepc = the instruction (3.1.16); QEMU 7.2
#   aborts on an assertion (translator_access: phys_page != -1).
#include "test_macros.h"

#define INTR(code) (INTERRUPT_BIT | (code))

RVTEST_CODE_BEGIN
        TEST_TRAP(2, CAUSE_STORE_ACCESS, li x1, 0x40000000; amoadd.w x14, x2, (x1))
        TEST_TRAP(3, CAUSE_STORE_ACCESS, li x1, 0x40000000; amoswap.d x14, x2, (x1))
        TEST_TRAP(4, CAUSE_LOAD_ACCESS, li x1, 0x40000000; lr.d x14, (x1))
        li x1, MSTATUS_MPRV; csrs mstatus, x1
        TEST_TRAP_IN_MODE(10, PRV_S, CAUSE_SUPERVISOR_ECALL, nop)
        TEST_CASE(11, x14, 0, la t5, trap_save; ld x14, TS_STATUS(t5); li x1, MSTATUS_MPRV; and x14, x14, x1)
        TEST_CASE(20, x14, 0x80001000, li x1, 0x80001001; csrw mepc, x1; csrr x14, mepc)
        TEST_CASE(21, x14, 0xfffffffffffffffe, li x1, -1; csrw mepc, x1; csrr x14, mepc)
        TEST_CASE(22, x14, 0x80001002, li x1, 0x80001003; csrw sepc, x1; csrr x14, sepc)
        # a 32-bit instruction in the last two bytes of RAM: the fetch of its second half
        # faults, mtval = the end of RAM, mepc = the instruction (3.1.16)
        li x1, 0x87fffffe; li x2, 0x0513; sh x2, 0(x1); fence.i
        TEST_TRAP(40, CAUSE_FETCH_ACCESS, li x1, 0x87fffffe; jr x1)
        CHECK_TVAL(41, 0x88000000)
        TEST_CASE(42, x14, 0x87fffffe, la t5, trap_save; ld x14, TS_EPC(t5))
        # SEI, SSI and STI pending and delegated, taken in U-mode: SEI first, STI last
        la t5, strap_save; sd zero, TS_IRQ_FIRST(t5); sd zero, TS_IRQ_LAST(t5)
        li t0, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER) | (1 << IRQ_S_EXT); csrw mideleg, t0
        csrs mip, t0
        csrs mie, t0
        TEST_TRAP_IN_MODE(30, PRV_U, CAUSE_USER_ECALL, nop; nop; nop)
        TEST_CASE(31, x14, INTR(IRQ_S_EXT), la t5, strap_save; ld x14, TS_IRQ_FIRST(t5))
        TEST_CASE(32, x14, INTR(IRQ_S_TIMER), la t5, strap_save; ld x14, TS_IRQ_LAST(t5))
        li t0, (1 << IRQ_S_SOFT) | (1 << IRQ_S_TIMER) | (1 << IRQ_S_EXT); csrc mip, t0
        csrw mideleg, zero
        csrw mie, zero
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
RVTEST_DATA_END
