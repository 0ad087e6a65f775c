# Console output through the HTIF putchar device (device 1, command 1), then a clean exit.
#include "test_macros.h"

RVTEST_CODE_BEGIN
        li TESTNUM, 1
        la a0, message
        call htif_puts
        j pass
RVTEST_CODE_END

RVTEST_DATA_BEGIN
message: .asciz "Hello from emu test-roms (rv64gc)\n"
RVTEST_DATA_END
