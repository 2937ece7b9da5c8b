//! The command line: parses flags, wires the parts, prints, and turns the outcome into an exit
//! code. Everything it wires lives in the library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
