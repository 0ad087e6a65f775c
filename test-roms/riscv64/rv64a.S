# RV64A: every AMO in .w and .d forms (old value returned, .w results sign-extended, memory
# updated), signed vs unsigned min/max, LR/SC rules (unprivileged spec 8.2/8.3: SC succeeds only
# on a live reservation for that address; SC without one, to another address, a second SC, or
# after a trap fails and leaves memory alone), misaligned LR raises load-address-misaligned.
#include "test_macros.h"

#define TEST_AMO_D(n, inst, old, newmem, init, operand)                         \
        TEST_CASE(n, x14, old,                                                  \
          la x1, amo_d; li x2, MASK_XLEN(init); sd x2, 0(x1);                   \
          li x2, MASK_XLEN(operand); inst x14, x2, (x1))              \
        TEST_CASE(n + 1000, x15, newmem, la x1, amo_d; ld x15, 0(x1))

#define TEST_AMO_W(n, inst, old, newmem, init, operand)                         \
        TEST_CASE(n, x14, old,                                                  \
          la x1, amo_d; li x2, 0x5555555555555555; sd x2, 0(x1);                \
          li x2, MASK_XLEN(init); sw x2, 0(x1);                                 \
          li x2, MASK_XLEN(operand); inst x14, x2, (x1))                        \
        TEST_CASE(n + 1000, x15, newmem, la x1, amo_d; ld x15, 0(x1))

RVTEST_CODE_BEGIN
        TEST_AMO_D(2, amoswap.d, 0x8000000000000000, 0x0123456789abcdef, 0x8000000000000000, 0x0123456789abcdef)
        TEST_AMO_D(3, amoadd.d, 0x7fffffffffffffff, 0x8000000000000000, 0x7fffffffffffffff, 1)
        TEST_AMO_D(4, amoand.d, 0xff00ff00ff00ff00, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
        TEST_AMO_D(5, amoor.d, 0xff00ff00ff00ff00, 0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
        TEST_AMO_D(6, amoxor.d, 0xff00ff00ff00ff00, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
        TEST_AMO_D(7, amomin.d, 1, 0xffffffffffffffff, 1, -1)
        TEST_AMO_D(8, amomax.d, 1, 1, 1, -1)
        TEST_AMO_D(9, amominu.d, 1, 1, 1, -1)
        TEST_AMO_D(11, amomaxu.d, 1, 0xffffffffffffffff, 1, -1)
        TEST_AMO_D(12, amomin.d, 0x8000000000000000, 0x8000000000000000, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_AMO_D(13, amomaxu.d, 0x8000000000000000, 0x8000000000000000, 0x8000000000000000, 0x7fffffffffffffff)
        TEST_AMO_D(14, amoadd.d.aqrl, 5, 12, 5, 7)
        # .w forms touch only the low word; the old value is sign-extended
        TEST_AMO_W(20, amoswap.w, 0xffffffff80000000, 0x5555555512345678, 0x80000000, 0xabcd000012345678)
        TEST_AMO_W(21, amoadd.w, 0x000000007fffffff, 0x5555555580000000, 0x7fffffff, 1)
        TEST_AMO_W(22, amoadd.w, 0xffffffffffffffff, 0x5555555500000000, 0xffffffff, 1)
        TEST_AMO_W(23, amoand.w, 0xffffffffff00ff00, 0x555555550f000f00, 0xff00ff00, 0x0f0f0f0f)
        TEST_AMO_W(24, amoor.w, 0xffffffffff00ff00, 0x55555555ff0fff0f, 0xff00ff00, 0x0f0f0f0f)
        TEST_AMO_W(25, amoxor.w, 0xffffffffff00ff00, 0x55555555f00ff00f, 0xff00ff00, 0x0f0f0f0f)
        TEST_AMO_W(26, amomin.w, 1, 0x55555555ffffffff, 1, 0xffffffff)
        TEST_AMO_W(27, amomax.w, 1, 0x5555555500000001, 1, 0xffffffff)
        TEST_AMO_W(28, amominu.w, 1, 0x5555555500000001, 1, 0xffffffff)
        TEST_AMO_W(29, amomaxu.w, 1, 0x55555555ffffffff, 1, 0xffffffff)
        # only the low 32 bits of rs2 take part in the comparison
        TEST_AMO_W(31, amomin.w, 5, 0x5555555500000005, 5, 0x7fffffff00000006)
        TEST_AMO_W(32, amomaxu.w, 0xffffffff80000000, 0x5555555580000000, 0x80000000, 0x100000001)

        # LR/SC success: sc writes 0 to rd and stores
        TEST_CASE(40, x14, 0, la x1, amo_d; li x2, 11; sd x2, 0(x1); lr.d x15, (x1); li x2, 22; sc.d x14, x2, (x1))
        TEST_CASE(41, x15, 22, ld x15, 0(x1))
        # a second sc after a successful one has no reservation: fails, memory unchanged
        TEST_CASE(42, x14, 1, li x2, 33; sc.d x14, x2, (x1); snez x14, x14)
        TEST_CASE(43, x15, 22, ld x15, 0(x1))
        # lr returns the value, sign-extended for .w
        TEST_CASE(44, x14, 0xffffffff80000000, la x1, amo_d; li x2, 0x80000000; sw x2, 0(x1); lr.w x14, (x1))
        TEST_CASE(45, x14, 0, li x2, 0x1234; sc.w x14, x2, (x1))
        TEST_CASE(46, x15, 0x1234, lw x15, 0(x1))
        # sc to another address than the reserved one fails
        TEST_CASE(47, x14, 1, la x1, amo_d; lr.d x15, (x1); li x2, 44; addi x4, x1, 8; sc.d x14, x2, (x4); snez x14, x14)
        TEST_CASE(48, x14, 1, la x1, amo_d; lr.d x15, (x1); addi x4, x1, 8; li x2, 44; sc.d x14, x2, (x4); snez x14, x14)
        TEST_CASE(49, x15, 0x5555555555555555, la x1, amo_d; ld x15, 8(x1))
        # sc with no lr at all fails
        TEST_CASE(50, x14, 1, la x1, amo_d; li x2, 77; sc.d x14, x2, (x1); sc.w x14, x2, (x1); snez x14, x14)
        TEST_CASE(51, x15, 0x1234, lw x15, 0(x1))
        # a trap between lr and sc clears the reservation (ecall; the handler skips it)
        TEST_CASE(52, x14, 1, la x1, amo_d; lr.d x15, (x1); ecall; li x2, 88; la x1, amo_d; sc.d x14, x2, (x1); snez x14, x14)
        TEST_CASE(53, x15, 0x1234, la x1, amo_d; lw x15, 0(x1))

        # misaligned AMO / LR / SC trap
        # misaligned LR traps (AMO and SC: see rv64a-misaligned.S)
        TEST_TRAP(62, CAUSE_MISALIGNED_LOAD, la x1, amo_d + 1; lr.w x14, (x1))
        CHECK_TVAL_REG(63, x1)
        TEST_TRAP(64, CAUSE_MISALIGNED_LOAD, la x1, amo_d + 4; lr.d x14, (x1))
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 4
amo_d:  .dword 0, 0x5555555555555555
RVTEST_DATA_END
