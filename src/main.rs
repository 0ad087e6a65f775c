//! The `emu` command: parse the command line, build the board, run the program, and exit with
//! the program's HTIF exit code. Every host error is one line on stderr and exit status 1.

use anyhow::Result;
use emu::cli::{self, Command, Config, MachineKind, SerialOpt, USAGE};
use emu::console::{ConsoleInput, TerminalGuard};
use emu::machine::virt::{self, Virt, VirtConfig, VirtExit};
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
        Command::LogHelp => {
            println!("{}", emu::trace::HELP);
            return Ok(0);
        }
        Command::MachineHelp => {
            println!("{}", cli::MACHINE_HELP);
            return Ok(0);
        }
        Command::CpuHelp => {
            println!("{}", cli::CPU_HELP);
            return Ok(0);
        }
        Command::DeviceHelp => {
            println!("{}", cli::DEVICE_HELP);
            return Ok(0);
        }
        Command::Run(c) => c,
    };
    // More guest RAM than the host has would run until the guest touches it and the host's
    // OOM killer ends emu: refuse it up front.
    if let Some(host) = host_memory() {
        if config.ram_size > host {
            anyhow::bail!(
                "invalid value '{}M' for '-m': more than this host's memory ({} MiB)",
                config.ram_size >> 20,
                host >> 20
            );
        }
    }
    emu::logger::init(config.log);
    // --stats also times the interpreter and compiled code (two clock reads per block run).
    emu_jit::engine::Engine::time_new_engines(config.stats);
    if config.perf_map {
        let path = emu_jit::backend::perfmap::enable()
            .map_err(|e| anyhow::anyhow!("could not write the perf map: {e}"))?;
        log::info!("perf map: {path}");
    }
    if config.machine == MachineKind::Virt {
        return run_virt(&config);
    }
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
    let trace = emu::trace::setup(&config.debug)?;
    let gdb = emu::gdb::start_from(&config.debug)?;
    machine.attach_debug(
        gdb.as_ref()
            .map(|g| g.debugger(1, config.debug.start_halted)),
        trace.as_ref(),
    );
    if !machine.has_htif() {
        eprintln!(
            "emu: warning: '{}' has no tohost symbol; it cannot exit through HTIF",
            config.kernel.display()
        );
    }
    let result = machine.run();
    if let Some((_, out)) = &trace {
        let _ = out.lock().flush();
    }
    if let Some(g) = gdb {
        g.finish(*result.as_ref().unwrap_or(&1));
    }
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
        for line in s.to_string().lines() {
            eprintln!("emu: stats: {line}");
        }
        print_thread_cpu_times("");
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

/// Boot the `virt` board; a guest reboot builds the machine afresh (unless `-no-reboot`).
fn run_virt(config: &Config) -> Result<i32> {
    let vc = VirtConfig {
        kernel: (!config.kernel.as_os_str().is_empty()).then(|| config.kernel.clone()),
        ram_size: config.ram_size,
        engine: config.engine,
        strict: config.strict,
        max_insns: config.max_insns,
        opts: config.virt.clone(),
    };
    if let Some(path) = &config.virt.dumpdtb {
        virt::dump_dtb(&vc, path)?;
        return Ok(0);
    }
    let mut out = virt::open_serial(&config.virt.serial)?;
    let (mut input, interactive) = match config.virt.serial {
        SerialOpt::MonStdio => (ConsoleInput::stdin(true), emu::console::stdin_is_tty()),
        SerialOpt::Stdio => (ConsoleInput::stdin(false), emu::console::stdin_is_tty()),
        SerialOpt::File(_) | SerialOpt::Null => (ConsoleInput::none(), false),
    };
    let mut machine = Virt::new(&vc)?;
    let trace = emu::trace::setup(&config.debug)?;
    let gdb = emu::gdb::start_from(&config.debug)?;
    let harts = machine.hart_count();
    machine.attach_debug(
        gdb.as_ref()
            .map(|g| g.debugger(harts, config.debug.start_halted)),
        trace.as_ref(),
    );
    // Raw mode only once the machine is built (errors above print on a sane terminal); the
    // guard restores the terminal on every way out of this function.
    let _guard = match config.virt.serial {
        SerialOpt::MonStdio => Some(TerminalGuard::raw_stdin()),
        _ => None,
    };
    let mut total_insns = 0u64;
    let status = loop {
        let r = machine.run(&mut input, &mut *out, interactive);
        total_insns += machine.insn_count();
        if config.stats {
            let s = machine.engine().stats();
            eprintln!(
                "emu: stats: {} instructions retired; ram hash {:016x}; blocks: {} translated, {} \
                 compiled ({:.1} ms compiling), {} invalidated; runs: {} interpreted, {} native\r",
                total_insns,
                machine.ram_hash(),
                s.blocks_translated,
                s.blocks_compiled,
                s.compile_ns as f64 / 1e6,
                s.blocks_invalidated,
                s.interp_runs,
                s.native_runs,
            );
            for line in s.to_string().lines() {
                eprintln!("emu: stats: {line}\r");
            }
            print_thread_cpu_times("\r");
        }
        match r? {
            VirtExit::PowerOff(code) => break code,
            VirtExit::Quit => break 0,
            VirtExit::Reset if config.virt.no_reboot => break 0,
            VirtExit::Reset => {
                let debug = machine.take_debug();
                drop(machine);
                machine = Virt::new(&vc)?;
                machine.attach_debug(debug, trace.as_ref());
            }
        }
    };
    if let Some((_, out)) = &trace {
        let _ = out.lock().flush();
    }
    if let Some(g) = gdb {
        g.finish(u64::from(status.unsigned_abs()));
    }
    Ok(status)
}

/// Host CPU time so far of each of emu's threads, by thread name (`--stats`): the vCPU thread
/// is the critical path; the compile thread runs beside it. Linux only (`/proc/self/task`);
/// empty elsewhere or if unreadable.
fn thread_cpu_times() -> Vec<(String, f64)> {
    // SAFETY: sysconf takes no pointers and answers -1 for a name it does not know.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let Ok(ticks) = u32::try_from(ticks) else {
        return Vec::new();
    };
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    let mut out: Vec<(String, f64)> = dir
        .flatten()
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // `pid (comm) state ...`: the name may hold spaces, so split after the last ')'.
            let (head, rest) = stat.rsplit_once(')')?;
            let name = head.split_once('(')?.1.to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
            let (utime, stime) = (fields.get(11)?, fields.get(12)?);
            let t = utime.parse::<u64>().ok()? + stime.parse::<u64>().ok()?;
            Some((name, t as f64 / f64::from(ticks.max(1))))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `--stats` line with [`thread_cpu_times`].
fn print_thread_cpu_times(eol: &str) {
    let times = thread_cpu_times();
    if !times.is_empty() {
        let list: Vec<String> = times
            .iter()
            .map(|(name, secs)| format!("{name} {:.0} ms", secs * 1e3))
            .collect();
        eprintln!(
            "emu: stats: host CPU time per thread: {}{eol}",
            list.join(", ")
        );
    }
}

/// The host's physical memory in bytes, if the OS says.
fn host_memory() -> Option<u64> {
    // SAFETY: sysconf takes no pointers and answers -1 for a name it does not know.
    let (pages, page_size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let (pages, page_size) = (u64::try_from(pages).ok()?, u64::try_from(page_size).ok()?);
    pages.checked_mul(page_size).filter(|&b| b > 0)
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
