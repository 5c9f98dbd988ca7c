//! The `habitat-migrate` binary: everything is in the library; this only hands over the arguments.

fn main() {
    std::process::exit(habitat_migrate::cli::main_with_args(std::env::args_os()));
}
