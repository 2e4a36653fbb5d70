fn main() -> std::process::ExitCode {
    origin::main()
}
