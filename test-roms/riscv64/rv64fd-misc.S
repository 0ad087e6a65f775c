# F/D beyond arithmetic: NaN boxing of inputs and results (unprivileged spec 12.2: a single
# operand whose upper 32 bits are not all ones is the canonical NaN), flw/fsw/fld/fsd,
# fmv.x.w sign extension, fcsr/frm/fflags fields (spec 11.2), reserved rounding modes (static
# 5/6, dynamic with frm >= 5) as illegal instructions, and mstatus.FS: Off makes every FP
# instruction and FP CSR illegal; writing FP state sets FS to Dirty and SD (privileged 3.1.6.6).
#include "test_macros.h"

RVTEST_CODE_BEGIN
        # improperly boxed single operands behave as the canonical NaN
        TEST_CASE(2, x14, 0xffffffff7fc00000, li x1, 0x000000003f800000; fmv.d.x f1, x1; fadd.s f3, f1, f1; fmv.x.d x14, f3)
        TEST_CASE(3, x14, 0xffffffff7fc00000, li x1, 0x7fffffff3f800000; fmv.d.x f1, x1; fsgnj.s f3, f1, f1; fmv.x.d x14, f3)
        TEST_CASE(4, x14, 0x200, li x1, 0xfffffffe3f800000; fmv.d.x f1, x1; fclass.s x14, f1)
        TEST_CASE(5, x14, 0x40, li x1, 0xffffffff3f800000; fmv.d.x f1, x1; fclass.s x14, f1)
        # fmv.x.w sign-extends bit 31 and ignores the box; fmv.w.x boxes
        TEST_CASE(6, x14, 0xffffffff80000001, li x1, 0x1234567880000001; fmv.d.x f1, x1; fmv.x.w x14, f1)
        TEST_CASE(7, x14, 0x0000000012345678, li x1, 0xffffffff12345678; fmv.d.x f1, x1; fmv.x.w x14, f1)
        TEST_CASE(8, x14, 0xffffffff89abcdef, li x1, 0x0123456789abcdef; fmv.w.x f1, x1; fmv.x.d x14, f1)
        # flw boxes; fsw stores the low 32 bits as they are; fld/fsd are raw
        TEST_CASE(9, x14, 0xffffffffdeadbeef, la x1, fpdata; flw f1, 0(x1); fmv.x.d x14, f1)
        TEST_CASE(10, x14, 0x00000000deadbeef, la x1, fpdata; li x2, 0x00000000deadbeef; fmv.d.x f1, x2; fsw f1, 8(x1); lwu x14, 8(x1))
        TEST_CASE(11, x14, 0x0123456789abcdef, la x1, fpdata; li x2, 0x0123456789abcdef; sd x2, 16(x1); fld f2, 16(x1); fsd f2, 24(x1); ld x14, 24(x1))
        TEST_CASE(12, x14, 0xfff0000000000001, la x1, fpdata; li x2, 0xfff0000000000001; sd x2, 16(x1); fld f2, 16(x1); fmv.x.d x14, f2)
        # fsgnj.d moves a NaN payload untouched; fmv.d.x/fmv.x.d are raw
        TEST_CASE(13, x14, 0xfff0000000000001, li x1, 0x7ff0000000000001; fmv.d.x f1, x1; fsgnjn.d f3, f1, f1; fmv.x.d x14, f3)
        # fcsr = frm[7:5] | fflags[4:0]; the upper bits read as zero
        TEST_CASE(20, x14, 0xff, li x1, -1; csrw fcsr, x1; csrr x14, fcsr)
        TEST_CASE(21, x14, 0x7, csrr x14, frm)
        TEST_CASE(22, x14, 0x1f, csrr x14, fflags)
        TEST_CASE(23, x14, 0x1f, csrwi frm, 0; csrr x14, fcsr)
        TEST_CASE(24, x14, 0xe0, li x1, 0xff; csrw frm, x1; csrwi fflags, 0; csrr x14, fcsr)
        TEST_CASE(25, x14, 0x03, li x1, 0x43; csrw fcsr, x1; csrwi frm, 0; csrr x14, fcsr)
        TEST_CASE(26, x14, 0x03, fsflags x14, x0)
        TEST_CASE(27, x14, 0x00, csrr x14, fflags)
        # FP ops accumulate fflags (OR), never clear them
        TEST_CASE(28, x14, 0x18, csrwi fflags, 0x8; li x1, 0x7ff0000000000001; fmv.d.x f1, x1; fadd.d f3, f1, f1; csrr x14, fflags)
        # reserved rounding modes: static 5 and 6, and dyn with frm = 5, 6, 7
        TEST_TRAP(30, CAUSE_ILLEGAL_INSTRUCTION, .insn r OP_FP, 5, 0x01, f3, f1, f2)
        TEST_TRAP(31, CAUSE_ILLEGAL_INSTRUCTION, .insn r OP_FP, 6, 0x00, f3, f1, f2)
        TEST_TRAP(32, CAUSE_ILLEGAL_INSTRUCTION, fsrmi 5; fadd.d f3, f1, f2, dyn)
        TEST_TRAP(33, CAUSE_ILLEGAL_INSTRUCTION, fsrmi 7; fmul.s f3, f1, f2, dyn)
        TEST_TRAP(34, CAUSE_NONE, fsrmi 7; fadd.d f3, f1, f2, rne; fsgnj.d f3, f1, f2; fsrmi 0)
        TEST_TRAP(35, CAUSE_NONE, fsrmi 4; fadd.d f3, f1, f2, dyn; fsrmi 0)
        # mstatus.FS: Off -> illegal; a write to an f register makes it Dirty and sets SD
        TEST_CASE(40, x14, MSTATUS_FS_INITIAL, li x1, MSTATUS_FS; csrc mstatus, x1; li x1, MSTATUS_FS_INITIAL; csrs mstatus, x1; csrr x14, mstatus; li x1, MSTATUS_FS; and x14, x14, x1)
        TEST_CASE(41, x14, 0, csrr x14, mstatus; srli x14, x14, 63)
        TEST_CASE(42, x14, MSTATUS_FS, li x1, 5; fmv.d.x f5, x1; csrr x14, mstatus; li x1, MSTATUS_FS; and x14, x14, x1)
        TEST_CASE(43, x14, 1, csrr x14, mstatus; srli x14, x14, 63)
        TEST_CASE(44, x14, MSTATUS_FS, li x1, MSTATUS_FS; csrc mstatus, x1; li x1, MSTATUS_FS_INITIAL; csrs mstatus, x1; csrwi fflags, 1; csrr x14, mstatus; li x1, MSTATUS_FS; and x14, x14, x1)
        li x1, MSTATUS_FS; csrc mstatus, x1
        TEST_TRAP(50, CAUSE_ILLEGAL_INSTRUCTION, fadd.d f3, f1, f2)
        TEST_TRAP(51, CAUSE_ILLEGAL_INSTRUCTION, la x1, fpdata; fld f3, 0(x1))
        TEST_TRAP(52, CAUSE_ILLEGAL_INSTRUCTION, la x1, fpdata; fsw f3, 0(x1))
        TEST_TRAP(53, CAUSE_ILLEGAL_INSTRUCTION, fmv.x.d x14, f1)
        TEST_TRAP(54, CAUSE_ILLEGAL_INSTRUCTION, csrr x14, fcsr)
        TEST_TRAP(55, CAUSE_ILLEGAL_INSTRUCTION, csrwi fflags, 0)
        TEST_TRAP(56, CAUSE_ILLEGAL_INSTRUCTION, c.fld f8, 0(x8))
        TEST_CASE(57, x14, 0, csrr x14, mstatus; li x1, MSTATUS_FS; and x14, x14, x1)
        li x1, MSTATUS_FS_INITIAL; csrs mstatus, x1
        TEST_TRAP(58, CAUSE_NONE, fadd.d f3, f1, f2)
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
        .align 4
fpdata: .word 0xdeadbeef, 0, 0, 0, 0, 0, 0, 0
RVTEST_DATA_END
