//! The `origin` program, as the system benchmark runs it.

fn main() -> std::process::ExitCode {
    origin::main()
}
