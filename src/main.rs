//! The `emu` command: parse the command line, build the board, run the program, and exit with
//! the program's HTIF exit code. Every host error is one line on stderr and exit status 1.

use anyhow::Result;
use emu::cli::{self, Command, USAGE};
use emu::machine::{Spike, SpikeConfig};

/// The process exit status for a program's HTIF exit code. Unix keeps only the low 8 bits; a
/// non-zero code whose low byte is zero must still fail.
fn exit_status(code: u64) -> i32 {
    match code {
        0 => 0,
        c if c & 0xff == 0 => 1,
        c => (c & 0xff) as i32,
    }
}

fn run() -> Result<i32> {
    // Arguments that are not UTF-8 are passed on lossily: they can only be file names, which
    // are then reported as not found.
    let args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    let config = match cli::parse(args)? {
        Command::Help => {
            println!("{USAGE}");
            return Ok(0);
        }
        Command::Version => {
            println!("emu {}", env!("CARGO_PKG_VERSION"));
            return Ok(0);
        }
        Command::Run(c) => c,
    };
    emu::logger::init(config.log);
    let spike_config = SpikeConfig {
        ram_size: config.ram_size,
        engine: config.engine,
        strict: config.strict,
        max_insns: config.max_insns,
        trace: config.trace,
    };
    let mut machine = Spike::new(
        &spike_config,
        &config.kernel,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    )?;
    if !machine.has_htif() {
        eprintln!(
            "emu: warning: '{}' has no tohost symbol; it cannot exit through HTIF",
            config.kernel.display()
        );
    }
    let result = machine.run();
    if config.stats {
        let s = machine.engine().stats();
        eprintln!(
            "emu: stats: {} instructions retired; state hash {:016x}; blocks: {} translated, {} compiled \
             ({} failed, {:.1} ms compiling), {} invalidated, {} flushes; runs: {} interpreted, \
             {} native; {} chain links",
            machine.insn_count(),
            machine.state_hash(),
            s.blocks_translated,
            s.blocks_compiled,
            s.compile_failures,
            s.compile_ns as f64 / 1e6,
            s.blocks_invalidated,
            s.flushes,
            s.interp_runs,
            s.native_runs,
            s.chain_links
        );
    }
    let code = result?;
    if let Some(path) = &config.signature {
        let text = machine.signature(&config.kernel, config.signature_granularity)?;
        // The message carries the cause: errors are printed without their source chain.
        std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("could not write signature '{}': {e}", path.display()))?;
    }
    Ok(exit_status(code))
}

fn main() {
    let status = match run() {
        Ok(status) => status,
        Err(e) => {
            eprintln!("emu: {e}");
            1
        }
    };
    std::process::exit(status);
}

#[cfg(test)]
mod tests {
    use super::exit_status;

    #[test]
    fn exit_codes_never_fake_success() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(256), 1);
        assert_eq!(exit_status(0x1_0005), 5);
    }
}
