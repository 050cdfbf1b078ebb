//! `hee`: train HEE models and run the experiments of the reproduction
//! (see `hee --help`; the program lives in `hee_bench::cli`).

fn main() -> std::process::ExitCode {
    hee_bench::cli::main()
}
