//! IEEE-754 binary32/binary64 arithmetic with exact RISC-V fflags (Unprivileged ISA ch. 20–21),
//! and the helpers the F/D lifters call.
