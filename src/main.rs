//! `netnomos`: mine first-order rules from network data, and check, query and exchange the
//! rule packs that hold them.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging(args.verbose, args.quiet);
    // Packs and dataset specs may call user functions (WebAssembly components).
    functions::install();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            let top = err.to_string();
            eprintln!("error: {top}");
            // Causes the message already quotes are not repeated.
            for cause in err
                .chain()
                .skip(1)
                .map(|c| c.to_string())
                .filter(|c| !top.contains(c.as_str()))
            {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
