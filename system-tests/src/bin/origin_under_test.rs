//! The `origin` program, as the system tests run it.

fn main() -> std::process::ExitCode {
    origin::main()
}
