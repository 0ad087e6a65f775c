# qemu: skip -- expected values from the specification, not QEMU 7.2.
# Misaligned AMOs and SC raise store/AMO-address-misaligned (cause 6) with mtval = the address
# (unprivileged spec 8.4: AMOs are never emulated when misaligned here; privileged spec 3.1.15).
# QEMU 7.2 deviates: it reports misaligned AMOs as load-address-misaligned (cause 4) and lets an
# SC without a reservation fail before it checks alignment.
#include "test_macros.h"

RVTEST_CODE_BEGIN
        TEST_TRAP(2, CAUSE_MISALIGNED_STORE, la x1, amo_d + 4; amoadd.d x14, x2, (x1))
        CHECK_TVAL_REG(3, x1)
        TEST_TRAP(4, CAUSE_MISALIGNED_STORE, la x1, amo_d + 2; amoswap.w x14, x2, (x1))
        TEST_TRAP(5, CAUSE_MISALIGNED_STORE, la x1, amo_d + 1; amomaxu.d x14, x2, (x1))
        TEST_TRAP(6, CAUSE_MISALIGNED_STORE, la x1, amo_d; lr.d x14, (x1); addi x1, x1, 4; sc.d x14, x2, (x1))
        TEST_TRAP(7, CAUSE_MISALIGNED_STORE, la x1, amo_d + 2; sc.w x14, x2, (x1))
        # the memory was not touched
        TEST_CASE(8, x14, 0x5555555555555555, la x1, amo_d; ld x14, 0(x1))
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 4
amo_d:  .dword 0x5555555555555555, 0x5555555555555555
RVTEST_DATA_END
